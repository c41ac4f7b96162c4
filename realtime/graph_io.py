"""Pre- and post-processing inside the model's graph, and fp16 models, by editing a loaded ONNX model
(the ``onnx`` package's protobuf API; no re-export, so it works for every shipped file).

``wrap_uint8`` turns a style model (float NCHW in the model's range, modelmeta) into one that takes the
frames as the pipeline holds them and returns them the same way:

    frames      uint8  N×H×W×3 RGB (the pipeline's frames, stacked)
    pads        int64  [8]   ONNX Pad's pads for N×C×H×W: the model's margin and the size multiple
    crop_start  int64  [2]   first row and column of the frame in the network's full-resolution output
    crop_end    int64  [2]   one past its last row and column
    style       float  [S]   unchanged, where the model has it
    ->
    frames_out  uint8  N×H×W×3 RGB

Inside: transpose to planes, cast, mirror-pad (Pad "reflect" is OpenCV's BORDER_REFLECT_101, the
stylizer's own padding), scale into the model's range, the network, scale to levels, clip, round (half
to even, as OpenCV's saturating conversion), cast to uint8, one transpose back to interleaved pixels
that also interleaves the 2×2 phases (modelmeta.OUTPUT_PHASES), crop. The output equals the stylizer's
own pre/post byte for byte on the shipped models (tests/test_graph_io.py).

Why: on CUDA the conversions run on the GPU and the transfers are uint8 (a quarter of float32). On
the CPU it is slower than the stylizer's OpenCV code (one pass per op, where OpenCV fuses them: 2.7x
the time, about 40 against 15 ms a 1280×720 frame on one core), so there it is off by default
(``stylizer.GRAPH_IO_ON_CPU``; the README has the measurements).

Ops are chosen for the CUDA provider's kernels: it has Pad and Round for floats only (a uint8 Pad
would run on the CPU between two copies), Transpose, Slice, Cast and Gather for every type.

``to_fp16`` converts weights and arithmetic to float16 with the float32 input and output kept
(onnxruntime.transformers.float16, which ships inside onnxruntime and onnxruntime-gpu).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from . import modelmeta

if TYPE_CHECKING:
    import onnx

FRAMES = "frames"
PADS = "pads"
CROP_START = "crop_start"
CROP_END = "crop_end"
FRAMES_OUT = "frames_out"
# every tensor this module adds is named under this prefix, so it cannot meet a name of the network's
_PREFIX = "realtime_io/"
MIN_OPSET = 13  # Pad with pads as an input (11), Slice/Clip/DepthToSpace/Round as used here (13)


@dataclass(frozen=True)
class TensorSig:
    """What ONNX Runtime's ``NodeArg`` says of a graph input or output (name, type string, shape with
    ints for fixed sizes and strings or None for dynamic ones), read from the protobuf instead."""

    name: str
    type: str
    shape: list[Any]


def signature(model: "onnx.ModelProto") -> tuple[list[TensorSig], list[TensorSig], dict[str, str]]:
    """Inputs, outputs and metadata properties of ``model``, in the form an inference session gives
    them (so the stylizer checks a model the same way before and after wrapping it)."""
    import onnx

    def sig(value: "onnx.ValueInfoProto") -> TensorSig:
        tensor = value.type.tensor_type
        kind = onnx.TensorProto.DataType.Name(tensor.elem_type).lower()
        dims: list[Any] = []
        for d in tensor.shape.dim:
            dims.append(d.dim_value if d.HasField("dim_value") else (d.dim_param or None))
        return TensorSig(value.name, f"tensor({kind})", dims)

    initializers = {i.name for i in model.graph.initializer}
    inputs = [sig(v) for v in model.graph.input if v.name not in initializers]
    outputs = [sig(v) for v in model.graph.output]
    return inputs, outputs, {p.key: p.value for p in model.metadata_props}


def opset(model: "onnx.ModelProto") -> int:
    return max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)


def wrap_uint8(model: "onnx.ModelProto", *, input_range: tuple[float, float], channels: str, phases: int) -> "onnx.ModelProto":
    """A copy of ``model`` with uint8 frames in and out (see the module's docstring). ``model`` has
    passed the stylizer's checks (input ``input`` float N×3×H×W, output ``output``); a ValueError when
    its opset is below MIN_OPSET."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if opset(model) < MIN_OPSET:
        raise ValueError(f"opset {opset(model)} is below {MIN_OPSET}")
    wrapped = onnx.ModelProto()
    wrapped.CopyFrom(model)
    g = wrapped.graph
    lo, hi = input_range
    n = lambda name: _PREFIX + name  # noqa: E731
    bgr = channels.upper() == "BGR"
    consts = {
        "scale": np.array((hi - lo) / 255.0, np.float32),
        "levels": np.array(255.0 / (hi - lo), np.float32),
        "zero": np.array(0.0, np.float32),
        "top": np.array(255.0, np.float32),
        "hw_axes": np.array([1, 2], np.int64),  # rows and columns of N×H×W×3
    }
    if lo:
        consts["lo"] = np.array(lo, np.float32)
    if bgr:
        consts["reverse"] = np.array([2, 1, 0], np.int64)
        consts["reverse_phases"] = np.array([3 * k + c for k in range(phases * phases) for c in (2, 1, 0)], np.int64)
    if phases > 1:
        consts.update({
            "index_0": np.array([0], np.int64), "from_2": np.array([2], np.int64), "to_4": np.array([4], np.int64),
            "phases": np.array([phases, phases], np.int64), "phase_dims": np.array([phases, phases, 3], np.int64),
            "three": np.array([3], np.int64),
        })
    g.initializer.extend(numpy_helper.from_array(v, n(k)) for k, v in consts.items())

    pre: list[onnx.NodeProto] = []
    x = FRAMES
    pre.append(helper.make_node("Transpose", [x], [n("planes_u8")], perm=[0, 3, 1, 2]))
    x = n("planes_u8")
    if bgr:
        pre.append(helper.make_node("Gather", [x, n("reverse")], [n("bgr_u8")], axis=1))
        x = n("bgr_u8")
    pre.append(helper.make_node("Cast", [x], [n("planes")], to=TensorProto.FLOAT))
    pre.append(helper.make_node("Pad", [n("planes"), PADS], [n("padded")], mode="reflect"))
    if lo:
        pre.append(helper.make_node("Mul", [n("padded"), n("scale")], [n("scaled")]))
        pre.append(helper.make_node("Add", [n("scaled"), n("lo")], [modelmeta.INPUT_NAME]))
    else:
        pre.append(helper.make_node("Mul", [n("padded"), n("scale")], [modelmeta.INPUT_NAME]))

    # after the network: levels, clip, round and cast on its output as it comes (the margin included:
    # a crop first would copy floats), then one uint8 transpose to interleaved pixels that also
    # interleaves the 2x2 phases (ONNX Runtime's float DepthToSpace took 35 ms a 1280x720 frame on one
    # core, this 3 ms), then the crop in uint8
    post: list[onnx.NodeProto] = []
    y = modelmeta.OUTPUT_NAME
    if lo:
        post.append(helper.make_node("Sub", [y, n("lo")], [n("from_lo")]))
        y = n("from_lo")
    post += [
        helper.make_node("Mul", [y, n("levels")], [n("levels_f")]),
        helper.make_node("Clip", [n("levels_f"), n("zero"), n("top")], [n("clipped")]),
        helper.make_node("Round", [n("clipped")], [n("rounded")]),
        helper.make_node("Cast", [n("rounded")], [n("out_u8")], to=TensorProto.UINT8),
    ]
    y = n("out_u8")
    if bgr:  # the colour is the fastest-varying channel index in both layouts (modelmeta.OUTPUT_PHASES)
        post.append(helper.make_node("Gather", [y, n("reverse_phases" if phases > 1 else "reverse")], [n("rgb_u8")], axis=1))
        y = n("rgb_u8")
    if phases > 1:
        # N×(p·p·3)×h×w, channel (p·row + column)·3 + colour -> N×h×p×w×p×3 -> N×(h·p)×(w·p)×3
        post += [
            helper.make_node("Shape", [y], [n("phase_shape")]),
            helper.make_node("Gather", [n("phase_shape"), n("index_0")], [n("batch")], axis=0),
            helper.make_node("Slice", [n("phase_shape"), n("from_2"), n("to_4")], [n("half_hw")]),
            helper.make_node("Mul", [n("half_hw"), n("phases")], [n("full_hw")]),
            helper.make_node("Concat", [n("batch"), n("phase_dims"), n("half_hw")], [n("blocks_shape")], axis=0),
            helper.make_node("Reshape", [y, n("blocks_shape")], [n("blocks")]),
            helper.make_node("Transpose", [n("blocks")], [n("interleaved")], perm=[0, 4, 1, 5, 2, 3]),
            helper.make_node("Concat", [n("batch"), n("full_hw"), n("three")], [n("picture_shape")], axis=0),
            helper.make_node("Reshape", [n("interleaved"), n("picture_shape")], [n("picture")]),
        ]
    else:
        post.append(helper.make_node("Transpose", [y], [n("picture")], perm=[0, 2, 3, 1]))
    post.append(helper.make_node("Slice", [n("picture"), CROP_START, CROP_END, n("hw_axes")], [FRAMES_OUT]))

    for node in pre + post:  # named, so a report of where ONNX Runtime placed nodes can tell them apart
        node.name = _PREFIX + node.output[0].removeprefix(_PREFIX)
    network = list(g.node)
    del g.node[:]
    g.node.extend(pre + network + post)

    others = [v for v in g.input if v.name != modelmeta.INPUT_NAME]
    del g.input[:]
    g.input.extend([
        # sizes named apart from the network's own "height"/"width" (the padded size, in value_info the
        # fp16 converter writes): one name for two sizes would make ONNX Runtime reuse a wrong buffer
        helper.make_tensor_value_info(FRAMES, TensorProto.UINT8, ["batch", "frame_height", "frame_width", 3]),
        helper.make_tensor_value_info(PADS, TensorProto.INT64, [8]),
        helper.make_tensor_value_info(CROP_START, TensorProto.INT64, [2]),
        helper.make_tensor_value_info(CROP_END, TensorProto.INT64, [2]),
        *others,
    ])
    del g.output[:]
    g.output.extend([helper.make_tensor_value_info(FRAMES_OUT, TensorProto.UINT8, ["batch", "frame_height", "frame_width", 3])])
    # shapes the exporter recorded for "input"/"output" as graph values would now contradict nothing,
    # but an intermediate named like a graph input confuses some checkers: drop them
    keep = [v for v in g.value_info if v.name not in (modelmeta.INPUT_NAME, modelmeta.OUTPUT_NAME)]
    del g.value_info[:]
    g.value_info.extend(keep)
    return wrapped


# nodes of the wrapper that compute a shape from a shape (int64, a few values): ONNX Runtime keeps such
# nodes on the CPU next to a GPU provider on purpose
SHAPE_NODES = tuple(_PREFIX + name for name in ("phase_shape", "batch", "half_hw", "full_hw", "blocks_shape", "picture_shape"))


def geometry(height: int, width: int, border: int, rows: int, cols: int, mirror: bool) -> dict[str, np.ndarray]:
    """The small inputs of a wrapped model for frames of ``height``×``width``: ``rows``/``cols`` added
    in all (Stylizer.padding), ``border`` of them on top and left. ``mirror`` False: the frames come
    already padded (edge copies, for frames too small to mirror), so the graph pads nothing."""
    top = border if mirror else 0
    pads = [0, 0, top, top, 0, 0, rows - top, cols - top] if mirror else [0] * 8
    return {
        PADS: np.array(pads, np.int64),
        CROP_START: np.array([border, border], np.int64),
        CROP_END: np.array([border + height, border + width], np.int64),
    }


def to_fp16(model: "onnx.ModelProto") -> "onnx.ModelProto":
    """A copy of ``model`` with float16 weights and arithmetic, its float32 inputs and outputs kept
    (casts at the edges). Metadata properties are carried over."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    import onnx
    from onnx import numpy_helper

    copy = onnx.ModelProto()
    copy.CopyFrom(model)  # the converter edits the model it is given
    # the converter's shape inference is not needed for these plain conv nets and fails on some graphs
    half = convert_float_to_float16(copy, keep_io_types=True, disable_shape_infer=True)
    # Resize's roi and scales must stay float32, but the converter halves Constant nodes whatever reads
    # them (the full tier's upsampling): give those back their float32 values
    constants = {n.output[0]: n for n in half.graph.node if n.op_type == "Constant"}
    for node in half.graph.node:
        if node.op_type != "Resize":
            continue
        for name in node.input[1:3]:
            const = constants.get(name)
            for attr in const.attribute if const is not None else []:
                if attr.name == "value" and attr.t.data_type == onnx.TensorProto.FLOAT16:
                    attr.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(attr.t).astype(np.float32), attr.t.name))
    return half
