"""One network, many styles (conditional instance norm): the PyTorch network, its ONNX export, the
stylizer's style input, blends, --add-style, the zoo and the live window's instant switch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("PIL")

from realtime import modelmeta as mm  # noqa: E402
from realtime.errors import ModelError  # noqa: E402
from realtime.train.export import VERIFY_BOUND, export_onnx, load_network  # noqa: E402
from realtime.train.model import build_model, style_norms  # noqa: E402

NAMES = ["ink", "sun", "sea"]
SETTINGS = {"arch": "fast", "width": 16, "depth": 1, "residual_norm": True}


def _multi_net(seed: int = 0, styles: int = 3):  # noqa: ANN202
    """A fast-tier network of ``styles`` styles whose norm rows differ a lot (so the styles do)."""
    torch.manual_seed(seed)
    net = build_model("fast", SETTINGS["width"], SETTINGS["depth"], styles=styles)
    for m in style_norms(net):
        with torch.no_grad():
            m.weight.normal_(1.0, 0.6)
            m.bias.normal_(0.0, 0.6)
    return net.eval()


def _export(net, path: Path, names: list[str], settings: dict | None = None) -> Path:  # noqa: ANN001
    meta = {mm.STYLE_NAME: path.stem, mm.STYLE_NAMES: names, mm.TIER: "fast", mm.BORDER: "16",
            mm.SETTINGS: settings or SETTINGS}
    export_onnx(net, path, meta, sizes=((32, 48),))
    # the training record lists the styles, as finish_run writes it: the zoo reads names from there
    path.with_suffix(".json").write_text(json.dumps({"name": path.stem, "styles": [{"name": n} for n in names]}))
    return path


@pytest.fixture(scope="module")
def multi(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    folder = tmp_path_factory.mktemp("multi")
    net = _multi_net()
    return _export(net, folder / "trio.onnx", NAMES), net


def _frame(h: int = 40, w: int = 56, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x * 255 / w, y * 255 / h, (x + y) * 127 / (w + h)], -1) + rng.normal(0, 20, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def _stylize(path: Path, style, frame: np.ndarray) -> np.ndarray:  # noqa: ANN001
    from realtime.stylizer import Stylizer

    return Stylizer(path, device="cpu", lanes=1, style=style).stylize([frame])[0]


# ------------------------------------------------------------------------------------------ network


def test_one_hot_reproduces_each_style_as_a_network_of_its_own(multi) -> None:  # noqa: ANN001
    """Style k of the shared network is exactly the single-style network with row k's norms."""
    _, net = multi
    x = torch.rand(2, 3, 32, 40)
    for k in range(3):
        single = build_model("fast", SETTINGS["width"], SETTINGS["depth"], styles=1)
        state = {key: (v[k:k + 1] if v.dim() == 2 else v) for key, v in net.state_dict().items()}
        single.load_state_dict(state)
        with torch.no_grad():
            assert torch.allclose(net(x, torch.eye(3)[k]), single.eval()(x), atol=1e-6)
            # one style per sample (training) is the same function as one style for the batch
            assert torch.allclose(net(x, torch.eye(3)[k].expand(2, 3)), single(x), atol=1e-5)


def test_onnx_model_matches_pytorch_for_a_blend(multi) -> None:  # noqa: ANN001
    import onnxruntime as ort

    path, net = multi
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == [mm.INPUT_NAME, mm.STYLE_INPUT]
    x = torch.rand(1, 3, 36, 44)
    mix = torch.tensor([0.2, 0.5, 0.3])
    with torch.no_grad():
        ref = net(x, mix).clamp(0, 1).numpy()
    got = mm.phases_to_image(sess.run(None, {mm.INPUT_NAME: x.numpy(), mm.STYLE_INPUT: mix.numpy()})[0], 2)
    assert np.abs(got - ref).max() <= VERIFY_BOUND
    assert json.loads(sess.get_modelmeta().custom_metadata_map[mm.STYLE_NAMES]) == NAMES


def test_each_style_by_name_and_a_half_mix_lies_between(multi) -> None:  # noqa: ANN001
    path, _ = multi
    frame = _frame()
    a, b = (_stylize(path, n, frame).astype(float) for n in ("ink", "sun"))
    c = _stylize(path, "sea", frame).astype(float)
    assert np.abs(a - b).mean() > 10 and np.abs(a - c).mean() > 10  # three different styles
    assert np.array_equal(_stylize(path, None, frame), a.astype(np.uint8))  # default: the first style
    mix = _stylize(path, "ink:0.5,sun:0.5", frame).astype(float)
    d_ab, d_ma, d_mb = (np.abs(p - q).mean() for p, q in ((a, b), (mix, a), (mix, b)))
    assert 0 < d_ma < d_ab and 0 < d_mb < d_ab, (d_ab, d_ma, d_mb)
    # the weights are relative: 2:2 is the same blend as 0.5:0.5
    assert np.array_equal(_stylize(path, "ink:2,sun:2", frame), mix.astype(np.uint8))
    assert np.array_equal(_stylize(path, [0.5, 0.5, 0.0], frame), mix.astype(np.uint8))


