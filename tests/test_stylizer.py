"""The stylizer: metadata, padding to the size multiple, batching, pixel ranges, devices, bad models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from realtime import modelmeta
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


def test_lanes_return_what_one_call_at_a_time_returns_in_order(tiny_model: Path) -> None:
    # Two sessions run batches side by side; results must come back per batch, in submission order,
    # equal to plain calls. Seven submissions for two lanes: submit waits for a lane's previous batch.
    one = Stylizer(tiny_model, device="cpu", lanes=1)
    two = Stylizer(tiny_model, device="cpu", threads=2, lanes=2)
    assert (one.lanes, two.lanes) == (1, 2)
    imgs = _frames(9, 40, 60, seed=9)
    expect = [one.stylize([im])[0] for im in imgs]
    jobs = [two.submit([im]) for im in imgs[:7]] + [two.submit(imgs[7:])]
    got = [frame for job in jobs for frame in job.result()]
    assert len(got) == 9
    for a, b in zip(expect, got):
        assert np.array_equal(a, b)
    assert two.times.frames == 9 and two.times.calls == 8
    assert two.stylize([imgs[0]])[0].tobytes() == expect[0].tobytes()  # the waited-for call, on a lane session


def test_a_discarded_stylizer_is_freed_at_once(tiny_model: Path) -> None:
    # Each lane keeps its last job; a job that kept its stylizer would make a cycle, and a live style
    # switch would keep the old sessions (and their memory) until the cyclic collector ran.
    import gc
    import weakref

    st = Stylizer(tiny_model, device="cpu", threads=2, lanes=2)
    jobs = [st.submit(_frames(1, 40, 60, seed=i)) for i in range(3)]
    for job in jobs:
        job.result()
    ref = weakref.ref(st)
    gc.disable()
    try:
        del st
        assert ref() is None
    finally:
        gc.enable()


def test_lanes_must_be_positive_and_get_a_core_each(tiny_model: Path) -> None:
    with pytest.raises(DeviceError, match="lanes"):
        Stylizer(tiny_model, device="cpu", lanes=0)
    assert Stylizer(tiny_model, device="cpu", threads=1, lanes=2).lanes == 1
    assert Stylizer(tiny_model, device="cpu", threads=1).lanes == 1


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


# ------------------------------------------------------------------ the model's border margin


def _box_blur_model(path: Path, border: int | None) -> Path:
    """A 5×5 box blur with *zero* padding, like the fast tier's convolutions: at the image border it
    darkens the picture (a frame), unless the runtime gives it a mirrored margin."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = np.zeros((3, 3, 5, 5), np.float32)
    for c in range(3):
        w[c, c] = 1 / 25
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "w"], ["output"], pads=[2, 2, 2, 2])], "blur",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        initializer=[numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    meta = {modelmeta.STYLE_NAME: "blur", modelmeta.SIZE_MULTIPLE: "4"}
    if border is not None:
        meta[modelmeta.BORDER] = str(border)
    for k, v in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("size", [(37, 53), (64, 64), (5, 6)])
def test_border_margin_removes_the_zero_padding_frame(tmp_path: Path, size: tuple[int, int]) -> None:
    grey = np.full((*size, 3), 200, np.uint8)
    plain = Stylizer(_box_blur_model(tmp_path / "plain.onnx", None), device="cpu")
    framed = plain.stylize([grey])[0]
    assert framed.shape == grey.shape
    assert framed[0, 0, 0] < 150  # without a margin the corner sees mostly zeros: the dark frame
    margin = Stylizer(_box_blur_model(tmp_path / "margin.onnx", 8), device="cpu")
    assert margin.info.border == 8
    out = margin.stylize([grey, grey])
    assert all(o.shape == grey.shape for o in out)
    assert np.abs(out[0].astype(int) - 200).max() <= 1  # a flat picture stays flat up to its edges


def test_border_margin_keeps_the_picture_in_place(tmp_path: Path) -> None:
    # The crop after the network must take exactly the frame's own pixels back: with a blur that is
    # the identity on a smooth ramp away from the ends, the output must match the input.
    h, w = 40, 60
    ramp = np.zeros((h, w, 3), np.uint8)
    ramp[..., 0] = np.linspace(20, 220, w).astype(np.uint8)[None, :]
    ramp[..., 1] = np.linspace(30, 200, h).astype(np.uint8)[:, None]
    out = Stylizer(_box_blur_model(tmp_path / "m.onnx", 8), device="cpu").stylize([ramp])[0]
    # Inside, a box blur of a linear ramp is the ramp; at the edges mirroring keeps it close.
    assert np.abs(out[3:-3, 3:-3].astype(int) - ramp[3:-3, 3:-3]).max() <= 1
    assert np.abs(out.astype(int) - ramp).mean() < 1.5


def test_shipped_fast_tier_asks_for_a_margin() -> None:
    from realtime.models import list_styles

    fast = [s for s in list_styles("fast") if s.origin == "shipped"]
    if not fast:
        pytest.skip("no fast tier installed")
    for style in fast:
        assert Stylizer(style.path, device="cpu").info.border > 0, style.name


@pytest.mark.parametrize("channels,input_range", [("RGB", (0.0, 1.0)), ("BGR", (0.0, 255.0)), ("RGB", (-1.0, 1.0))])
def test_preprocess_is_the_padded_frame_in_nchw_in_the_model_range(tiny_model: Path, channels: str,
                                                                   input_range: tuple[float, float]) -> None:
    import dataclasses

    import cv2

    st = Stylizer(tiny_model, device="cpu")
    st.info = dataclasses.replace(st.info, channels=channels, input_range=input_range, border=3)
    imgs = _frames(2, 30, 41, seed=7)
    x = st.preprocess(imgs)
    ph, pw = st.padding(30, 41)
    assert x.shape == (2, 3, 30 + ph, 41 + pw) and x.dtype == np.float32 and x.flags.c_contiguous
    lo, hi = input_range
    for i, img in enumerate(imgs):
        padded = cv2.copyMakeBorder(img, 3, ph - 3, 3, pw - 3, cv2.BORDER_REFLECT_101).astype(np.float64)
        if channels == "BGR":
            padded = padded[..., ::-1]
        expected = padded.transpose(2, 0, 1) * (hi - lo) / 255.0 + lo
        assert np.abs(x[i] - expected).max() < 1e-5 * max(1.0, hi)
