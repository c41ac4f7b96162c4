"""Pre- and post-processing inside the graph (realtime.graph_io) give the frames the stylizer's own
pre/post give, and fp16 models stay close to fp32: on the shipped full and fast models, a multi-style
file, other pixel ranges and channel orders, odd and tiny frame sizes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from realtime import graph_io, modelmeta
from realtime.stylizer import Stylizer
from tiny_model import make_tiny_model

TRAINED = Path(__file__).resolve().parents[1] / "trained"
# sizes: odd, one below a multiple, and smaller than the margin (edge copies instead of mirroring)
SIZES = [(37, 53), (64, 95), (5, 3)]
# fp16 against fp32 on the CPU, in 8-bit levels. Measured: at most 1 level, mean 0.02-0.03, on both
# tiers (ONNX Runtime's CPU provider computes most float16 ops in float32 between casts, so this checks
# the conversion and its weights; the GPU's own float16 arithmetic is checked by tools/gpu_check.py).
FP16_MAX_LEVELS = 3
FP16_MEAN_LEVELS = 0.25


def _frames(n: int, h: int, w: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 / max(w, 1), y * 255 / max(h, 1), (x + y) * 127 / (w + h)], -1)
    return [np.clip(base + rng.normal(0, 25, (h, w, 3)), 0, 255).astype(np.uint8) for _ in range(n)]


def _levels(a: list[np.ndarray], b: list[np.ndarray]) -> int:
    return max(int(np.abs(p.astype(int) - q.astype(int)).max()) for p, q in zip(a, b))


def _same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    """Byte for byte (what the shipped models' range 0..1 and RGB give), or within one level on under
    1 % of the values (other ranges: the graph computes (y - lo)·255/(hi - lo), OpenCV y·a + b)."""
    diff = np.abs(np.stack(a).astype(int) - np.stack(b).astype(int))
    return int(diff.max()) <= 1 and float((diff > 0).mean()) < 0.01


def _shipped(tier: str) -> Path:
    folder = TRAINED / ("fast" if tier == "fast" else "")
    models = sorted(folder.glob("*.onnx"))
    if not models:
        pytest.skip(f"no shipped {tier} model in {folder}")
    return models[0]


def _both(path: Path, **kwargs) -> tuple[Stylizer, Stylizer]:  # noqa: ANN003
    own = Stylizer(path, device="cpu", lanes=1, graph_io=False, **kwargs)
    graph = Stylizer(path, device="cpu", lanes=1, graph_io=True, **kwargs)
    assert not own.graph_io and graph.graph_io
    assert [i.name for i in graph.session.get_inputs()][0] == graph_io.FRAMES  # it really is the wrapped model
    return own, graph


@pytest.mark.parametrize("tier", ["full", "fast"])
def test_shipped_models_give_the_same_frames_with_pre_post_in_the_graph(tier: str) -> None:
    own, graph = _both(_shipped(tier))
    assert graph.info.border > 0 or tier == "full"
    for h, w in SIZES:
        frames = _frames(2, h, w, seed=h)
        a, b = own.stylize(frames), graph.stylize(frames)
        assert [f.shape for f in b] == [(h, w, 3)] * 2 and all(f.dtype == np.uint8 for f in b)
        assert all(np.array_equal(p, q) for p, q in zip(a, b)), (h, w)


@pytest.mark.parametrize("meta", [
    {modelmeta.CHANNELS: "BGR", modelmeta.INPUT_RANGE: "0,255", modelmeta.BORDER: "3"},
    {modelmeta.INPUT_RANGE: "-1,1", modelmeta.BORDER: "5", modelmeta.SIZE_MULTIPLE: "8"},
])
def test_other_ranges_channel_orders_and_margins_match(tmp_path: Path, meta: dict[str, str]) -> None:
    import onnx

    path = make_tiny_model(tmp_path / "tiny.onnx")
    proto = onnx.load(str(path))
    props = {p.key: p.value for p in proto.metadata_props} | meta
    del proto.metadata_props[:]
    for k, v in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.save(proto, str(path))
    own, graph = _both(path)
    assert graph.info.channels == meta.get(modelmeta.CHANNELS, "RGB")
    for h, w in SIZES:
        frames = _frames(3, h, w, seed=w)
        assert _same(own.stylize(frames), graph.stylize(frames)), (h, w)


def test_a_multi_style_file_and_its_blends_match(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from realtime.train.export import export_onnx
    from realtime.train.model import build_model, style_norms

    torch.manual_seed(0)
    net = build_model("fast", 16, 1, styles=2)
    for m in style_norms(net):
        with torch.no_grad():
            m.weight.normal_(1.0, 0.6)
            m.bias.normal_(0.0, 0.6)
    path = tmp_path / "duo.onnx"
    export_onnx(net.eval(), path, {modelmeta.STYLE_NAMES: ["ink", "sun"], modelmeta.TIER: "fast", modelmeta.BORDER: "16"},
                verify=False)
    own, graph = _both(path)
    assert graph.info.output_phases == 2 and graph.info.style_input
    frames = _frames(2, 41, 59)
    for style in ("ink", "sun", "ink:0.3,sun:0.7"):
        own.set_style(style)
        graph.set_style(style)
        a, b = own.stylize(frames), graph.stylize(frames)
        assert all(np.array_equal(p, q) for p, q in zip(a, b)), style
    graph.set_style("ink")
    ink = graph.stylize(frames)
    graph.set_style("sun")
    assert _levels(ink, graph.stylize(frames)) > 10  # the style input reaches the network through the wrapper


def test_lanes_with_pre_post_in_the_graph_keep_order(tmp_path: Path) -> None:
    path = _shipped("fast")
    lanes = Stylizer(path, device="cpu", lanes=2, threads=2, graph_io=True)
    single = Stylizer(path, device="cpu", lanes=1, graph_io=False)
    batches = [_frames(1, 36, 52, seed=s) for s in range(5)]
    jobs = [lanes.submit(b) for b in batches]
    for job, batch in zip(jobs, batches):
        assert all(np.array_equal(p, q) for p, q in zip(job.result(), single.stylize(batch)))


def test_wrapped_model_takes_and_gives_uint8_frames() -> None:
    import onnx

    proto = onnx.load(str(_shipped("fast")))
    wrapped = graph_io.wrap_uint8(proto, input_range=(0.0, 1.0), channels="RGB", phases=2)
    onnx.checker.check_model(wrapped)
    inputs, outputs, meta = graph_io.signature(wrapped)
    assert {i.name: i.type for i in inputs}[graph_io.FRAMES] == "tensor(uint8)"
    assert [(o.name, o.type) for o in outputs] == [(graph_io.FRAMES_OUT, "tensor(uint8)")]
    assert meta == {p.key: p.value for p in proto.metadata_props}
    ops = [n.op_type for n in wrapped.graph.node]
    assert "Pad" in ops and ops.count("Cast") >= 2 and ops.count("Transpose") >= 2
    assert len(proto.graph.node) + 10 <= len(wrapped.graph.node)  # the original is left as it was
    with pytest.raises(ValueError, match="opset"):
        old = onnx.ModelProto()
        old.CopyFrom(proto)
        old.opset_import[0].version = 10
        graph_io.wrap_uint8(old, input_range=(0.0, 1.0), channels="RGB", phases=2)


# ------------------------------------------------------------------ fp16


@pytest.mark.parametrize("tier", ["full", "fast"])
def test_fp16_on_the_cpu_stays_within_a_few_levels_of_fp32(tier: str) -> None:
    path = _shipped(tier)
    fp32 = Stylizer(path, device="cpu", lanes=1)
    fp16 = Stylizer(path, device="cpu", lanes=1, precision="fp16")
    assert fp16.precision == "fp16" and fp32.precision == "fp32" and "fp16" in fp16.describe()
    frames = _frames(2, 45, 67, seed=5)
    a, b = fp32.stylize(frames), fp16.stylize(frames)
    diff = np.abs(np.stack(a).astype(int) - np.stack(b).astype(int))
    assert int(diff.max()) <= FP16_MAX_LEVELS and float(diff.mean()) <= FP16_MEAN_LEVELS
    assert diff.max() > 0  # it did compute in float16


def test_fp16_model_keeps_float32_edges_and_halves_its_weights() -> None:
    import onnx

    proto = onnx.load(str(_shipped("full")))
    half = graph_io.to_fp16(proto)
    inputs, outputs, _ = graph_io.signature(half)
    assert {i.name: i.type for i in inputs}[modelmeta.INPUT_NAME] == "tensor(float)"
    assert outputs[0].type == "tensor(float)"
    big = [i for i in half.graph.initializer if np.prod(i.dims) > 1000]
    assert big and all(i.data_type == onnx.TensorProto.FLOAT16 for i in big)
    assert half.ByteSize() < 0.6 * proto.ByteSize()
    assert all(i.data_type == onnx.TensorProto.FLOAT for i in proto.graph.initializer
               if i.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16))  # the original is untouched


def test_to_fp16_tool_writes_a_model_that_runs_like_the_original(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    import importlib.util

    spec = importlib.util.spec_from_file_location("to_fp16", Path(__file__).resolve().parents[1] / "tools" / "to_fp16.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)  # type: ignore[union-attr]
    src, out = _shipped("fast"), tmp_path / "half.onnx"
    assert tool.main([str(src), str(out)]) == 0
    assert out.stat().st_size < 0.6 * src.stat().st_size and not list(tmp_path.glob(".*partial*"))
    frames = _frames(1, 30, 44)
    half = Stylizer(out, device="cpu", lanes=1)
    assert half.info.border == Stylizer(src, device="cpu", lanes=1).info.border
    assert _levels(half.stylize(frames), Stylizer(src, device="cpu", lanes=1).stylize(frames)) <= FP16_MAX_LEVELS
    capsys.readouterr()
    assert tool.main([str(src), str(out)]) == 1  # taken: one line, the file kept
    err = capsys.readouterr().err
    assert "exists" in err and len(err.strip().splitlines()) == 1
    (tmp_path / "not.onnx").write_text("text")
    assert tool.main([str(tmp_path / "not.onnx"), str(tmp_path / "x.onnx")]) == 1
    assert "not an ONNX model" in capsys.readouterr().err and not (tmp_path / "x.onnx").exists()