@pytest.mark.parametrize("style, reason", [
    ([1.0, 0.0], "has 2 weights; the model holds 3 styles"),
    ([1.0, -0.5, 0.5], ">= 0"),
    ([0.0, 0.0, 0.0], "sum to 0"),
    ([np.nan, 1.0, 0.0], ">= 0"),
    ("ink:-1,sun:2", ">= 0"),
    ("ink:0.5,moon:0.5", "unknown style 'moon'"),
    ("ink:lots", "not a number"),
])
def test_a_bad_style_vector_is_a_one_line_error(multi, style, reason) -> None:  # noqa: ANN001
    from realtime.stylizer import Stylizer

    stylizer = Stylizer(multi[0], device="cpu", lanes=1)
    with pytest.raises(ModelError) as err:
        stylizer.set_style(style)
    assert reason in str(err.value) and "\n" not in str(err.value)


def test_cli_blend_and_bad_weight(multi, tmp_path: Path) -> None:  # noqa: ANN001
    """restyle-image with a blend of a model file's styles; a negative weight is one line, exit 1."""
    from PIL import Image

    path, _ = multi
    photo = tmp_path / "in.png"
    Image.fromarray(_frame()).save(photo)
    run = lambda *a: subprocess.run([sys.executable, "-m", "realtime.cli_image", *a], capture_output=True,  # noqa: E731
                                    text=True, timeout=120)
    ok = run(str(photo), str(tmp_path / "out.png"), "--style", f"{path}@ink:0.5,sun:0.5", "--device", "cpu")
    assert ok.returncode == 0, ok.stderr
    got = np.asarray(Image.open(tmp_path / "out.png"))
    assert np.array_equal(got, _stylize(path, "ink:0.5,sun:0.5", _frame()))
    bad = run(str(photo), str(tmp_path / "bad.png"), "--style", f"{path}@ink:-1,sun:2", "--device", "cpu")
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and ">= 0" in bad.stderr
    assert not (tmp_path / "bad.png").exists()
    listed = run("--list-styles", "--style", str(path))
    assert listed.returncode == 0 and [line.split("\t")[0] for line in listed.stdout.splitlines()] == NAMES


# ------------------------------------------------------------------------------------------ zoo


