"""A tiny stand-in for a trained TransformNet, built with onnx.helper (no torch needed, ~10 ms).

Same shape of graph as the real one, scaled down: reflection-padded convolutions, instance norm, a
strided convolution down and a nearest-neighbour upsample back, sigmoid output; dynamic N/H/W and the
metadata properties of ``realtime.modelmeta``. Weights are random (seeded): the output is a deterministic
but meaningless "style", enough to test the plumbing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from realtime import modelmeta


def make_tiny_model(
    path: Path,
    *,
    style_name: str = "tiny",
    input_range: str = "0,1",
    channels_in: int = 3,
    rank: int = 4,
    fixed_hw: int | None = None,
    seed: int = 0,
    width: int = 8,
    metadata: dict[str, str] | None = None,
) -> Path:
    rng = np.random.default_rng(seed)
    inits = []

    def weight(name: str, shape: tuple[int, ...], scale: float = 0.3) -> str:
        inits.append(numpy_helper.from_array(rng.normal(0, scale, shape).astype(np.float32), name))
        return name

    def const(name: str, arr: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(arr, name))
        return name

    nodes = []
    hi = 255.0 if input_range == "0,255" else 1.0
    const("pad1", np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64))
    const("inv_hi", np.array(1.0 / hi, np.float32))
    const("hi", np.array(hi, np.float32))
    const("scales", np.array([1, 1, 2, 2], np.float32))
    nodes.append(helper.make_node("Mul", ["input", "inv_hi"], ["x0"]))
    nodes.append(helper.make_node("Pad", ["x0", "pad1"], ["p1"], mode="reflect"))
    nodes.append(helper.make_node("Conv", ["p1", weight("w1", (width, 3, 3, 3)), weight("b1", (width,), 0.1)], ["c1"]))
    nodes.append(helper.make_node("InstanceNormalization", ["c1", const("g1", np.ones(width, np.float32)),
                                                            const("be1", np.zeros(width, np.float32))], ["n1"]))
    nodes.append(helper.make_node("Relu", ["n1"], ["r1"]))
    nodes.append(helper.make_node("Conv", ["r1", weight("w2", (width, width, 3, 3), 0.2)], ["c2"], strides=[2, 2], pads=[1, 1, 1, 1]))
    nodes.append(helper.make_node("Relu", ["c2"], ["r2"]))
    nodes.append(helper.make_node("Resize", ["r2", "", "scales"], ["u"], mode="nearest"))
    nodes.append(helper.make_node("Add", ["u", "r1"], ["s"]))  # a skip keeps detail (and the output depends on the input)
    nodes.append(helper.make_node("Pad", ["s", "pad1"], ["p3"], mode="reflect"))
    nodes.append(helper.make_node("Conv", ["p3", weight("w3", (3, width, 3, 3), 0.2)], ["c3"]))
    nodes.append(helper.make_node("Sigmoid", ["c3"], ["y"]))
    nodes.append(helper.make_node("Mul", ["y", "hi"], ["output"]))

    if fixed_hw:
        in_shape: list[object] = ["N", channels_in, fixed_hw, fixed_hw][:rank]
    else:
        in_shape = ["N", channels_in, "H", "W"][:rank]
    graph = helper.make_graph(
        nodes,
        "tiny_transformnet",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="realtime-tests")
    model.ir_version = 8
    meta = {
        modelmeta.STYLE_NAME: style_name,
        modelmeta.INPUT_RANGE: input_range,
        modelmeta.LAYOUT: "NCHW",
        modelmeta.CHANNELS: "RGB",
        modelmeta.SIZE_MULTIPLE: "4",
        modelmeta.TIER: "fast",
    }
    meta.update(metadata or {})
    for k, v in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v
    if rank == 4 and channels_in == 3 and not fixed_hw:
        onnx.checker.check_model(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path
