"""The contract between the trainer's ONNX export and the runtime stylizer.

A style model is an ONNX graph with one input ``input`` and one output ``output``, float32, NCHW (the
output possibly in the phase layout of OUTPUT_PHASES), RGB, with dynamic batch, height and width.
Height and width must be multiples of ``size_multiple``. The metadata properties below describe it;
the stylizer reads them rather than assuming.
"""

from __future__ import annotations

import numpy as np

INPUT_NAME = "input"
OUTPUT_NAME = "output"

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
STYLE_IMAGE_SHA256 = "style_image_sha256"
SETTINGS = "settings"  # JSON: every training setting
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