def test_zoo_lists_the_styles_inside_a_model_and_blends_within_one(multi, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    import shutil

    from realtime import models
    from tiny_model import make_tiny_model

    path, _ = multi
    (tmp_path / "fast").mkdir()
    shutil.copy(path, tmp_path / "fast" / "trio.onnx")
    shutil.copy(path.with_suffix(".json"), tmp_path / "fast" / "trio.json")
    make_tiny_model(tmp_path / "fast" / "solo.onnx", style_name="solo")
    monkeypatch.setenv(models.ENV_DIR, str(tmp_path))
    extra = {s.name: s for s in models.list_styles("fast") if s.origin == "extra"}
    assert set(extra) == {"ink", "sun", "sea", "solo"}
    assert extra["sun"].mix == "sun" and extra["sun"].path.name == "trio.onnx" and extra["solo"].mix == ""
    blend = models.resolve_style("sun:0.3,sea:0.7", "fast")
    assert blend.path.name == "trio.onnx" and blend.mix == "sun:0.3,sea:0.7"
    with pytest.raises(ModelError, match="one multi-style model"):
        models.resolve_style("sun:0.5,solo:0.5", "fast")
    with pytest.raises(ModelError, match="unknown style 'moon'"):
        models.resolve_style("sun:0.5,moon:0.5", "fast")


# ------------------------------------------------------------------------------------------ training


@pytest.fixture(scope="module")
def train_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from PIL import Image

    root = tmp_path_factory.mktemp("train")
    rng = np.random.default_rng(0)
    (root / "photos").mkdir()
    for i in range(3):
        Image.fromarray(_frame(64, 72, seed=i)).save(root / "photos" / f"p{i}.png")
    for k, step in enumerate((4, 8, 16)):
        style = (rng.random((64, 64, 3)) * 255).astype(np.uint8)
        style[::step] = (40 * k, 200, 255 - 60 * k)
        Image.fromarray(style).save(root / f"paint{k}.png")
    return {"photos": root / "photos", "styles": [root / f"paint{k}.png" for k in range(3)], "root": root}


def _tiny_config(data, out: Path, **kw):  # noqa: ANN001, ANN202
    from realtime.train.config import TrainConfig

    base = dict(data=str(data["photos"]), out=str(out), arch="fast", width=16, depth=1, iterations=4, batch=3, crop=32,
                style_size=64, precision="fp32", checkpoint_every=2, preview_every=1000, log_every=1, lr=5e-2)
    base.update(kw)
    return TrainConfig(**base)


def test_joint_training_draws_a_style_per_crop_and_exports_every_style(train_data, tmp_path: Path) -> None:  # noqa: ANN001
    from realtime.train.finish import finish_run
    from realtime.train.trainer import CHECKPOINT_NAME, Trainer
    from realtime.train.vgg import load_vgg

    vgg = load_vgg(random_init=True)
    config = _tiny_config(train_data, tmp_path, name="duo", styles=[str(p) for p in train_data["styles"][:2]],
                          val=str(train_data["photos"]), preview_every=2)
    trainer = Trainer(config, vgg=vgg, progress=lambda s: None)
    assert trainer.style_names == ["paint0", "paint1"]
    style, grams, _ = trainer._style_batch(3)
    assert style.shape == (3, 2) and torch.equal(style.sum(1), torch.ones(3))
    for i in range(3):  # each crop's Gram target is its own style's
        k = int(style[i].argmax())
        assert torch.equal(grams["relu1_2"][i], trainer.style_grams_all[k]["relu1_2"][0])
    result = trainer.run()
    record = finish_run(trainer, result, log=lambda s: None)
    assert [r["name"] for r in record["styles"]] == ["paint0", "paint1"]
    # previews and the contact sheet show the styles; each style has its own evaluation
    assert list((tmp_path / "duo" / "previews").glob("*.png")) and (tmp_path / "duo" / "duo_sheet.jpg").is_file()
    assert all(r["evaluation_val_512px"]["model"]["photos"] == 3 for r in record["styles"])
    path = tmp_path / "duo" / "duo.onnx"
    net, meta = load_network(path)
    assert json.loads(meta[mm.STYLE_NAMES]) == ["paint0", "paint1"]
    # resumable: the checkpoint continues the same run with its styles
    again = Trainer(_tiny_config(train_data, tmp_path, iterations=6), resume=tmp_path / "duo" / CHECKPOINT_NAME, vgg=vgg,
                    progress=lambda s: None)
    assert again.iteration == 4 and again.style_names == ["paint0", "paint1"]


def test_style_emphasis_weighs_each_crops_style_term_by_its_painting(train_data, tmp_path: Path) -> None:  # noqa: ANN001
    """style_emphasis multiplies the style term of the crops drawn in the named painting, only those."""
    from realtime.errors import DataError
    from realtime.train.losses import STYLE_LAYERS, style_loss
    from realtime.train.trainer import Trainer
    from realtime.train.vgg import load_vgg

    torch.manual_seed(0)
    feats = {n: torch.randn(3, 4, 6, 6) for n in STYLE_LAYERS}
    targets = {n: torch.randn(3, 4, 4) for n in STYLE_LAYERS}
    layers = {n: 1.0 for n in STYLE_LAYERS}
    plain = style_loss(feats, targets, layers)
    assert torch.allclose(style_loss(feats, targets, layers, torch.ones(3)), plain)
    # only the first crop, weighed 3: three times its own share of the batch mean
    first = style_loss({n: f[:1] for n, f in feats.items()}, {n: t[:1] for n, t in targets.items()}, layers)
    assert torch.allclose(style_loss(feats, targets, layers, torch.tensor([3.0, 0.0, 0.0])), first)

    styles = [str(p) for p in train_data["styles"][:2]]
    vgg = load_vgg(random_init=True)
    trainer = Trainer(_tiny_config(train_data, tmp_path, name="emph", styles=styles, style_emphasis={"paint1": 4.0}),
                      vgg=vgg, progress=lambda s: None)
    assert trainer._emphasis([0, 1, 1]).tolist() == [1.0, 4.0, 4.0]
    assert Trainer(_tiny_config(train_data, tmp_path, name="flat", styles=styles), vgg=vgg,
                   progress=lambda s: None)._emphasis([0, 1]) is None
    # the same first step, every painting emphasised 2x: style and temporal terms double, content does not
    # (style_emphasis_temporal false: the style term alone)
    losses = []
    for i, (emphasis, temporal) in enumerate((({}, True), ({"paint0": 2.0, "paint1": 2.0}, True),
                                              ({"paint0": 2.0, "paint1": 2.0}, False))):
        torch.manual_seed(1)
        t = Trainer(_tiny_config(train_data, tmp_path, name=f"twice{i}", styles=styles, temporal_weight=1e3,
                                 style_emphasis=emphasis, style_emphasis_temporal=temporal), vgg=vgg, progress=lambda s: None)
        torch.manual_seed(2)
        losses.append({k: float(v) for k, v in t.step().items()})
        t.close()
    plain, doubled, style_only = losses
    assert doubled["content"] == pytest.approx(plain["content"], rel=1e-5) and plain["temporal"] > 0
    assert doubled["style"] == pytest.approx(2 * plain["style"], rel=1e-4)
    assert doubled["temporal"] == pytest.approx(2 * plain["temporal"], rel=1e-4)
    assert style_only["style"] == pytest.approx(2 * plain["style"], rel=1e-4)
    assert style_only["temporal"] == pytest.approx(plain["temporal"], rel=1e-4)
    for bad, reason in (({"paint9": 2.0}, "does not learn: paint9"), ({"paint0": 0.0}, "must be positive")):
        with pytest.raises(DataError, match=reason):
            _tiny_config(train_data, tmp_path, styles=styles, style_emphasis=bad).validate()


def test_content_emphasis_weighs_each_crops_content_term_by_its_painting(train_data, tmp_path: Path) -> None:  # noqa: ANN001
    """content_emphasis multiplies the content term of the crops drawn in the named painting, and no
    other term."""
    from realtime.errors import DataError
    from realtime.train.losses import content_loss
    from realtime.train.trainer import Trainer
    from realtime.train.vgg import load_vgg

    torch.manual_seed(0)
    feats, targets = {"relu2_2": torch.randn(3, 4, 6, 6)}, {"relu2_2": torch.randn(3, 4, 6, 6)}
    plain = content_loss(feats, targets, ["relu2_2"])
    assert torch.allclose(content_loss(feats, targets, ["relu2_2"], torch.ones(3)), plain)
    first = content_loss({"relu2_2": feats["relu2_2"][:1]}, {"relu2_2": targets["relu2_2"][:1]}, ["relu2_2"])
    assert torch.allclose(content_loss(feats, targets, ["relu2_2"], torch.tensor([3.0, 0.0, 0.0])), first)

    styles = [str(p) for p in train_data["styles"][:2]]
    vgg = load_vgg(random_init=True)
    trainer = Trainer(_tiny_config(train_data, tmp_path, name="cemph", styles=styles, content_emphasis={"paint0": 1.5}),
                      vgg=vgg, progress=lambda s: None)
    assert trainer._emphasis([0, 1], content=True).tolist() == [1.5, 1.0] and trainer._emphasis([0, 1]) is None
    losses = []
    for i, emphasis in enumerate(({}, {"paint0": 3.0, "paint1": 3.0})):
        torch.manual_seed(1)
        t = Trainer(_tiny_config(train_data, tmp_path, name=f"c{i}", styles=styles, temporal_weight=1e3,
                                 content_emphasis=emphasis), vgg=vgg, progress=lambda s: None)
        torch.manual_seed(2)
        losses.append({k: float(v) for k, v in t.step().items()})
        t.close()
    plain, tripled = losses
    assert plain["content"] > 0 and tripled["content"] == pytest.approx(3 * plain["content"], rel=1e-4)
    assert tripled["style"] == pytest.approx(plain["style"], rel=1e-5)
    assert tripled["temporal"] == pytest.approx(plain["temporal"], rel=1e-4)
    with pytest.raises(DataError, match="content_emphasis names a style this run does not learn: paint9"):
        _tiny_config(train_data, tmp_path, styles=styles, content_emphasis={"paint9": 2.0}).validate()


def test_add_style_learns_one_style_and_leaves_the_others_bit_exact(multi, train_data, tmp_path: Path) -> None:  # noqa: ANN001
    import onnxruntime as ort

    from realtime.train.finish import finish_run
    from realtime.train.trainer import Trainer
    from realtime.train.vgg import load_vgg

    base, _ = multi
    config = _tiny_config(train_data, tmp_path, style_image=str(train_data["styles"][2]), add_to=str(base),
                          arch="full", width=32, depth=5)  # the model's own shape settings win
    trainer = Trainer(config, vgg=load_vgg(random_init=True), progress=lambda s: None)
    assert trainer.style_names == [*NAMES, "paint2"] and trainer.config.arch == "fast"
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    result = trainer.run()
    after = trainer.model.state_dict()
    learnt = [k for k in after if not torch.equal(after[k][:3] if after[k].dim() == 2 else after[k], before[k][:3]
                                                   if before[k].dim() == 2 else before[k])]
    assert learnt == []  # shared weights and the old rows did not move
    assert any(not torch.equal(after[k][3], before[k][3]) for k in after if after[k].dim() == 2)  # the new row did
    finish_run(trainer, result, log=lambda s: None)
    new = tmp_path / trainer.config.name / f"{trainer.config.name}.onnx"
    old_s, new_s = (ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]) for p in (base, new))
    assert json.loads(new_s.get_modelmeta().custom_metadata_map[mm.STYLE_NAMES]) == [*NAMES, "paint2"]
    x = np.random.default_rng(5).random((1, 3, 40, 48), dtype=np.float32)
    for k in range(3):
        old = old_s.run(None, {"input": x, "style": np.eye(3, dtype=np.float32)[k]})[0]
        got = new_s.run(None, {"input": x, "style": np.eye(4, dtype=np.float32)[k]})[0]
        assert np.array_equal(old, got), k  # bit-exact
    added = new_s.run(None, {"input": x, "style": np.eye(4, dtype=np.float32)[3]})[0]
    assert not np.array_equal(added, old)

    # tools/install_refined.py installs an --add-style run too, and --drop takes a style out of the
    # installed model and its record: the others compute what they did
    tool, shipped = _install_tool(), _shipped_zoo(tmp_path, base)
    run, photos = tmp_path / trainer.config.name, str(train_data["photos"])
    assert tool.main([str(shipped / "zoo.json"), str(run), "--drop", "nope", "--val", photos]) == 1
    assert tool.main([str(shipped / "zoo.json"), str(run), "--drop", "sun", "--val", photos]) == 0
    installed = ort.InferenceSession(str(shipped / "zoo.onnx"), providers=["CPUExecutionProvider"])
    meta = installed.get_modelmeta().custom_metadata_map
    kept = ["ink", "sea", "paint2"]
    assert json.loads(meta[mm.STYLE_NAMES]) == kept and meta[mm.STYLE_NAME] == "zoo"
    assert [r["name"] for r in json.loads(meta[mm.STYLE_RECORDS])] == kept
    for k, was in enumerate([0, 2, 3]):
        got = installed.run(None, {"input": x, "style": np.eye(3, dtype=np.float32)[k]})[0]
        assert np.array_equal(got, new_s.run(None, {"input": x, "style": np.eye(4, dtype=np.float32)[was]})[0]), kept[k]
    record = json.loads((shipped / "zoo.json").read_text())
    assert [s["name"] for s in record["styles"]] == kept and record["dropped_styles"] == ["sun"]


