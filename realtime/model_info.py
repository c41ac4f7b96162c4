"""What a model file says about itself: its signature checked against the contract (``realtime.modelmeta``)
and its metadata read into ``ModelInfo``, with the contract's defaults filled in.

No session is needed: the stylizer checks the signature as ONNX Runtime gives it, or as
``graph_io.signature`` reads it from the file before any session is built.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from . import modelmeta
from .errors import ModelError


@dataclass(frozen=True)
class ModelInfo:
    """What the model says about itself (its ONNX metadata), with the contract's defaults filled in."""

    style_name: str
    input_range: tuple[float, float]
    layout: str
    channels: str
    size_multiple: int
    tier: str
    metadata: dict[str, str]
    border: int = 0  # mirrored margin added on every side before the network (modelmeta.BORDER)
    output_phases: int = 1  # 2: the output is 2×2 sub-pixel phases at half resolution (modelmeta.OUTPUT_PHASES)
    # the styles the model holds, in the order of its ``style`` input (modelmeta.STYLE_NAMES); a file
    # without that input (style_input False) holds the one style ``style_name``
    style_names: tuple[str, ...] = ()
    style_input: bool = False

    @property
    def scale(self) -> float:
        """Multiply uint8 pixels by this to get model input (1/255 for "0,1", 1 for "0,255")."""
        return (self.input_range[1] - self.input_range[0]) / 255.0


def _parse_range(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError as exc:
        raise ModelError(f"model metadata input_range {text!r} is not 'low,high'") from exc
    if hi <= lo:
        raise ModelError(f"model metadata input_range {text!r} is empty")
    return lo, hi


def read_onnx_header(path: Path) -> None:
    """Refuse obviously wrong files with a clear message before ONNX Runtime produces a long one."""
    if not path.is_file():
        raise ModelError(f"model file {path} does not exist")
    with open(path, "rb") as fh:
        head = fh.read(64)
    # An ONNX file is a protobuf ModelProto; its first field is ir_version (tag 0x08). Text, images
    # and empty files fail this cheap test; anything subtler is caught when the session is built.
    if len(head) < 2 or head[0] != 0x08:
        raise ModelError(f"{path} is not an ONNX model")


def read_metadata(path: Path, inputs: Sequence, outputs: Sequence, meta: dict[str, str]) -> ModelInfo:  # type: ignore[type-arg]
    """The model's signature checked and its metadata read (``inputs``/``outputs``: ONNX Runtime's
    NodeArgs, or graph_io.TensorSig read from the file, which look the same)."""
    extra = [i for i in inputs if i.name != modelmeta.INPUT_NAME]
    style_input = [i for i in extra if i.name == modelmeta.STYLE_INPUT]
    if inputs[0].name != modelmeta.INPUT_NAME or len(extra) != len(style_input) or len(inputs) > 2:
        names = ", ".join(i.name for i in inputs)
        raise ModelError(f"{path.name}: expected an input named {modelmeta.INPUT_NAME!r} (and perhaps "
                         f"{modelmeta.STYLE_INPUT!r}), found: {names}")
    if not outputs or outputs[0].name != modelmeta.OUTPUT_NAME:
        names = ", ".join(o.name for o in outputs)
        raise ModelError(f"{path.name}: expected an output named {modelmeta.OUTPUT_NAME!r}, found: {names}")
    shape = inputs[0].shape
    if len(shape) != 4:
        raise ModelError(f"{path.name}: input shape {shape} is not N×3×H×W")
    if shape[1] not in (3, "3") and not (isinstance(shape[1], str) or shape[1] is None):
        raise ModelError(f"{path.name}: input has {shape[1]} channels; a style model takes 3 (RGB)")
    if inputs[0].type != "tensor(float)":
        raise ModelError(f"{path.name}: input type {inputs[0].type}; expected tensor(float)")
    for dim, label in ((shape[2], "height"), (shape[3], "width")):
        if isinstance(dim, int) and dim > 0:
            raise ModelError(f"{path.name}: input {label} is fixed at {dim}; export with dynamic H and W")

    get = lambda key: meta.get(key) or modelmeta.DEFAULTS.get(key, "")  # noqa: E731
    layout = get(modelmeta.LAYOUT).upper()
    channels = get(modelmeta.CHANNELS).upper()
    if layout != "NCHW":
        raise ModelError(f"{path.name}: layout {layout} is not supported (NCHW only)")
    if channels not in ("RGB", "BGR"):
        raise ModelError(f"{path.name}: channels {channels} is not supported (RGB or BGR)")
    try:
        multiple = max(1, int(get(modelmeta.SIZE_MULTIPLE)))
    except ValueError as exc:
        raise ModelError(f"{path.name}: size_multiple {get(modelmeta.SIZE_MULTIPLE)!r} is not an integer") from exc
    try:
        border = int(get(modelmeta.BORDER))
    except ValueError as exc:
        raise ModelError(f"{path.name}: border {get(modelmeta.BORDER)!r} is not an integer") from exc
    if not 0 <= border <= 256:
        raise ModelError(f"{path.name}: border {border} is outside 0..256")
    phases = get(modelmeta.OUTPUT_PHASES)
    if phases not in ("1", "2") or (phases == "2" and multiple % 2):
        raise ModelError(f"{path.name}: output_phases {phases!r} is not supported (1, or 2 with an even size_multiple)")
    style_name = meta.get(modelmeta.STYLE_NAME) or path.stem
    style_names: tuple[str, ...] = (style_name,)
    if style_input:
        shape = style_input[0].shape
        try:
            style_names = tuple(str(n) for n in json.loads(meta[modelmeta.STYLE_NAMES]))
        except (KeyError, ValueError, TypeError):
            raise ModelError(f"{path.name}: has a style input but no valid {modelmeta.STYLE_NAMES} metadata") from None
        if style_input[0].type != "tensor(float)" or len(shape) != 1 or shape[0] != len(style_names) or not style_names:
            raise ModelError(f"{path.name}: style input {style_input[0].type} {shape} does not match its "
                             f"{len(style_names)} style names")
    return ModelInfo(
        style_names=style_names,
        style_input=bool(style_input),
        border=border,
        style_name=meta.get(modelmeta.STYLE_NAME) or path.stem,
        input_range=_parse_range(get(modelmeta.INPUT_RANGE)),
        layout=layout,
        channels=channels,
        size_multiple=multiple,
        tier=get(modelmeta.TIER),
        metadata=meta,
        output_phases=int(phases),
    )
