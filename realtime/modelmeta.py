"""The contract between the trainer's ONNX export and the runtime stylizer.

A style model is an ONNX graph with an input ``input`` and one output ``output``, float32, NCHW (the
output possibly in the phase layout of OUTPUT_PHASES), RGB, with dynamic batch, height and width.
Height and width must be multiples of ``size_multiple``. The metadata properties below describe it;
the stylizer reads them rather than assuming.

A model may hold several styles (conditional instance norm): then it has a second input ``style``, a
float32 vector of N non-negative weights summing to 1 that mixes the styles' rows (one-hot: one style;
any convex mix: a blend), and STYLE_NAMES names the N styles in order. A file without that input is
the single style of STYLE_NAME. ``style_vector`` turns a user's ``name`` or ``a:0.7,b:0.3`` into a vector.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

INPUT_NAME = "input"
OUTPUT_NAME = "output"
STYLE_INPUT = "style"

# metadata_props keys (all values are strings; JSON where noted)
STYLE_NAME = "style_name"
TIER = "tier"  # "full" or "fast"
INPUT_RANGE = "input_range"  # "0,1" or "0,255": pixel value range of input and output
LAYOUT = "layout"  # "NCHW"
CHANNELS = "channels"  # "RGB"
SIZE_MULTIPLE = "size_multiple"  # e.g. "4": input H and W must be multiples of it
# "16": pixels of mirrored picture the runtime adds on every side before the network and crops off after.
# A network with zero padding inside (the fast tier: no Pad ops, they cost more than its convolutions)
# paints a dark frame along the image border; given a mirrored margin, the border is computed like the
# interior. Costs (w+2b)(h+2b)/wh more: 14 % at 640x360 for b = 16.
BORDER = "border"
# "1": the output is N×3×H×W. "2": it is N×12×(H/2)×(W/2), the four pixels of every 2×2 block of the
# picture as channels, (2·row + column)·3 + colour (ONNX DepthToSpace's DCR order; phases_to_image).
# The fast tier's last layer computes exactly that (train/model.py), and the runtime interleaves the
# phases while it converts planes to interleaved uint8, which it does anyway.
OUTPUT_PHASES = "output_phases"
STYLE_NAMES = "style_names"  # JSON list: the styles of the ``style`` input, in order
# JSON list, one entry per style (same order): what the trainer knows of each (painting, its sha256, the
# steps it was trained for, its evaluation); the training record beside the file has the same list.
STYLE_RECORDS = "style_records"
STYLE_IMAGE_SHA256 = "style_image_sha256"
SETTINGS = "settings"  # JSON: every training setting
# The short side (px) of the largest photos the style was trained on (crop × scale_max): the frame size
# at which its strokes look as trained. The runtime stylizes frames at that size by default (strokes.py).
TRAINED_SHORT_SIDE = "trained_short_side"
ITERATIONS = "iterations"
FINAL_LOSSES = "final_losses"  # JSON
TRAINER_VERSION = "trainer_version"
DATE = "date"  # ISO 8601, UTC

DEFAULTS = {INPUT_RANGE: "0,1", LAYOUT: "NCHW", CHANNELS: "RGB", SIZE_MULTIPLE: "4", TIER: "full", BORDER: "0",
            OUTPUT_PHASES: "1"}


def phases_to_image(y: np.ndarray, phases: int) -> np.ndarray:
    """A model's output in OUTPUT_PHASES layout → N×C×H×W (the reference form; the stylizer does the
    same per plane with OpenCV)."""
    if phases == 1:
        return y
    n, c, h, w = y.shape
    colours = c // (phases * phases)
    if colours * phases * phases != c:
        raise ValueError(f"{c} output channels are not {phases}x{phases} phases of whole pixels")
    blocks = y.reshape(n, phases, phases, colours, h, w)
    return blocks.transpose(0, 3, 4, 1, 5, 2).reshape(n, colours, h * phases, w * phases)


def style_vector(spec: str, names: Sequence[str]) -> np.ndarray:
    """A style vector for ``names`` from ``name`` (one-hot) or ``a:0.7,b:0.3`` (a blend; weights are
    relative and normalised to sum 1). A ValueError with a one-line reason for an unknown name, a
    negative, missing or non-finite weight, or weights that sum to 0."""
    weights = np.zeros(len(names), np.float32)
    for part in spec.split(","):
        name, sep, text = part.strip().partition(":")
        name = name.strip()
        if name not in names:
            raise ValueError(f"unknown style {name!r} in {spec!r} (this model has: {', '.join(names)})")
        try:
            weight = float(text) if sep else 1.0
        except ValueError:
            raise ValueError(f"style weight {text!r} of {name!r} is not a number") from None
        if not math.isfinite(weight) or weight < 0:
            raise ValueError(f"style weight of {name!r} must be a finite number >= 0, got {text}")
        weights[list(names).index(name)] += weight
    return check_style_vector(weights, len(names))


def check_style_vector(vector: Sequence[float] | np.ndarray, styles: int) -> np.ndarray:
    """``vector`` as the float32 input of a model of ``styles`` styles, normalised to sum 1; a ValueError
    for a wrong length, a negative or non-finite weight, or an all-zero vector."""
    v = np.asarray(vector, dtype=np.float64).reshape(-1)
    if v.shape[0] != styles:
        raise ValueError(f"style vector has {v.shape[0]} weights; the model holds {styles} styles")
    if not np.all(np.isfinite(v)) or np.any(v < 0):
        raise ValueError(f"style weights must be finite and >= 0, got {np.round(v, 4).tolist()}")
    total = float(v.sum())
    if total <= 0:
        raise ValueError("style weights sum to 0; give at least one style a positive weight")
    return (v / total).astype(np.float32)