def _install_tool():  # noqa: ANN202
    """tools/install_refined.py as a module."""
    import importlib.util

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("install_refined_under_test", root / "tools" / "install_refined.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def _shipped_zoo(tmp_path: Path, model: Path) -> Path:
    """A folder standing in for trained/: ``model`` as zoo.onnx and a one-stage record of NAMES."""
    import shutil

    shipped = tmp_path / "shipped"
    shipped.mkdir()
    shutil.copy2(model, shipped / "zoo.onnx")
    stage = {"settings": {"name": "zoo"}, "iterations": 7, "wall_time_s": 1.0, "final_losses": {}}
    (shipped / "zoo.json").write_text(json.dumps({"name": "zoo", "files": {"onnx": "zoo.onnx", "sheet": "zoo_sheet.jpg"},
                                                  "styles": [{"name": n} for n in NAMES], "stages": [stage]}))
    return shipped


def test_add_style_needs_its_model_and_refuses_a_duplicate_name(multi, train_data, tmp_path: Path) -> None:  # noqa: ANN001
    from realtime.errors import DataError
    from realtime.train.cli import main
    from realtime.train.trainer import Trainer

    assert main(["--add-style", str(train_data["styles"][0]), "--data", str(train_data["photos"])]) != 0
    dup = train_data["root"] / "sun.png"
    dup.write_bytes(train_data["styles"][0].read_bytes())
    with pytest.raises(DataError, match="already has a style named 'sun'"):
        Trainer(_tiny_config(train_data, tmp_path, style_image=str(dup), add_to=str(multi[0])), progress=lambda s: None)


def test_refine_trains_one_existing_style_in_its_place_and_leaves_the_others_bit_exact(multi, train_data, tmp_path: Path) -> None:  # noqa: ANN001
    """--add-style PAINTING --refine: the style named as the painting learns on from its own rows (not
    the mean), keeps its place in the file's style order and its old record under "before"."""
    import onnxruntime as ort

    from realtime.errors import DataError
    from realtime.train.finish import finish_run
    from realtime.train.trainer import Trainer
    from realtime.train.vgg import load_vgg

    base, net = multi
    sun = tmp_path / "sun.png"
    sun.write_bytes(train_data["styles"][1].read_bytes())
    vgg = load_vgg(random_init=True)
    with pytest.raises(DataError, match="has no style named 'paint0' to refine"):
        Trainer(_tiny_config(train_data, tmp_path, style_image=str(train_data["styles"][0]), add_to=str(base), refine=True),
                vgg=vgg, progress=lambda s: None)
    trainer = Trainer(_tiny_config(train_data, tmp_path, style_image=str(sun), add_to=str(base), refine=True),
                      vgg=vgg, progress=lambda s: None)
    assert trainer.style_names == ["ink", "sea", "sun"] and trainer.first_style == 2
    x = torch.rand(1, 3, 32, 40)
    with torch.no_grad():  # it starts as sun, not as the mean of the styles
        assert torch.allclose(trainer.model(x, torch.eye(3)[2]), net(x, torch.eye(3)[1]), atol=1e-6)
    result = trainer.run()
    finish_run(trainer, result, log=lambda s: None)
    new = tmp_path / trainer.config.name / f"{trainer.config.name}.onnx"
    old_s, new_s = (ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]) for p in (base, new))
    meta = new_s.get_modelmeta().custom_metadata_map
    assert json.loads(meta[mm.STYLE_NAMES]) == NAMES
    records = json.loads(meta[mm.STYLE_RECORDS])
    assert [r["name"] for r in records] == NAMES and records[1]["before"] == {"name": "sun"}
    assert "refined" in records[1]["shared_weights"]
    xs = np.random.default_rng(5).random((1, 3, 40, 48), dtype=np.float32)
    outputs = [[s.run(None, {"input": xs, "style": np.eye(3, dtype=np.float32)[k]})[0] for k in range(3)] for s in (old_s, new_s)]
    assert np.array_equal(outputs[0][0], outputs[1][0]) and np.array_equal(outputs[0][2], outputs[1][2])  # bit-exact
    assert not np.array_equal(outputs[0][1], outputs[1][1])
    assert np.abs(outputs[0][1] - outputs[1][1]).mean() < np.abs(outputs[0][0] - outputs[1][1]).mean()  # still near sun

    # tools/install_refined.py puts the refined file in the shipped one's place, under the shipped name,
    # with one more stage in the record and a sheet of every style
    import shutil

    tool, shipped = _install_tool(), _shipped_zoo(tmp_path, base)
    run = tmp_path / trainer.config.name
    assert tool.main([str(shipped / "zoo.json"), str(tmp_path), "--val", str(train_data["photos"])]) == 1  # not a run
    assert tool.main([str(shipped / "zoo.json"), str(run), "--val", str(train_data["photos"])]) == 0
    installed = ort.InferenceSession(str(shipped / "zoo.onnx"), providers=["CPUExecutionProvider"])
    assert installed.get_modelmeta().custom_metadata_map[mm.STYLE_NAME] == "zoo"
    assert all(np.array_equal(installed.run(None, {"input": xs, "style": np.eye(3, dtype=np.float32)[k]})[0], outputs[1][k])
               for k in range(3))
    record = json.loads((shipped / "zoo.json").read_text())
    assert record["name"] == "zoo" and [s["iterations"] for s in record["stages"]] == [7, result.iterations]
    assert record["iterations_all_stages"] == 7 + result.iterations and record["styles"][1]["before"] == {"name": "sun"}
    assert (shipped / "zoo_sheet.jpg").stat().st_size > 0 and not list(shipped.glob(".*"))

    # a whole-network run from trained weights (--init) installs too; one from scratch, or one that learns
    # other styles than the shipped model's, is refused and leaves the shipped files as they were
    def variant(name: str, **settings: object) -> Path:
        folder = tmp_path / name
        shutil.copytree(run, folder)
        source = json.loads((run / f"{run.name}.json").read_text())
        source["settings"] = {**source["settings"], "refine": False, "add_to": "", **settings}
        (folder / f"{name}.json").write_text(json.dumps(source))
        return folder

    before = (shipped / "zoo.onnx").read_bytes(), (shipped / "zoo.json").read_text()
    (shipped / "zoo.json").write_text(json.dumps({**json.loads(before[1]), "styles": [{"name": n} for n in reversed(NAMES)]}))
    assert tool.main([str(shipped / "zoo.json"), str(variant("joint", init="zoo.onnx")), "--val", str(train_data["photos"])]) == 1
    (shipped / "zoo.json").write_text(before[1])
    assert tool.main([str(shipped / "zoo.json"), str(variant("scratch", init="")), "--val", str(train_data["photos"])]) == 1
    assert ((shipped / "zoo.onnx").read_bytes(), (shipped / "zoo.json").read_text()) == before
    assert tool.main([str(shipped / "zoo.json"), str(tmp_path / "joint"), "--val", str(train_data["photos"])]) == 0
    assert [s["iterations"] for s in json.loads((shipped / "zoo.json").read_text())["stages"]] == [7, result.iterations, result.iterations]


