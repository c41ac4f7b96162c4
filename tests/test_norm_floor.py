"""The instance norms' variance floor (model.calibrate_norm_floor, --norm-floor): faint input stays faint,
the floors travel in checkpoints and exported files, and a run sets them once, from its own crops."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("PIL")
from PIL import Image  # noqa: E402

from realtime import modelmeta as mm  # noqa: E402
from realtime.train.config import TrainConfig  # noqa: E402
from realtime.train.export import export_onnx, load_network  # noqa: E402
from realtime.train.model import (  # noqa: E402
    DEFAULT_NORM_EPS, build_model, calibrate_norm_floor, has_norm_floor, norm_eps, set_norm_eps, style_norms,
)
from realtime.train.trainer import Trainer  # noqa: E402
from realtime.train.vgg import load_vgg  # noqa: E402


def _photos(n: int, size: int = 32, seed: int = 0) -> torch.Tensor:
    """Normally exposed 'photos': smooth colour fields with edges and texture over the full range."""
    g = torch.Generator().manual_seed(seed)
    base = torch.nn.functional.interpolate(torch.rand(n, 3, 4, 4, generator=g), size=(size, size), mode="bilinear",
                                           align_corners=False)
    return (0.6 * base + 0.4 * torch.rand(n, 3, size, size, generator=g)).clamp(0, 1)


def _net(arch: str = "full", styles: int = 2):  # noqa: ANN202
    torch.manual_seed(1)
    net = build_model(arch, 8, 1, styles=styles)
    for m in style_norms(net):
        with torch.no_grad():
            m.weight.normal_(1.0, 0.3)
            m.bias.normal_(0.0, 0.3)
    return net.eval()


def _contrast(net, x: torch.Tensor, style: torch.Tensor) -> float:  # noqa: ANN001
    with torch.no_grad():
        return float(net(x, style).std(dim=(2, 3)).mean())


def _faint_and_normal(factor: float) -> tuple[float, float]:
    """How much contrast a faint photo and a normal one keep once the floor is set (each ÷ without)."""
    net, style = _net(), torch.tensor([1.0, 0.0])
    photo = _photos(1, 64, seed=5)
    faint = 0.5 + 0.03 * (photo - 0.5)  # the same picture with 3 % of its contrast: haze, a storm sky
    before_normal, before_faint = _contrast(net, photo, style), _contrast(net, faint, style)
    # without a floor, instance norm blows the faint copy up to the contrast of the original
    assert before_faint == pytest.approx(before_normal, rel=0.05)
    floors = calibrate_norm_floor(net, _photos(8, 64), factor)
    assert norm_eps(net) == pytest.approx(floors) and min(floors) > 100 * DEFAULT_NORM_EPS
    return _contrast(net, faint, style) / before_faint, _contrast(net, photo, style) / before_normal


def test_a_floor_of_one_median_keeps_a_faint_photo_faint() -> None:
    faint, normal = _faint_and_normal(1.0)
    assert faint < 0.2 * normal, (faint, normal)


def test_a_floor_below_the_median_is_undone_by_the_norms_after_it() -> None:
    # each later norm stretches the damped feature back (strength a leaves a norm at a / sqrt(a² + K)),
    # which is why the floor is K = 1 median and not a small fraction of it
    faint, normal = _faint_and_normal(0.25)
    assert faint > 0.8 * normal, (faint, normal)


@pytest.mark.parametrize("arch", ["full", "fast"])
def test_floors_travel_in_state_dicts_and_exported_files(arch: str, tmp_path: Path) -> None:
    net = _net(arch)
    floors = [0.01 * (i + 1) for i in range(len(style_norms(net)))]  # each norm its own, so order errors show
    set_norm_eps(net, floors)
    again = build_model(arch, 8, 1, styles=2)
    again.load_state_dict(net.state_dict())
    assert norm_eps(again) == norm_eps(net)
    # a state dict from before the floor existed loads with instance norm's usual epsilon
    old = {k: v for k, v in net.state_dict().items() if not k.endswith(".eps")}
    legacy = build_model(arch, 8, 1, styles=2)
    legacy.load_state_dict(old)
    assert set(norm_eps(legacy)) == {float(torch.tensor(DEFAULT_NORM_EPS))}
    path = tmp_path / "floored.onnx"
    meta = {mm.STYLE_NAME: "floored", mm.STYLE_NAMES: ["a", "b"], mm.TIER: arch, mm.BORDER: "16",
            mm.SETTINGS: {"arch": arch, "width": 8, "depth": 1, "residual_norm": True}}
    export_onnx(net, path, meta, sizes=((32, 48),))  # verifies ONNX Runtime against PyTorch, floors included
    back, _ = load_network(path)
    assert norm_eps(back) == pytest.approx(floors, rel=1e-7)
    x = _photos(1, 32)
    with torch.no_grad():
        assert torch.allclose(back(x, torch.tensor([0.0, 1.0])), net(x, torch.tensor([0.0, 1.0])), atol=1e-5)


def _data(root: Path) -> TrainConfig:
    rng = np.random.default_rng(0)
    (root / "photos").mkdir(parents=True)
    for i in range(3):
        a = rng.integers(0, 255, (48, 56, 3)).astype(np.uint8)
        a[:, :28] //= 3
        Image.fromarray(a).save(root / "photos" / f"p{i}.png")
    Image.fromarray(rng.integers(0, 255, (40, 40, 3)).astype(np.uint8)).save(root / "style.png")
    return TrainConfig(style_image=str(root / "style.png"), data=str(root / "photos"), out=str(root / "runs"), name="f",
                       width=8, depth=1, iterations=2, batch=2, crop=32, style_size=40, precision="fp32",
                       checkpoint_every=1, preview_every=1000, log_every=1)


def test_a_run_sets_its_floors_once_from_its_own_crop_stream(tmp_path: Path) -> None:
    config = _data(tmp_path)
    vgg = load_vgg(random_init=True)
    said: list[str] = []
    plain = Trainer(config, vgg=vgg, progress=lambda s: None)
    assert set(norm_eps(plain.model)) == {float(torch.tensor(DEFAULT_NORM_EPS))}
    config.norm_floor, config.name = 1.0, "g"
    floored = Trainer(config, vgg=vgg, progress=said.append)
    floors = norm_eps(floored.model)
    assert min(floors) > 100 * DEFAULT_NORM_EPS and any("variance floors" in s for s in said)
    # the calibration draws from its own random stream: the training crops are the plain run's
    assert torch.equal(plain.data.batch(plain.rng, 2), floored.data.batch(floored.rng, 2))
    floored.run()
    # a resumed run keeps the floors it saved and does not calibrate again
    said.clear()
    resumed = Trainer(config, resume=str(tmp_path / "runs" / "g" / "checkpoint.pt"), vgg=vgg, progress=said.append)
    assert norm_eps(resumed.model) == floors and not any("variance floors" in s for s in said)


def test_a_resumed_run_without_a_floor_gets_one_when_asked_even_from_a_float16_file(tmp_path: Path) -> None:
    config = _data(tmp_path)
    vgg = load_vgg(random_init=True)
    Trainer(config, vgg=vgg, progress=lambda s: None).run()
    checkpoint = tmp_path / "runs" / "f" / "checkpoint.pt"
    # a model-only stage file in float16: the default epsilon rounds to 1.0014e-5, still "no floor"
    c = torch.load(checkpoint, weights_only=False)
    slim = tmp_path / "slim.pt"
    torch.save({"model": {k: v.half() for k, v in c["model"].items()}, "config": c["config"], "iteration": c["iteration"]}, slim)
    for start in (checkpoint, slim):
        kept = Trainer(TrainConfig(iterations=0), resume=str(start), vgg=vgg, progress=lambda s: None)
        assert not has_norm_floor(kept.model) and kept.config.norm_floor == 0
        floored = Trainer(TrainConfig(iterations=0, norm_floor=1.0), resume=str(start), vgg=vgg, progress=lambda s: None)
        assert has_norm_floor(floored.model) and floored.config.norm_floor == 1.0


def test_floors_measured_again_follow_weights_scaled_up_so_the_output_stays() -> None:
    net, style = _net(), torch.tensor([0.0, 1.0])
    photos, x = _photos(8, 64), _photos(1, 64, seed=9)
    calibrate_norm_floor(net, photos, 1.0)
    with torch.no_grad():
        before = net(x, style)
        last = set(net.decoder[-1].modules())  # the output layer has no norm after it
        for m in net.modules():  # what a network does to outgrow fixed floors: larger weights before each norm
            if isinstance(m, torch.nn.Conv2d) and m not in last:
                m.weight.mul_(3.0)
        outgrown = net(x, style)
    assert not torch.allclose(outgrown, before, atol=1e-4)  # with the old floors the network has changed
    calibrate_norm_floor(net, photos, 1.0)  # measured again (without floors, as the first time)
    with torch.no_grad():
        assert torch.allclose(net(x, style), before, atol=1e-4, rtol=1e-3)


def test_a_run_measures_its_floors_again_every_n_iterations(tmp_path: Path) -> None:
    config = _data(tmp_path)
    config.norm_floor, config.norm_floor_every, config.iterations = 1.0, 2, 4
    said: list[str] = []
    trainer = Trainer(config, vgg=load_vgg(random_init=True), progress=said.append)
    first = norm_eps(trainer.model)
    trainer.run()
    assert sum("variance floors" in s for s in said) == 3  # at the start, after iterations 2 and 4
    assert norm_eps(trainer.model) != first
