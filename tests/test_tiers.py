"""The fast tier: its network (cost budget, export), distillation from a teacher, and how a tier is
chosen (``--tier``, by device) for a style installed in one or both tiers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from realtime import models
from realtime.errors import ModelError

from tiny_model import make_tiny_model

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def two_tier_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A models folder: ``duo`` in both tiers, ``solo`` only in the full tier, ``quick`` only fast."""
    d = tmp_path / "zoo"
    (d / "fast").mkdir(parents=True)
    make_tiny_model(d / "duo.onnx", style_name="duo", seed=1)
    make_tiny_model(d / "fast" / "duo.onnx", style_name="duo", seed=2)
    make_tiny_model(d / "solo.onnx", style_name="solo", seed=3)
    make_tiny_model(d / "fast" / "quick.onnx", style_name="quick", seed=4)
    (d / "zoo.json").write_text(json.dumps({"default": "duo"}))
    monkeypatch.setenv(models.ENV_DIR, str(d))
    monkeypatch.setattr(models, "shipped_dir", lambda: None)
    return d


def test_tier_lookup(two_tier_dir: Path) -> None:
    d = two_tier_dir
    assert models.resolve_style("duo", "full").path == d / "duo.onnx"
    assert models.resolve_style("duo", "fast").path == d / "fast" / "duo.onnx"
    assert models.resolve_style("duo", "fast").tier == "fast"
    # a style missing in the asked tier falls back to the tier it has
    assert models.resolve_style("solo", "fast").path == d / "solo.onnx"
    assert models.resolve_style("quick", "full").path == d / "fast" / "quick.onnx"
    assert models.default_style("fast").path == d / "fast" / "duo.onnx"
    assert [s.name for s in models.list_styles("fast")] == ["duo", "quick", "solo"]
    assert models.tiers_of("duo") == ["full", "fast"] and models.tiers_of("solo") == ["full"]
    with pytest.raises(ModelError, match="unknown tier"):
        models.list_styles("medium")


def test_pick_tier_by_device() -> None:
    calls = []

    def cuda(result: bool):
        def probe() -> bool:
            calls.append(result)
            return result
        return probe

    assert models.pick_tier("auto", "cpu", cuda(True)) == "fast"
    assert calls == []  # --device cpu needs no CUDA probe
    assert models.pick_tier("auto", "auto", cuda(False)) == "fast"
    assert models.pick_tier("auto", "auto", cuda(True)) == "full"
    assert models.pick_tier("full", "cpu", cuda(False)) == "full"
    assert models.pick_tier("fast", "cuda", cuda(True)) == "fast"
    with pytest.raises(ModelError):
        models.pick_tier("turbo", "cpu", cuda(False))


def test_cli_runs_the_tier_asked(two_tier_dir: Path, clips, run_cli, tmp_path: Path) -> None:
    clip = clips("tier.mp4", frames=4)
    for tier, expect in (("fast", two_tier_dir / "fast" / "duo.onnx"), ("full", two_tier_dir / "duo.onnx"),
                         ("auto", two_tier_dir / "fast" / "duo.onnx")):
        out = tmp_path / f"out_{tier}.mp4"
        code, stdout, _ = run_cli(clip, out, "--tier", tier, "--device", "cpu", "--json", "--quiet")
        assert code == 0
        assert Path(json.loads(stdout)["model"]) == expect, tier


def test_a_style_without_a_fast_model_says_so_on_the_cpu(two_tier_dir: Path, clips, run_cli, tmp_path: Path) -> None:
    """--tier auto on the CPU runs a full-tier-only style on the full network, and says it is slow, once;
    a style with a fast model, an explicit --tier full and a model file given by path say nothing."""
    clip = clips("tier.mp4", frames=4)
    note = "has no fast-tier model"
    code, _, stderr = run_cli(clip, tmp_path / "solo.mp4", "--style", "solo", "--device", "cpu")
    assert code == 0 and stderr.count(note) == 1
    assert "solo has no fast-tier model: the full network runs on the CPU" in stderr and "duo, quick" in stderr
    for args in (("--style", "duo"), ("--style", "solo", "--tier", "full"), ("--style", str(two_tier_dir / "solo.onnx"))):
        code, _, stderr = run_cli(clip, tmp_path / "other.mp4", *args, "--device", "cpu", "--overwrite")
        assert code == 0 and note not in stderr, args