# ------------------------------------------------------------------------------------------ live


def test_live_switch_inside_a_model_makes_no_new_session_and_m_morphs(multi, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    import onnxruntime as ort

    from realtime.camera import LatestFrame
    from realtime.live import LiveLoop, LiveOptions
    from realtime.models import Style
    from realtime.stylizer import Stylizer
    from test_live import FakeCamera, ScriptedDisplay

    path, _ = multi
    styles = [Style(n, path, "extra", "fast", mix=n) for n in NAMES]
    created = []
    real = ort.InferenceSession
    monkeypatch.setattr(ort, "InferenceSession", lambda *a, **k: created.append(a) or real(*a, **k))
    stylizer = Stylizer(path, device="cpu", threads=1, lanes=1, style="ink")
    sessions_at_start = len(created)
    vectors: list[np.ndarray] = []

    pressed: set[str] = set()

    def script(d: ScriptedDisplay) -> int:
        vectors.append(d.loop.stylizer.style_vector.copy())
        n = len(d.shown)
        for key, at in (("n", 3), ("m", 6)):
            if n >= at and key not in pressed:
                pressed.add(key)
                return ord(key)
        return ord("q") if "m" in pressed and d.loop._morph is None else -1

    display = ScriptedDisplay(script)
    grab = LatestFrame(FakeCamera(rate=60.0))
    loop = LiveLoop(grab, stylizer, styles, 0, display, LiveOptions(duration=20, save_dir=tmp_path),
                    loader_factory=lambda s: pytest.fail("a style of the running model was loaded"), info=lambda m: None)
    display.loop = loop
    grab.start()
    summary = loop.run()
    assert summary.end_reason == "quit"
    assert len(created) == sessions_at_start and loop.stylizer is stylizer  # no new inference session
    assert loop.style_index == 2 and np.array_equal(stylizer.style_vector, [0, 0, 1])
    # n switched at once; m passed through blends of sun and sea on the way
    assert any(np.array_equal(v, [0, 1, 0]) for v in vectors)
    between = [v for v in vectors if 0 < v[2] < 1]
    assert between and all(abs(v[1] + v[2] - 1) < 1e-6 for v in between)


def test_multi_style_distillation_takes_each_style_from_the_teacher(multi, train_data, tmp_path: Path) -> None:  # noqa: ANN001
    """The fast tier is distilled from the full multi-style model with the same style vector: each crop's
    target is the teacher's output in the crop's style."""
    from realtime.stylizer import Stylizer
    from realtime.train.trainer import Trainer
    from realtime.train.vgg import load_vgg

    paintings = []
    for name, src in zip(("sea", "ink"), train_data["styles"]):
        paintings.append(tmp_path / f"{name}.png")
        paintings[-1].write_bytes(src.read_bytes())
    config = _tiny_config(train_data, tmp_path, name="student", styles=[str(p) for p in paintings], teacher=str(multi[0]),
                          distill_weight=1.0, content_weight=0.0, style_weight=0.0, tv_weight=0.0, iterations=2)
    trainer = Trainer(config, vgg=load_vgg(random_init=True), progress=lambda s: None)
    teacher = Stylizer(multi[0], device="cpu", lanes=1)
    photo = np.asarray(trainer.data.images[0])
    for k, name in enumerate(("sea", "ink")):
        teacher.set_style(name)
        assert np.array_equal(np.asarray(trainer.data.targets[k][0]), teacher.stylize([photo])[0])
    assert not np.array_equal(np.asarray(trainer.data.targets[0][0]), np.asarray(trainer.data.targets[1][0]))
    assert trainer.run().iterations == 2
    # Resumed, the run reads every target back from the disk cache (the teacher is not run again) and
    # gets the same bytes.
    lines: list[str] = []
    resumed = Trainer(_tiny_config(train_data, tmp_path, iterations=3), resume=tmp_path / "student" / "checkpoint.pt",
                      vgg=load_vgg(random_init=True), progress=lines.append)
    photos = len(trainer.data.images)
    assert f"teacher's targets: {2 * photos} read back, 0 computed" in "\n".join(lines)
    for k in range(2):
        assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(trainer.data.targets[k], resumed.data.targets[k]))


