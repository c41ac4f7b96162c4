"""ONNX export of a trained TransformNet: dynamic batch/height/width, metadata embedded, and verified
right after export against PyTorch with ONNX Runtime on random inputs at two sizes."""

from __future__ import annotations

import json
import os
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from realtime import modelmeta as mm
from realtime.errors import ModelError

from . import TRAINER_VERSION

OPSET = 17
# fp32 on both sides; differences come only from kernel order. Bound in [0, 1] pixel units.
VERIFY_BOUND = 2e-3


class _Clamped(nn.Module):
    """The exported graph clamps to the pixel range, so every consumer gets valid pixels."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        return self.model(x, style).clamp(0.0, 1.0)


def style_names_of(metadata: Mapping[str, Any], styles: int) -> list[str]:
    """The style names the metadata gives (STYLE_NAMES, else STYLE_NAME for one style), checked against
    the network's ``styles``."""
    names = metadata.get(mm.STYLE_NAMES)
    if names is None:
        names = [metadata.get(mm.STYLE_NAME, "style")] if styles == 1 else None
    if isinstance(names, str):
        names = json.loads(names)
    if names is None or len(names) != styles or len(set(names)) != len(names):
        raise ModelError(f"the network holds {styles} styles; the metadata names {names!r}")
    return list(names)


def export_onnx(model: nn.Module, path: str | Path, metadata: Mapping[str, Any], verify: bool = True,
                sizes: tuple[tuple[int, int], ...] = ((64, 96), (100, 68)), log=None) -> float:
    """Write ``model`` to ``path`` (atomically) with ``metadata`` as ONNX metadata properties and return the
    largest absolute difference ONNX Runtime vs PyTorch (batch 2, at ``sizes``, which need not be square,
    for every style alone and for a blend of them).

    The file has two inputs: the frames and ``style``, the network's N style weights (modelmeta); the
    metadata's STYLE_NAMES names them (from ``metadata``, or STYLE_NAME for a single-style network)."""
    import onnx

    from .model import style_count

    path = Path(path)
    styles = style_count(model)
    names = style_names_of(metadata, styles)
    model = _Clamped(model).eval().float().cpu()
    # A network may offer an equivalent form that runs faster in ONNX Runtime (FastTransformNet); the
    # check below compares the file against the trained form, so the rewrite is verified too.
    form = getattr(model.model, "export_form", None)
    exported = _Clamped(form()).eval() if form else model
    # the layout of the file's output is the export form's (modelmeta.OUTPUT_PHASES)
    phases = int(model.model.output_phases) if form else 1  # a network with an export form declares it
    tmp = path.with_name(path.name + ".tmp")
    example = (torch.rand(1, 3, 64, 64), torch.full((styles,), 1.0 / styles))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # The TorchScript-based exporter handles dynamic axes of this plain conv net reliably and
        # needs no extra packages; it gives the same graph the dynamo exporter would. Parameters keep
        # their PyTorch names as initializers, which is how ``load_network`` reads a file back.
        torch.onnx.export(
            exported, example, str(tmp), input_names=[mm.INPUT_NAME, mm.STYLE_INPUT], output_names=[mm.OUTPUT_NAME],
            opset_version=OPSET,
            dynamic_axes={mm.INPUT_NAME: {0: "batch", 2: "height", 3: "width"}, mm.OUTPUT_NAME: {0: "batch", 2: "height", 3: "width"}},
            dynamo=False,
        )
    proto = onnx.load(str(tmp))
    props = {**mm.DEFAULTS, **{k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()},
             mm.OUTPUT_PHASES: str(phases), mm.STYLE_NAMES: json.dumps(names)}
    del proto.metadata_props[:]
    for k, v in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v
    proto.producer_name = "realtime-trainer"
    proto.producer_version = TRAINER_VERSION
    onnx.checker.check_model(proto)
    onnx.save(proto, str(tmp))
    diff = 0.0
    try:
        if verify:
            diff = verify_onnx(model, tmp, sizes, phases)
            if log:
                log(f"export check: max |onnxruntime - torch| = {diff:.2e} (bound {VERIFY_BOUND:g}) at batch 2, sizes {sizes}")
            if not diff <= VERIFY_BOUND:
                raise ModelError(f"exported model differs from PyTorch by {diff:.3g} > {VERIFY_BOUND:g}")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return diff