def test_list_styles_shows_tiers(two_tier_dir: Path, run_cli) -> None:
    code, stdout, _ = run_cli("--list-styles")
    assert code == 0
    lines = {line.split("\t")[0].replace(" (default)", ""): line.split("\t")[1] for line in stdout.splitlines()}
    assert lines == {"duo": "full+fast", "quick": "fast", "solo": "full"}


# ------------------------------------------------------------------------------------------- the network

torch = pytest.importorskip("torch")


def test_fast_network_budget_and_shapes() -> None:
    from realtime.train.model import FastTransformNet, TransformNet, macs_per_pixel

    fast = FastTransformNet(64, 4)
    # the budget for real time on 2 cores: about 9 k multiply-adds per pixel (full: ~154 k)
    assert macs_per_pixel(fast) <= 9000
    assert macs_per_pixel(TransformNet(32, 5)) > 15 * macs_per_pixel(fast)
    for h, w in ((64, 64), (36, 100)):
        y = fast(torch.rand(2, 3, h, w))
        assert y.shape == (2, 3, h, w)


def test_fast_network_cannot_paint_a_grid() -> None:
    """No checkerboard by construction: with any weights, a constant image gives a constant output away
    from the borders (a pixel-shuffle decoder, the first version, gives a 4-pixel periodic pattern)."""
    from realtime.train.model import FastTransformNet

    torch.manual_seed(0)
    net = FastTransformNet(16, 1).eval()
    for p in net.parameters():
        p.data += 0.3 * torch.randn_like(p)  # arbitrary weights, not just the initialisation
    with torch.no_grad():
        y = net(torch.full((1, 3, 64, 64), 0.4))
    inner = y[..., 16:-16, 16:-16]
    assert torch.allclose(inner, inner[..., :1, :1].expand_as(inner), atol=1e-5)


def test_fast_network_with_its_border_has_no_frame() -> None:
    """Zero padding darkens or lightens the picture's border (a frame); run as the runtime runs it, with
    the mirrored margin the model asks for, a constant image stays constant right up to its edges."""
    from realtime.train.export import build_metadata
    from realtime.train.model import FastTransformNet, forward_with_border

    torch.manual_seed(0)
    net = FastTransformNet(16, 1).eval()
    for p in net.parameters():
        p.data += 0.3 * torch.randn_like(p)
    x = torch.full((1, 3, 64, 64), 0.4)
    with torch.no_grad():
        plain = net(x)
        bordered = forward_with_border(net, x, net.runtime_border)
    assert bordered.shape == x.shape
    assert (plain[..., :2, :] - plain[..., 32:33, 32:33]).abs().max() > 1e-3  # the frame without it
    assert torch.allclose(bordered, bordered[..., :1, :1].expand_as(bordered), atol=1e-5)
    meta = build_metadata({"name": "f"}, "", 1, {}, tier="fast", border=net.runtime_border)
    assert meta["border"] == str(net.runtime_border) and net.runtime_border > 0