def test_one_style_distilled_from_a_multi_style_teacher_takes_the_teachers_style_of_its_name(
        multi, train_data, tmp_path: Path) -> None:  # noqa: ANN001
    """A style refined in (or added to) a model with a teacher of several styles learns the teacher's style
    of the same name, not the teacher's first one; a name the teacher lacks is a one-line error."""
    from realtime.errors import DataError
    from realtime.stylizer import Stylizer
    from realtime.train.trainer import Trainer
    from realtime.train.vgg import load_vgg

    base = multi[0]
    sun = tmp_path / "sun.png"
    sun.write_bytes(train_data["styles"][1].read_bytes())
    vgg = load_vgg(random_init=True)
    trainer = Trainer(_tiny_config(train_data, tmp_path, style_image=str(sun), add_to=str(base), refine=True,
                                   teacher=str(base), distill_weight=1.0), vgg=vgg, progress=lambda s: None)
    teacher = Stylizer(base, device="cpu", lanes=1)
    photo = np.asarray(trainer.data.images[0])
    teacher.set_style("sun")
    assert np.array_equal(np.asarray(trainer.data.targets[0][0]), teacher.stylize([photo])[0])
    teacher.set_style("ink")  # the teacher's first style, which it was taught before
    assert not np.array_equal(np.asarray(trainer.data.targets[0][0]), teacher.stylize([photo])[0])

    moon = tmp_path / "moon.png"
    moon.write_bytes(train_data["styles"][2].read_bytes())
    with pytest.raises(DataError, match="has no style 'moon' \\(it has ink, sun, sea\\)"):
        Trainer(_tiny_config(train_data, tmp_path, style_image=str(moon), add_to=str(base), teacher=str(base),
                             distill_weight=1.0), vgg=vgg, progress=lambda s: None)


