"""The processing size follows the stroke scale a style was trained for (realtime/strokes.py)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from realtime import modelmeta as mm
from realtime.pipeline import processing_size
from realtime.strokes import model_short_side, stroke_short_side, trained_short_side, upscale_with_detail
from tiny_model import make_tiny_model


def test_processing_size_scales_the_short_side_and_never_enlarges() -> None:
    assert processing_size(1920, 1080, None, 320) == (569, 320)
    assert processing_size(1080, 1920, None, 320) == (320, 569)  # portrait: the short side is the width
    assert processing_size(640, 300, None, 320) == (640, 300)  # already smaller: kept
    assert processing_size(1920, 1080, 640, 320) == (640, 360)  # --max-size wins
    assert processing_size(1920, 1080, None, None) == (1920, 1080)


def test_trained_short_side_comes_from_the_metadata_or_the_settings() -> None:
    assert trained_short_side({"crop": 128, "scale_min": 1.0, "scale_max": 2.5}) == 320
    assert trained_short_side({"crop": 256}) == 256  # no jitter recorded: the crop itself
    assert trained_short_side({"scale_max": 2}) is None
    settings = json.dumps({"crop": 256, "scale_max": 2.0})
    assert model_short_side({mm.SETTINGS: settings}) == 512
    assert model_short_side({mm.SETTINGS: settings, mm.TRAINED_SHORT_SIDE: "300"}) == 300  # the record wins
    assert model_short_side({mm.TRAINED_SHORT_SIDE: "junk"}) is None
    assert model_short_side({mm.SETTINGS: "{not json"}) is None
    assert stroke_short_side({mm.TRAINED_SHORT_SIDE: "300"}, 2.0) == 150  # coarser strokes: a smaller frame
    assert stroke_short_side({mm.TRAINED_SHORT_SIDE: "300"}, 0.5) == 600


def _edge_frame(w: int = 480, h: int = 270) -> np.ndarray:
    """A photo-like frame: a smooth colour gradient with a sharp dark bar (an edge the downscale blurs)."""
    y, x = np.mgrid[0:h, 0:w]
    frame = np.stack([x * 255 / w, y * 255 / h, np.full_like(x, 128)], -1).astype(np.uint8)
    frame[:, w // 2 + 1] = 10  # one pixel wide: below what the 3× smaller content can hold
    return frame


def test_upscale_adds_back_the_frames_luminance_detail() -> None:
    frame = _edge_frame()
    content = cv2.resize(frame, (160, 90), interpolation=cv2.INTER_AREA)
    stylized = np.full_like(content, 120)
    stylized[..., 0] = 200  # a flat "painting": whatever detail the output has came from the frame
    plain = upscale_with_detail(frame, content, stylized, detail=0)
    sharp = upscale_with_detail(frame, content, stylized)
    assert np.array_equal(plain, cv2.resize(stylized, (480, 270), interpolation=cv2.INTER_CUBIC))
    # the bar is back: much darker at its columns than the flat plain upscale
    bar = (slice(None), 241)
    assert sharp[bar].astype(int).mean() < plain[bar].astype(int).mean() - 40
    # luminance only: every channel moved by the same amount (no photo colour came back)
    moved = sharp.astype(int) - plain.astype(int)
    inside = (sharp > 5).all(-1) & (sharp < 250).all(-1)  # away from clipping
    assert np.abs(moved[..., 0] - moved[..., 1])[inside].max() <= 1 and np.abs(moved[..., 1] - moved[..., 2])[inside].max() <= 1
    # and it is the float formula (up to rounding, and cubic overshoot clipped per colour there)
    low = cv2.resize(content, (480, 270), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    luma = (frame.astype(np.float32) - low) @ np.array([0.299, 0.587, 0.114], np.float32)
    ref = np.clip(plain.astype(np.float32) + 0.6 * luma[..., None], 0, 255)
    err = np.abs(sharp.astype(np.float32) - ref)
    assert err.mean() < 0.5 and np.quantile(err, 0.999) <= 1.5 and err.max() <= 4


@pytest.fixture
def stroked_model(tmp_path: Path) -> Path:
    return make_tiny_model(tmp_path / "stroked.onnx", metadata={mm.TRAINED_SHORT_SIDE: "48"})


def test_restyle_video_stylizes_at_the_trained_stroke_scale(clips, run_cli, stroked_model: Path, tmp_path: Path) -> None:
    src = clips("wide.mp4", size=(256, 144), frames=4)
    runs = {
        "default": [], "coarser": ["--stroke", "2"], "finer": ["--stroke", "0.5"], "full": ["--full-size"],
        "max": ["--max-size", "128"],
    }
    sizes = {}
    for name, extra in runs.items():
        code, stdout, err = run_cli(src, tmp_path / f"{name}.mp4", "--style", stroked_model, "--quiet", "--json", *extra)
        assert code == 0, err
        s = json.loads(stdout)
        assert (s["width"], s["height"]) == (256, 144)  # the output keeps the input's size
        sizes[name] = (s["process_width"], s["process_height"])
    assert sizes == {"default": (85, 48), "coarser": (43, 24), "finer": (171, 96), "full": (256, 144), "max": (128, 72)}


def test_a_model_without_a_stroke_scale_is_stylized_at_full_size(clips, run_cli, tiny_model: Path, tmp_path: Path) -> None:
    src = clips("wide.mp4", size=(256, 144), frames=4)
    code, stdout, err = run_cli(src, tmp_path / "o.mp4", "--style", tiny_model, "--quiet", "--json")
    assert code == 0, err
    s = json.loads(stdout)
    assert (s["process_width"], s["process_height"]) == (256, 144)


@pytest.mark.parametrize("args, message", [
    (["--stroke", "0"], "--stroke: 0 is not between 0.1 and 10"),
    (["--stroke", "nan"], "not a finite number"),
    (["--stroke", "2", "--full-size"], "not allowed with argument"),
    (["--stroke", "2", "--max-size", "64"], "not allowed with argument"),
])
def test_bad_stroke_options_are_one_line(clips, run_cli, tmp_path: Path, args: list[str], message: str) -> None:
    src = clips("wide.mp4", size=(256, 144), frames=4)
    code, _, err = run_cli(src, tmp_path / "o.mp4", *args)
    assert code == 2 and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "o.mp4").exists()


def test_restyle_image_follows_the_stroke_scale(stroked_model: Path, tmp_path: Path) -> None:
    from realtime.cli_image import restyle_image

    src = tmp_path / "in.png"
    cv2.imwrite(str(src), _edge_frame(256, 144))
    calls: list[tuple[int, int]] = []
    from realtime import stylizer as stylizer_module

    real = stylizer_module.Stylizer.stylize

    def spy(self, images):  # noqa: ANN001, ANN202
        calls.extend(i.shape[:2] for i in images)
        return real(self, images)

    stylizer_module.Stylizer.stylize = spy
    try:
        assert restyle_image([str(src), str(tmp_path / "a.png"), "--style", str(stroked_model), "--quiet"]) == 0
        assert restyle_image([str(src), str(tmp_path / "b.png"), "--style", str(stroked_model), "--quiet", "--full-size"]) == 0
    finally:
        stylizer_module.Stylizer.stylize = real
    assert calls == [(48, 85), (144, 256)]
    assert cv2.imread(str(tmp_path / "a.png")).shape[:2] == (144, 256)


def test_export_records_the_stroke_scale_and_a_student_takes_its_teachers(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from realtime.train.export import build_metadata

    own = build_metadata({"name": "a", "crop": 256, "scale_max": 2.0}, "0" * 64, 10, {})
    assert own[mm.TRAINED_SHORT_SIDE] == "512"
    teacher = make_tiny_model(tmp_path / "teacher.onnx", metadata={mm.TRAINED_SHORT_SIDE: "320"})
    student = build_metadata({"name": "b", "crop": 256, "scale_max": 2.0, "teacher": str(teacher), "distill_weight": 1e5},
                             "0" * 64, 10, {})
    assert student[mm.TRAINED_SHORT_SIDE] == "320"