def test_nearest_upsampling_conv_equals_its_phase_form() -> None:
    import torch.nn.functional as F

    from realtime.modelmeta import phases_to_image
    from realtime.train.model import nearest_up_conv_as_phases

    torch.manual_seed(0)
    conv = torch.nn.Conv2d(5, 3, 3, padding=1)
    x = torch.randn(2, 5, 7, 9)  # odd sizes: the border rows and columns are checked too
    with torch.no_grad():
        want = conv(F.interpolate(x, scale_factor=2, mode="nearest")) * 0.125 + 0.5
        phases = nearest_up_conv_as_phases(conv, 0.125, 0.5)(x)
    assert phases.shape == (2, 12, 7, 9)
    got = phases_to_image(phases.numpy(), 2)
    assert got.shape == want.shape == (2, 3, 14, 18)
    assert np.abs(got - want.numpy()).max() < 1e-5
    # a different function is not matched (the test can fail): swap two taps of the kernel
    conv.weight.data[..., 0, 0], conv.weight.data[..., 2, 2] = conv.weight.data[..., 2, 2].clone(), conv.weight.data[..., 0, 0].clone()
    with torch.no_grad():
        swapped = phases_to_image(nearest_up_conv_as_phases(conv, 0.125, 0.5)(x).numpy(), 2)
    assert np.abs(swapped - want.numpy()).max() > 1e-3
    with pytest.raises(ValueError):
        nearest_up_conv_as_phases(torch.nn.Conv2d(5, 3, 5, padding=2))


def test_fast_network_export_form_is_the_same_function() -> None:
    from realtime.modelmeta import phases_to_image
    from realtime.train.model import FastTransformNet

    torch.manual_seed(0)
    net = FastTransformNet(16, 2).eval()
    for p in net.parameters():
        p.data += 0.05 * torch.randn_like(p)
    x = torch.rand(2, 3, 36, 100)
    with torch.no_grad():
        got = phases_to_image(net.export_form()(x).numpy(), net.output_phases)
        assert np.abs(got - net(x).numpy()).max() < 1e-5