def test_add_style_takes_the_models_recipe_unless_told(tmp_path: Path, train_data) -> None:  # noqa: ANN001
    """A style added to a model is trained with the loss balance and crops the model was trained with, and
    with a step size of its own."""
    from realtime.train.cli import ADD_STYLE_LR, build_parser, config_from_args

    settings = {**SETTINGS, "content_weight": 7e5, "crop": 48, "style_size": 200, "data": "/elsewhere",
                "lattice_weight": 3e9, "lr": 5e-5, "style_emphasis": {"paint0": 3.0, "ink": 2.0},
                "content_emphasis": {"paint0": 1.5, "sun": 1.2}}
    model = _export(_multi_net(styles=2), tmp_path / "two.onnx", ["ink", "sun"], settings)
    argv = ["--add-style", str(train_data["styles"][0]), "--to", str(model), "--data", str(train_data["photos"])]
    config = config_from_args(build_parser().parse_args(argv))
    assert (config.content_weight, config.crop, config.style_size, config.lattice_weight) == (7e5, 48, 200, 3e9)
    assert config.data == str(train_data["photos"]) and config.iterations == 800
    # not the step size the model's last stage ended on: the new rows start far from their painting
    assert config.lr == ADD_STYLE_LR != 5e-5
    assert config.style_emphasis == {"paint0": 3.0}  # the painting's own factor; the model's other styles' dropped
    assert config.content_emphasis == {"paint0": 1.5}
    config = config_from_args(build_parser().parse_args([*argv, "--crop", "64", "--iterations", "5", "--lr", "1e-4"]))
    assert (config.crop, config.iterations, config.content_weight, config.lr) == (64, 5, 7e5, 1e-4)