def verify_onnx(model: nn.Module, path: str | Path, sizes: tuple[tuple[int, int], ...], phases: int = 1) -> float:
    """Largest |ONNX Runtime − PyTorch| over ``sizes``, each style alone and a random blend of all."""
    import onnxruntime as ort

    from .model import style_count

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst = 0.0
    gen = torch.Generator().manual_seed(1234)
    n = style_count(model)
    blend = torch.rand(n, generator=gen) + 0.1
    vectors = list(torch.eye(n)) + ([blend / blend.sum()] if n > 1 else [])
    for h, w in sizes:
        x = torch.rand(2, 3, h, w, generator=gen)
        for style in vectors:
            with torch.no_grad():
                ref = model(x, style).numpy()
            got = sess.run([mm.OUTPUT_NAME], {mm.INPUT_NAME: x.numpy(), mm.STYLE_INPUT: style.numpy()})[0]
            got = mm.phases_to_image(got, phases)
            if got.shape != ref.shape:
                raise ModelError(f"exported model returns shape {got.shape}, PyTorch {ref.shape}")
            worst = max(worst, float(np.abs(got - ref).max()))
    return worst


def read_metadata(path: str | Path) -> dict[str, str]:
    """The metadata properties of an ONNX file, read without building an inference session."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in proto.metadata_props}


def build_metadata(config: Mapping[str, Any], style_sha256: str, iterations: int, final_losses: Mapping[str, float],
                   tier: str = "full", border: int = 0) -> dict[str, Any]:
    meta = {
        mm.STYLE_NAME: config["name"], mm.TIER: tier, mm.BORDER: str(int(border)), mm.STYLE_IMAGE_SHA256: style_sha256, mm.SETTINGS: dict(config),
        mm.ITERATIONS: str(iterations), mm.FINAL_LOSSES: dict(final_losses), mm.TRAINER_VERSION: TRAINER_VERSION,
        mm.DATE: datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
    }
    short = trained_short_side_of(config)
    if short is not None:
        meta[mm.TRAINED_SHORT_SIDE] = str(short)
    return meta


def trained_short_side_of(config: Mapping[str, Any]) -> int | None:
    """The frame short side the model's strokes were trained for (realtime.strokes): its teacher's, when
    it was distilled (a student copies its teacher's strokes), else its own crops'."""
    from realtime.strokes import model_short_side, trained_short_side

    teacher = config.get("teacher")
    if teacher and float(config.get("distill_weight") or 0) > 0 and Path(teacher).is_file():
        try:
            short = model_short_side(read_metadata(teacher))
        except Exception:  # noqa: BLE001 - an unreadable teacher leaves the student's own figure
            short = None
        if short is not None:
            return short
    return trained_short_side(config)


def _read_norm_floors(proto: Any, net: nn.Module) -> None:
    """The norms' variance floors live in the graph, as each InstanceNormalization's epsilon (the
    exporter folds the Python float into the node, not into an initializer); the nodes come in the
    order the network runs them, which is the order of its modules."""
    from .model import DEFAULT_NORM_EPS, set_norm_eps, style_norms

    eps = [next((a.f for a in node.attribute if a.name == "epsilon"), DEFAULT_NORM_EPS)  # ONNX's own default
           for node in proto.graph.node if node.op_type == "InstanceNormalization"]
    if len(eps) != len(style_norms(net)):
        raise ValueError(f"the graph has {len(eps)} instance norms, the network {len(style_norms(net))}")
    set_norm_eps(net, eps)


def load_network(path: str | Path) -> tuple[nn.Module, dict[str, str]]:
    """Read an exported model back into PyTorch: the network its settings describe (arch, width, depth,
    its styles), with the weights of the file's initializers (they keep their PyTorch names; the fast
    tier's phase-form last layer is turned back into its plain convolution), and the file's metadata.
    Files written before conditional norms (one style, no ``style`` input) load as one style."""
    import onnx
    from onnx import numpy_helper

    from .model import build_model

    path = Path(path)
    try:
        proto = onnx.load(str(path))
    except Exception as exc:  # onnx raises DecodeError, OSError, ... for a file that is not a model
        raise ModelError(f"{path} is not an ONNX model ({type(exc).__name__})") from None
    meta = {p.key: p.value for p in proto.metadata_props}
    try:
        settings = json.loads(meta.get(mm.SETTINGS, "{}"))
        names = json.loads(meta[mm.STYLE_NAMES]) if mm.STYLE_NAMES in meta else [meta.get(mm.STYLE_NAME) or path.stem]
        arch = settings.get("arch", meta.get(mm.TIER, "full"))
        net = build_model(arch, int(settings["width"]), int(settings["depth"]), bool(settings.get("residual_norm", True)),
                          styles=len(names), decoder_width=int(settings.get("decoder_width", 0)),
                          encoder_width=int(settings.get("encoder_width", 0)))
        weights = {i.name.removeprefix("model."): torch.from_numpy(numpy_helper.to_array(i).copy())
                   for i in proto.graph.initializer if i.name.startswith("model.")}
        if int(meta.get(mm.OUTPUT_PHASES, "1")) > 1:
            net.load_export_form(weights)
        else:
            net.load_state_dict(weights)
        _read_norm_floors(proto, net)
    except (KeyError, ValueError, RuntimeError, TypeError, AttributeError) as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"cannot read the network back from {path} (not written by restyle-train?): {text[:200]}") from None
    return net.eval(), meta
