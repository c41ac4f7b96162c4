"""The stylizer: metadata, padding to the size multiple, batching, pixel ranges, devices, bad models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from realtime.errors import DeviceError, ModelError
from realtime.stylizer import Stylizer
from tiny_model import make_tiny_model


def _frames(n: int, h: int, w: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]


def test_reads_metadata_and_reports_device(tiny_model: Path) -> None:
    st = Stylizer(tiny_model, device="cpu")
    assert st.info.style_name == "tiny"
    assert st.info.input_range == (0.0, 1.0)
    assert st.info.size_multiple == 4
    assert st.provider == "CPUExecutionProvider" and st.device == "cpu"
    assert "tiny" in st.describe() and "CPU" in st.describe()


def test_auto_device_says_what_really_runs(tiny_model: Path) -> None:
    st = Stylizer(tiny_model, device="auto")
    # whatever was asked, the reported device matches the provider the session actually uses
    assert st.provider == st.session.get_providers()[0]
    assert st.device == ("cuda" if st.provider == "CUDAExecutionProvider" else "cpu")


def test_explicit_cuda_is_an_error_when_it_cannot_run(tiny_model: Path) -> None:
    try:
        st = Stylizer(tiny_model, device="cuda")
    except DeviceError as exc:
        assert "cuda" in str(exc).lower()
        return
    assert st.provider == "CUDAExecutionProvider"  # a machine with a working GPU: it must really run there
    out = st.stylize(_frames(2, 36, 52))
    assert out[0].shape == (36, 52, 3)


@pytest.mark.parametrize("h,w", [(48, 64), (37, 53), (5, 7), (3, 2)])
def test_odd_sizes_are_padded_and_cropped_back(tiny_model: Path, h: int, w: int) -> None:
    st = Stylizer(tiny_model, device="cpu")
    imgs = _frames(2, h, w)
    out = st.stylize(imgs)
    assert [o.shape for o in out] == [(h, w, 3)] * 2
    assert all(o.dtype == np.uint8 for o in out)
    assert not np.array_equal(out[0], imgs[0])  # it did something


def test_reflection_padding_matches_padding_by_hand(tiny_model: Path) -> None:
    st = Stylizer(tiny_model, device="cpu")
    img = _frames(1, 37, 53)[0]
    padded = np.pad(img, ((0, 3), (0, 3), (0, 0)), mode="reflect")  # 40x56, a multiple of 4
    a = st.stylize([img])[0]
    b = st.stylize([padded])[0][:37, :53]
    assert np.array_equal(a, b)


def test_batch_equals_single_frames(tiny_model: Path) -> None:
    st = Stylizer(tiny_model, device="cpu")
    imgs = _frames(3, 40, 60, seed=3)
    batched = st.stylize(imgs)
    single = [st.stylize([im])[0] for im in imgs]
    for a, b in zip(batched, single):
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
    assert st.times.frames == 6 and st.times.calls == 4
    assert st.times.seconds["inference"] > 0


def test_input_range_0_255_is_honoured(models_dir: Path) -> None:
    # same weights, one model in 0..1, one in 0..255: the stylizer's scaling must make them agree
    a = Stylizer(models_dir / "tiny.onnx", device="cpu")
    b = Stylizer(models_dir / "tiny255.onnx", device="cpu")
    assert b.info.input_range == (0.0, 255.0)
    imgs = _frames(2, 32, 44, seed=5)
    for x, y in zip(a.stylize(imgs), b.stylize(imgs)):
        assert np.abs(x.astype(int) - y.astype(int)).max() <= 1


def test_warmup_runs_once_per_shape(tiny_model: Path) -> None:
    st = Stylizer(tiny_model, device="cpu")
    assert st.warmup(30, 41, 2) > 0
    assert st.warmup(30, 41, 2) == 0.0


def test_not_onnx_is_a_model_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_text("this is not a model\n")
    with pytest.raises(ModelError, match="not an ONNX model"):
        Stylizer(bad)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x08\x07" + bytes(range(200)))
    with pytest.raises(ModelError):
        Stylizer(garbage)


@pytest.mark.parametrize("kwargs,match", [
    ({"channels_in": 1}, "channels"),
    ({"rank": 3}, "N×3×H×W|not a valid ONNX model"),  # ORT itself rejects this graph at load
    ({"fixed_hw": 256}, "fixed"),
])
def test_wrong_input_shape_is_a_model_error(tmp_path: Path, kwargs: dict, match: str) -> None:
    path = make_tiny_model(tmp_path / "wrong.onnx", **kwargs)
    with pytest.raises(ModelError, match=match):
        Stylizer(path, device="cpu")