def test_lattice_weight_adds_the_grid_penalty_to_the_step_only_when_set(train_data, tmp_path: Path) -> None:  # noqa: ANN001
    """--lattice-weight: the step's total gains the stride-grid penalty (losses.lattice_loss of the output,
    times the weight) and the loss table a "lattice" column; without it the table keeps its columns."""
    from realtime.train.cli import build_parser, config_from_args
    from realtime.train.losses import lattice_loss
    from realtime.train.trainer import Trainer
    from realtime.train.vgg import load_vgg

    vgg = load_vgg(random_init=True)
    styles = [str(p) for p in train_data["styles"][:2]]
    plain = Trainer(_tiny_config(train_data, tmp_path, name="plain", styles=styles), vgg=vgg, progress=lambda s: None)
    assert "lattice" not in plain.step()
    plain.close()
    # the other terms weighed down, so that a total without the lattice term would be far off
    trainer = Trainer(_tiny_config(train_data, tmp_path, name="grid", styles=styles, lattice_weight=1e6, content_weight=1e-3,
                                   style_weight=1e-3, tv_weight=1e-3), vgg=vgg, progress=lambda s: None)
    seen: list[torch.Tensor] = []
    forward = trainer.net.forward
    trainer.net.forward = lambda x, style=None: seen.append(forward(x, style)) or seen[-1]  # the step's output
    losses = {k: float(v) for k, v in trainer.step().items()}
    assert losses["lattice"] == pytest.approx(1e6 * float(lattice_loss(seen[0].detach().float())), rel=1e-4)
    assert losses["lattice"] > 0
    parts = sum(losses[k] for k in ("content", "style", "tv", "lattice", "distill", "temporal"))
    assert losses["total"] == pytest.approx(parts, rel=1e-5) and losses["lattice"] > 0.5 * losses["total"]
    trainer.net.forward = forward
    trainer.run()  # the loss table and curves take the column
    assert "lattice" in (tmp_path / "grid" / "losses.csv").read_text().splitlines()[0].split(",")
    trainer.close()
    args = build_parser().parse_args(["--styles", *styles, "--data", str(train_data["photos"]), "--lattice-weight", "2e9"])
    assert config_from_args(args).lattice_weight == 2e9
