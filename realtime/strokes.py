"""The stroke scale a style was trained for, and the processing size that follows from it.

A feed-forward style network paints strokes of a fixed size in *pixels*: the size they had in the
painting at the long side it was trained with. What the eye judges is the stroke against the picture's
objects, so a style looks as it did in training only when frames come in at the scale of the training
photos. The trainer fed crops of photos whose short side was ``crop × s``, s drawn from
``[scale_min, scale_max]``. Run at full size on a 1080p frame (short side 1080 against 224–320 in
training) the strokes shrink to a fine embossed texture, and the network does 10× the work.

So by default the runtime stylizes a frame scaled so its short side is the largest the style was trained
at (``crop × scale_max``, the finest stroke it learnt: sharper than the middle of the range, and still a
look it was trained to give), then scales the result back up to the frame's size, adding back the
frame's own fine luminance detail so edges stay sharp (``upscale_with_detail``). ``--stroke`` scales the
strokes (2: twice as coarse, the frame processed at half that short side; 0.5: finer) and
``--full-size`` keeps the old behaviour (stylize every pixel).

New models carry the figure in their metadata (``modelmeta.TRAINED_SHORT_SIDE``); for files exported
before it existed it is worked out from their recorded training settings the same way.
"""

from __future__ import annotations

import json
from typing import Mapping

import numpy as np

from . import modelmeta as mm

# How much of the frame's own high-frequency luminance is added back after upscaling. 1 would restore
# the photo's full fine detail over the strokes (the photo's texture shows through the paint); 0 leaves
# the cubic upscale soft. 0.6 keeps edges crisp while the strokes stay the dominant texture (judged on
# 1080p frames of the shipped styles, tools/stroke_sizes.py).
DETAIL = 0.6


def trained_short_side(settings: Mapping[str, object]) -> int | None:
    """The short side (px) of the largest photos the style was trained on, from its training settings
    (``crop``, ``scale_max``); None when they do not say."""
    try:
        crop, scale_max = float(settings["crop"]), float(settings.get("scale_max", 1.0))  # type: ignore[arg-type]
    except (KeyError, TypeError, ValueError):
        return None
    if not (crop > 0 and scale_max > 0):
        return None
    return int(round(crop * scale_max))


def model_short_side(metadata: Mapping[str, str]) -> int | None:
    """The trained short side a model records (``modelmeta.TRAINED_SHORT_SIDE``), else the one its
    ``settings`` imply; None for a model that says neither (it is then stylized at full size)."""
    text = metadata.get(mm.TRAINED_SHORT_SIDE)
    if text:
        try:
            value = int(text)
            if value > 0:
                return value
        except ValueError:
            pass
    try:
        settings = json.loads(metadata.get(mm.SETTINGS, "") or "{}")
    except ValueError:
        return None
    return trained_short_side(settings) if isinstance(settings, dict) else None


def stroke_short_side(metadata: Mapping[str, str], stroke: float = 1.0) -> int | None:
    """The short side to stylize at for strokes ``stroke`` times the trained size (None: full size)."""
    short = model_short_side(metadata)
    if short is None:
        return None
    return max(8, int(round(short / stroke)))


def upscale_with_detail(original: np.ndarray, content: np.ndarray, stylized: np.ndarray, detail: float = DETAIL) -> np.ndarray:
    """``stylized`` (at ``content``'s size) scaled up to ``original``'s size, plus ``detail`` × the
    original's luminance detail that the downscale to ``content`` removed (original − upscaled content):
    the strokes and colours come from the network, the edges from the full-size frame."""
    import cv2

    h, w = original.shape[:2]
    up = cv2.resize(stylized, (w, h), interpolation=cv2.INTER_CUBIC)
    if detail <= 0 or content.shape[:2] == (h, w):
        return up
    # luminance only, so the detail brings no photo colour back; kept in uint8 as two saturating
    # halves (brighter, darker), which OpenCV does several times faster than one signed sum
    low = cv2.resize(cv2.cvtColor(content, cv2.COLOR_RGB2GRAY), (w, h), interpolation=cv2.INTER_CUBIC)
    fine = cv2.cvtColor(original, cv2.COLOR_RGB2GRAY)
    brighter = cv2.addWeighted(fine, detail, low, -detail, 0.0)  # where the frame is brighter; else 0
    darker = cv2.addWeighted(low, detail, fine, -detail, 0.0)
    cv2.add(up, cv2.cvtColor(brighter, cv2.COLOR_GRAY2RGB), dst=up)
    cv2.subtract(up, cv2.cvtColor(darker, cv2.COLOR_GRAY2RGB), dst=up)
    return up