@pytest.mark.parametrize("border,channels", [(16, "RGB"), (3, "RGB"), (16, "BGR")])  # 3: the crop starts inside a 2×2 block
def test_fast_export_runs_in_the_stylizer_as_trained(tmp_path: Path, border: int, channels: str) -> None:
    """The exported file (its output in 2×2 phases) gives, through the runtime's pad / run / interleave /
    crop, the picture the PyTorch network gives with the same mirrored margin."""
    pytest.importorskip("onnx")
    from realtime.stylizer import Stylizer
    from realtime.train.export import VERIFY_BOUND, export_onnx, read_metadata
    from realtime.train.model import FastTransformNet

    torch.manual_seed(0)
    model = FastTransformNet(16, 2)
    for p in model.parameters():
        p.data += 0.05 * torch.randn_like(p)
    model.eval()
    path = tmp_path / "fast.onnx"
    meta = {"style_name": "f", "tier": "fast", "border": str(border), "channels": channels}
    assert export_onnx(model, path, meta) <= VERIFY_BOUND
    import onnx

    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    assert "ConvTranspose" not in ops and "DepthToSpace" not in ops and ops.count("Resize") == 1  # the export form was written
    assert read_metadata(path)["output_phases"] == "2"
    s = Stylizer(path, device="cpu")
    assert s.info.style_name == "f" and s.info.output_phases == 2
    frame = (np.random.default_rng(0).random((37, 51, 3)) * 255).astype(np.uint8)  # odd size: padded
    got = s.stylize([frame])[0]
    assert got.shape == frame.shape and got.flags.c_contiguous
    # the reference: PyTorch with the runtime's margin and size padding (reflect, then cropped)
    ph, pw = s.padding(37, 51)
    order = [2, 1, 0] if channels == "BGR" else [0, 1, 2]  # a BGR model sees and returns BGR
    x = torch.from_numpy(frame[..., order].copy()).permute(2, 0, 1)[None].float() / 255
    x = torch.nn.functional.pad(x, (border, pw - border, border, ph - border), mode="reflect")
    with torch.no_grad():
        ref = model(x).clamp(0, 1)[0, order, border:border + 37, border:border + 51]
    ref_u8 = (ref.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    assert np.abs(got.astype(int) - ref_u8.astype(int)).max() <= 1
    assert np.abs(got.astype(int) - np.roll(ref_u8, 1, axis=0).astype(int)).max() > 1  # a one-row slip is caught


def test_distillation_learns_the_teacher(tmp_path: Path) -> None:
    """A fast student distilled from a teacher model moves towards the teacher's output."""
    pytest.importorskip("PIL")
    from PIL import Image

    from realtime.stylizer import Stylizer
    from realtime.train.config import TrainConfig
    from realtime.train.trainer import Trainer
    from realtime.train.vgg import load_vgg

    rng = np.random.default_rng(0)
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(3):
        y, x = np.mgrid[0:72, 0:88]
        a = np.stack([x / 88, y / 72, (x * y) / (88 * 72)], -1) * 255
        a[rng.integers(0, 50):][:20, rng.integers(0, 60):][:, :20] = rng.integers(0, 255, 3)
        Image.fromarray(a.astype(np.uint8)).save(photos / f"p{i}.png")
    Image.fromarray((rng.random((32, 32, 3)) * 255).astype(np.uint8)).save(tmp_path / "style.png")
    teacher = make_tiny_model(tmp_path / "teacher.onnx", style_name="teacher", seed=7)
    cfg = TrainConfig(style_image=str(tmp_path / "style.png"), data=str(photos), out=str(tmp_path / "runs"), name="student",
                      arch="fast", width=16, depth=1, iterations=60, batch=2, crop=32, scale_min=1.0, scale_max=1.5,
                      lr=5e-3, precision="fp32", content_weight=0, style_weight=0, tv_weight=0, teacher=str(teacher),
                      distill_weight=1.0, checkpoint_every=1000, preview_every=1000, log_every=1)
    trainer = Trainer(cfg, vgg=load_vgg(random_init=True), progress=lambda s: None)
    photo = np.asarray(Image.open(photos / "p0.png").convert("RGB"))[:64, :80]
    target = Stylizer(teacher, device="cpu").stylize([photo])[0].astype(np.float32)

    def error() -> float:
        x = torch.from_numpy(photo.transpose(2, 0, 1)[None].astype(np.float32) / 255)
        y = trainer.stylize(x)[0].numpy().transpose(1, 2, 0) * 255
        return float(np.abs(y - target).mean())

    before = error()
    result = trainer.run()
    assert [h["content"] for h in result.history] == [0.0] * 60  # no VGG pass in a pure distillation
    assert error() < 0.6 * before


def test_config_rejects_bad_arch_and_missing_teacher(tmp_path: Path) -> None:
    from realtime.errors import DataError
    from realtime.train.config import TrainConfig

    style = tmp_path / "s.png"
    shutil.copy(REPO / "samples" / "SOURCES.md", style)  # any existing file: validate checks presence
    with pytest.raises(DataError, match="arch"):
        TrainConfig(style_image=str(style), data=str(tmp_path), arch="tiny").validate()
    with pytest.raises(DataError, match="teacher"):
        TrainConfig(style_image=str(style), data=str(tmp_path), arch="fast", distill_weight=1.0).validate()
    with pytest.raises(DataError, match="residual_norm"):
        TrainConfig(style_image=str(style), data=str(tmp_path), arch="full", residual_norm=False).validate()


def test_fast_network_without_residual_norm() -> None:
    """``residual_norm=False`` leaves the residual blocks without instance norm (the encoder and decoder
    keep theirs), and its export form is still the same function."""
    from realtime.modelmeta import phases_to_image
    from realtime.train.model import build_model, style_norms

    lean, plain = build_model("fast", 16, 2, residual_norm=False), build_model("fast", 16, 2)
    norms = lambda m: len(style_norms(m))  # noqa: E731
    assert norms(lean.residuals) == 0 and norms(plain.residuals) == 2
    assert norms(lean) == norms(plain) - 2 == 3
    lean.eval()
    x = torch.rand(1, 3, 32, 48)
    with torch.no_grad():
        got = phases_to_image(lean.export_form()(x).numpy(), lean.output_phases)
        assert np.abs(got - lean(x).numpy()).max() < 1e-5
    with pytest.raises(ValueError):
        build_model("full", 8, 1, residual_norm=False)


def test_shipped_fast_styles_have_full_twins_and_the_default_has_both() -> None:
    """Every shipped fast-tier style has a full-tier twin, the default style has both (so the README's
    first command runs the fast network on the CPU), and the fast files' metadata and records say fast.
    A model file may hold several styles: its record lists them, its metadata names them. (The full tier
    may hold styles the fast tier lacks, e.g. one added with --add-style: they run the full network, and say so.)"""
    onnx = pytest.importorskip("onnx")
    shipped = REPO / "trained"
    found = models._scan(shipped, "shipped")  # how the zoo reads a folder: (name, tier) -> Style
    full = {name: style.path for (name, tier), style in found.items() if tier == "full"}
    fast = {name: style.path for (name, tier), style in found.items() if tier == "fast"}
    assert fast and set(fast) <= set(full)
    default = json.loads((shipped / "zoo.json").read_text())["default"]
    assert default in fast and default in full
    for name, path in fast.items():
        props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
        names = json.loads(props["style_names"]) if "style_names" in props else [props["style_name"]]
        assert props["tier"] == "fast" and name in names
        record = json.loads(path.with_suffix(".json").read_text())
        assert record["tier"] == "fast" and record["settings"]["arch"] == "fast"


def _tiny_style_run(tmp_path: Path, seed: int, **settings: object) -> tuple[object, dict]:
    """Two random photos and a random painting in ``tmp_path``, a random-weight VGG, and the settings of a
    tiny single-style run on them (``settings`` added): what the --init tests train with."""
    pytest.importorskip("PIL")
    from PIL import Image

    from realtime.train.vgg import load_vgg

    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(seed)
    for i in range(2):
        Image.fromarray((rng.random((48, 48, 3)) * 255).astype(np.uint8)).save(photos / f"p{i}.png")
    Image.fromarray((rng.random((32, 32, 3)) * 255).astype(np.uint8)).save(tmp_path / "style.png")
    base = dict(style_image=str(tmp_path / "style.png"), data=str(photos), batch=1, crop=32, precision="fp32",
                checkpoint_every=1000, preview_every=1000, log_every=1, style_size=32, **settings)
    return load_vgg(random_init=True), base


def test_init_starts_a_new_run_from_another_runs_weights(tmp_path: Path) -> None:
    """--init copies the network weights of a checkpoint into a fresh run (a fine-tune after
    distillation), and refuses a checkpoint of another architecture."""
    from realtime.errors import DataError
    from realtime.train.config import TrainConfig
    from realtime.train.trainer import CHECKPOINT_NAME, Trainer

    vgg, base = _tiny_style_run(tmp_path, seed=1, arch="fast", width=16, depth=1)
    first = Trainer(TrainConfig(out=str(tmp_path / "a"), name="a", iterations=3, seed=1, **base), vgg=vgg, progress=lambda s: None)
    first.run()
    ckpt = tmp_path / "a" / "a" / CHECKPOINT_NAME
    second = Trainer(TrainConfig(out=str(tmp_path / "b"), name="b", iterations=2, seed=2, init=str(ckpt), **base), vgg=vgg,
                     progress=lambda s: None)
    for (k, v), w in zip(first.model.state_dict().items(), second.model.state_dict().values()):
        assert torch.equal(v, w), k
    assert second.iteration == 0
    with pytest.raises(DataError, match="fast network"):
        Trainer(TrainConfig(out=str(tmp_path / "c"), name="c", iterations=1, init=str(ckpt), **{**base, "arch": "full", "width": 8}),
                vgg=vgg, progress=lambda s: None)


@pytest.mark.parametrize("arch, width", [("fast", 16), ("full", 4)])
def test_init_deepens_a_network_whose_new_blocks_start_as_the_identity_and_learn(tmp_path: Path, arch: str, width: int) -> None:
    """--init from a network with fewer residual blocks: the run's network computes what the saved one did
    at its first step (the extra blocks add nothing yet), and the extra blocks' weights move when it trains.
    A shallower run than the saved network is still refused."""
    from realtime.errors import DataError
    from realtime.train.config import TrainConfig
    from realtime.train.trainer import CHECKPOINT_NAME, Trainer

    vgg, base = _tiny_style_run(tmp_path, seed=4, arch=arch, width=width, lr=1e-2)
    Trainer(TrainConfig(out=str(tmp_path / "a"), name="a", iterations=2, depth=1, **base), vgg=vgg,
            progress=lambda s: None).run()
    ckpt = tmp_path / "a" / "a" / CHECKPOINT_NAME
    shallow = Trainer(TrainConfig(out=str(tmp_path / "s"), name="s", iterations=0, depth=1, init=str(ckpt), **base),
                      vgg=vgg, progress=lambda s: None).model.eval()
    said: list[str] = []
    deep = Trainer(TrainConfig(out=str(tmp_path / "b"), name="b", iterations=2, depth=3, init=str(ckpt), **base), vgg=vgg,
                   progress=said.append)
    assert "1 residual blocks, 2 more added after them" in "\n".join(said)
    x = torch.rand(1, 3, 32, 40)
    with torch.no_grad():
        assert torch.equal(shallow(x), deep.model.eval()(x))
    before = {k: v.clone() for k, v in deep.model.state_dict().items() if k.startswith(("residuals.1.", "residuals.2."))}
    deep.model.train()
    deep.run()
    after = deep.model.state_dict()
    assert any(not torch.equal(v, after[k]) for k, v in before.items() if k.endswith("weight"))
    with torch.no_grad():
        assert not torch.equal(shallow(x), deep.model.eval()(x))
    with pytest.raises(DataError, match=r"depth 3, .* builds \w+ \d+/1,"):
        Trainer(TrainConfig(out=str(tmp_path / "c"), name="c", iterations=1, depth=1,
                            init=str(tmp_path / "b" / "b" / CHECKPOINT_NAME), **base), vgg=vgg, progress=lambda s: None)


def _read_back(wide, tmp_path: Path, x: torch.Tensor):  # noqa: ANN001, ANN202
    """The widened run's network exported and loaded back: it computes what the trained one does."""
    from realtime.train.export import build_metadata, export_onnx, load_network

    path = tmp_path / "b.onnx"
    export_onnx(wide.model, path, build_metadata(wide.config.to_dict(), "", 2, {}))
    back, _meta = load_network(path)
    with torch.no_grad():
        assert torch.allclose(back.eval()(x), wide.model.eval()(x), atol=1e-5)
    return back


def _init_from_the_wide_run(tmp_path: Path, vgg, base: dict) -> None:  # noqa: ANN001
    """A run of the default (narrower) widths started from the widened run "b": refused."""
    from realtime.train.config import TrainConfig
    from realtime.train.trainer import CHECKPOINT_NAME, Trainer

    Trainer(TrainConfig(out=str(tmp_path / "c"), name="c", iterations=1, init=str(tmp_path / "b" / "b" / CHECKPOINT_NAME),
                        **base), vgg=vgg, progress=lambda s: None)


def test_init_widens_the_fast_decoder_whose_new_channels_start_unread_and_learn(tmp_path: Path) -> None:
    """--init from a fast network with a narrower decoder (--decoder-width): the run's network computes what
    the saved one did at its first step (the new channels' readers are zero), those readers and the new
    channels' own weights move when it trains, and the exported file reads back at the new width. A
    narrower decoder than the saved one is refused, and the setting belongs to the fast arch only."""
    from realtime.errors import DataError
    from realtime.train.config import TrainConfig
    from realtime.train.trainer import CHECKPOINT_NAME, Trainer

    vgg, base = _tiny_style_run(tmp_path, seed=5, arch="fast", width=16, depth=1, lr=1e-2)
    Trainer(TrainConfig(out=str(tmp_path / "a"), name="a", iterations=2, **base), vgg=vgg, progress=lambda s: None).run()
    ckpt = tmp_path / "a" / "a" / CHECKPOINT_NAME
    narrow = Trainer(TrainConfig(out=str(tmp_path / "s"), name="s", iterations=0, init=str(ckpt), **base),
                     vgg=vgg, progress=lambda s: None).model.eval()
    assert narrow.decoder[2].out_channels == 4  # width 16 // 8, at least 4
    said: list[str] = []
    wide = Trainer(TrainConfig(out=str(tmp_path / "b"), name="b", iterations=2, decoder_width=8, init=str(ckpt), **base),
                   vgg=vgg, progress=said.append)
    assert "decoder widened from 4 to 8 channels" in "\n".join(said)
    assert wide.model.decoder[2].out_channels == 8 and wide.model.decoder[0].out_channels == 16
    x = torch.rand(1, 3, 32, 40)
    with torch.no_grad():
        assert torch.equal(narrow(x), wide.model.eval()(x))
    readers = [wide.model.decoder[2].weight[:, 8:], wide.model.decoder[6].weight[:, 4:]]
    assert all(not r.any() for r in readers)
    new_rows = wide.model.decoder[2].weight[4:].detach().clone()
    wide.model.train()
    wide.run()
    assert all(r.abs().sum() > 0 for r in readers)
    assert not torch.equal(new_rows, wide.model.decoder[2].weight[4:])
    assert _read_back(wide, tmp_path, x).decoder[2].out_channels == 8
    with pytest.raises(DataError, match="decoder width 8, encoder width 4; this run builds fast 16/1, residual norm True, "
                                        "decoder width 4"):
        _init_from_the_wide_run(tmp_path, vgg, base)
    with pytest.raises(DataError, match="decoder_width is a setting of the fast arch"):
        TrainConfig(**{**base, "arch": "full", "decoder_width": 8}).validate()


def test_init_widens_the_fast_encoder_whose_new_channels_start_unread_and_learn(tmp_path: Path) -> None:
    """--init from a fast network with a narrower first convolution (--encoder-width): the run's network
    computes what the saved one did (the stride-2 convolution that reads the new channels starts at zero on
    them), the new channels learn, the exported file reads back at the new width, and a narrower encoder
    than the saved one is refused."""
    from realtime.errors import DataError
    from realtime.train.config import TrainConfig
    from realtime.train.trainer import CHECKPOINT_NAME, Trainer

    vgg, base = _tiny_style_run(tmp_path, seed=6, arch="fast", width=16, depth=1, lr=1e-2)
    Trainer(TrainConfig(out=str(tmp_path / "a"), name="a", iterations=2, **base), vgg=vgg, progress=lambda s: None).run()
    ckpt = tmp_path / "a" / "a" / CHECKPOINT_NAME
    narrow = Trainer(TrainConfig(out=str(tmp_path / "s"), name="s", iterations=0, init=str(ckpt), **base),
                     vgg=vgg, progress=lambda s: None).model.eval()
    assert narrow.encoder[0].out_channels == 4
    said: list[str] = []
    wide = Trainer(TrainConfig(out=str(tmp_path / "b"), name="b", iterations=2, encoder_width=8, init=str(ckpt), **base),
                   vgg=vgg, progress=said.append)
    assert "encoder widened from 4 to 8 channels" in "\n".join(said)
    assert wide.model.encoder[0].out_channels == 8 and wide.model.decoder[2].out_channels == 4  # the decoder as it was
    x = torch.rand(1, 3, 32, 40)
    with torch.no_grad():
        assert torch.equal(narrow(x), wide.model.eval()(x))
    reader = wide.model.encoder[3].weight[:, 4:]
    assert not reader.any()
    new_filters = wide.model.encoder[0].weight[4:].detach().clone()
    wide.model.train()
    wide.run()
    assert reader.abs().sum() > 0
    assert not torch.equal(new_filters, wide.model.encoder[0].weight[4:])
    assert _read_back(wide, tmp_path, x).encoder[0].out_channels == 8
    with pytest.raises(DataError, match="encoder width 8; this run builds fast 16/1, residual norm True, decoder width 4, "
                                        "encoder width 4"):
        _init_from_the_wide_run(tmp_path, vgg, base)
    with pytest.raises(DataError, match="encoder_width is a setting of the fast arch"):
        TrainConfig(**{**base, "arch": "full", "encoder_width": 8}).validate()
