"""Temporal smoothing of stylized video: flow-guided blending and scene-cut detection.

A feed-forward style network sees each frame alone, so small changes in the input (noise, compression,
a one-pixel shift) turn into large changes in the brush strokes: the output shimmers. The smoothers here
sit after the stylizer and blend each stylized frame with the previous *output*:

- ``off``: identity; the reference for every comparison.
- ``blend``: a plain exponential moving average. It damps shimmer but trails moving content (ghosting);
  it is kept as the baseline that shows why motion compensation is needed.
- ``flow``: the previous output is first warped onto the current frame with optical flow computed on the
  *input* frames (the stylized frames are exactly what flickers, so flow on them would be unreliable),
  and it is blended only where that flow can be trusted. New and occluded content comes straight from
  the stylizer, so it is never smeared. The state is dropped on scene cuts.

Every smoother is an object with explicit state, ``process(content, stylized)`` and ``reset()`` (the
pipeline also calls it on seeks). Images are H×W×3 uint8 RGB; ``content`` is the input frame at the size
of the stylized frame.

The flow validity test (forward-backward consistency and motion boundaries, Sundaram et al. 2010,
Ruder et al. 2016) is the same one the warping-error metric in :mod:`realtime.temporal_metrics` uses, so
it lives here once: :func:`flow_validity`.
"""

from __future__ import annotations

from typing import Protocol

import cv2
import numpy as np

from .argtypes import SMOOTH_MODES

__all__ = [
    "MODES",
    "Smoother",
    "NoSmoothing",
    "BlendSmoother",
    "FlowSmoother",
    "SceneCutDetector",
    "make_smoother",
    "flow_validity",
    "backward_warp",
    "pixel_grid",
    "with_occlusion_margin",
]

MODES = SMOOTH_MODES  # one list for the command lines and make_smoother

# ``flow-hq``: the flow smoother with DIS MEDIUM (its finest pyramid level is twice the FAST preset's
# resolution) and a looser photometric check, which the finer flow allows. Measured on cached per-frame
# outputs of 30 frames each of diver, vtest, cup and bikes at 640 px, strength 0.8, warping error ÷
# per-frame, mean over the clips: flow 0.62, flow-hq 0.50 (0.55 with MEDIUM at the FAST preset's
# residual limit); `tools/temporal_eval.py the_scream --tier fast` (60 frames each): flow 0.65, flow-hq
# 0.54. The looser check with FAST flow smeared uncovered background (tests/test_temporal.py). It costs
# about twice the flow mode's time per frame (12 → 22 ms at 640×480), so it is for recorded footage.
FLOW_HQ = {"preset": "medium", "max_grey_residual": 30.0}


class Smoother(Protocol):
    """A stateful per-stream post-processor of stylized frames."""

    def process(self, content: np.ndarray, stylized: np.ndarray) -> np.ndarray:
        """Return the smoothed output for this frame (H×W×3 uint8 RGB) and advance the state."""
        ...

    def reset(self) -> None:
        """Forget the past: the next frame is treated as the first of a new shot."""
        ...


# --------------------------------------------------------------------------------------------------
# Flow helpers shared with the metrics
# --------------------------------------------------------------------------------------------------

_GRID_CACHE: dict[tuple[int, int], np.ndarray] = {}


def pixel_grid(height: int, width: int) -> np.ndarray:
    """H×W×2 float32 array of (x, y) pixel coordinates; cached because it is rebuilt for every frame."""
    key = (height, width)
    grid = _GRID_CACHE.get(key)
    if grid is None:
        xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
        grid = np.dstack([xs, ys])
        grid.flags.writeable = False
        if len(_GRID_CACHE) > 8:  # a few sizes at most in one process; do not grow without bound
            _GRID_CACHE.clear()
        _GRID_CACHE[key] = grid
    return grid


def backward_warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Sample ``image`` at x + flow(x) (bilinear): brings the frame the flow points *to* onto the
    frame it points *from*. Samples outside are edge-replicated; callers mask them out."""
    h, w = flow.shape[:2]
    coords = cv2.add(pixel_grid(h, w), flow)
    return cv2.remap(image, coords, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _sq_norm(vectors: np.ndarray) -> np.ndarray:
    """|v|² of an H×W×2 float32 array, as H×W."""
    magnitude = cv2.magnitude(vectors[..., 0], vectors[..., 1])
    return cv2.multiply(magnitude, magnitude)


def flow_validity(flow: np.ndarray, reverse: np.ndarray, pixel_scale: float = 1.0,
                  round_trip_tolerance: float = 0.5) -> np.ndarray:
    """Where ``flow`` can be trusted for backward warping: an H×W bool mask.

    ``flow`` maps each pixel x of the current frame to x + flow(x) in the other frame (the warping
    flow); ``reverse`` is the flow the other way. A pixel is invalid when

    - the round trip does not come back (occlusion / disocclusion; Sundaram et al.):
      |f + b(x+f)|² > 0.01 (|f|² + |b(x+f)|²) + 0.5, the constant in *full-resolution* pixels²;
    - it lies on a motion boundary (Ruder et al.): |∇f|² > 0.01 |f|² + 0.002, where the flow
      gradient is resolution-independent and |f|² is in full-resolution pixels²;
    - x + f falls outside the frame (content that just entered has no history).

    ``pixel_scale`` is full-resolution pixels per pixel of these arrays, so a flow computed on a
    downscaled image is judged by the same thresholds as a full-resolution one. ``round_trip_tolerance``
    is the round-trip test's constant (0.5 px² in the metric).
    """
    h, w = flow.shape[:2]
    coords = cv2.add(pixel_grid(h, w), flow)
    s2 = pixel_scale * pixel_scale

    # OpenCV element-wise ops throughout: this runs on every frame and numpy's temporaries cost
    # several times more at these sizes.
    mag_f = _sq_norm(flow)
    rev_at = cv2.remap(reverse, coords, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    mag_rt = _sq_norm(cv2.add(flow, rev_at))
    consistent = mag_rt * s2 <= 0.01 * s2 * (mag_f + _sq_norm(rev_at)) + round_trip_tolerance

    # Forward differences, as in Lai et al.'s reference code; the last row/column get zero gradient
    # (a zero border added by OpenCV: cheaper than numpy's zeros and slice assignments). A frame one
    # pixel wide or high has no difference along that side.
    grad = np.zeros((h, w), np.float32)
    if w > 1:
        grad = cv2.copyMakeBorder(_sq_norm(cv2.subtract(flow[:, 1:], flow[:, :-1])), 0, 0, 0, 1, cv2.BORDER_CONSTANT, value=0)
    if h > 1:
        grad = cv2.add(grad, cv2.copyMakeBorder(_sq_norm(cv2.subtract(flow[1:], flow[:-1])), 0, 1, 0, 0, cv2.BORDER_CONSTANT, value=0))
    smooth = grad <= 0.01 * s2 * mag_f + 0.002

    inside = cv2.inRange(coords, (0.0, 0.0), (w - 1.0, h - 1.0)) > 0
    return consistent & smooth & inside


def with_occlusion_margin(valid: np.ndarray, margin: np.ndarray, speck: np.ndarray | None = None) -> np.ndarray:
    """``valid`` (H×W uint8 0/1) with a margin (structuring element ``margin``) cleared around every
    failed region; failed regions that a morphological opening with ``speck`` removes stay failed but
    get no margin.

    Occlusions sit at motion discontinuities and patch-based flow smears an object's motion a few
    pixels past its edge, so a failed region must take its neighbours with it. Lone failed pixels
    (noise, texture the flow missed) are no occlusion: spreading them too zeroed large textured areas
    of real clips."""
    failed = cv2.bitwise_xor(valid, 1)
    spreading = cv2.morphologyEx(failed, cv2.MORPH_OPEN, speck) if speck is not None else failed
    return cv2.bitwise_and(valid, cv2.bitwise_xor(cv2.dilate(spreading, margin), 1))


# --------------------------------------------------------------------------------------------------
# Scene cuts
# --------------------------------------------------------------------------------------------------


class SceneCutDetector:
    """Says whether a frame starts a new shot, from a tiny grey thumbnail of it and of the frame before.

    The score is 1 − the normalised cross-correlation (NCC) of the two thumbnails (``size`` pixels on
    the long side, area-averaged), maximised over shifts of up to ``max_shift`` thumbnail pixels.
    Normalising removes gain and offset, so brightness flicker, auto exposure and fades do not fire it;
    allowing a small shift keeps fast pans of fine texture correlated (without it, a pan of one
    thumbnail pixel over gravel or foliage decorrelates like a cut), while an unrelated image
    correlates near 0 at every shift. On the cuts of bikes.mp4 the score is ≥ 0.73; on its motion and
    occlusions (and on diver, vtest and cup) it stays ≤ 0.45, hence the threshold of 0.6.
    Flat frames (black, white) have no texture to correlate; there a large change of mean level, or a
    switch between flat and textured, counts as a cut.
    """

    def __init__(self, threshold: float = 0.6, size: int = 64, max_shift: int = 1, flat_std: float = 3.0,
                 flat_level_change: float = 24.0) -> None:
        """``threshold`` on 1 − NCC in [0, 2]: 0.6 fires when the thumbnails correlate below 0.4."""
        self.threshold = threshold
        self.size = size
        self.max_shift = max_shift
        self.flat_std = flat_std
        self.flat_level_change = flat_level_change
        self.last_score: float = 0.0
        self._prev: np.ndarray | None = None

    def reset(self) -> None:
        """Forget the previous frame; the next call returns False."""
        self._prev = None
        self.last_score = 0.0

    def _thumbnail(self, image: np.ndarray) -> np.ndarray:
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
        h, w = grey.shape[:2]
        k = self.size / max(h, w)
        if k < 1:
            grey = cv2.resize(grey, (max(1, round(w * k)), max(1, round(h * k))), interpolation=cv2.INTER_AREA)
        return grey.astype(np.float32)

    def is_cut(self, image: np.ndarray) -> bool:
        """Feed the next frame (RGB or grey, any size); True if it does not continue the previous one.
        The first frame after construction or ``reset()`` is not a cut; a change of size is."""
        cur = self._thumbnail(image)
        prev, self._prev = self._prev, cur
        if prev is None or prev.shape != cur.shape:
            self.last_score = 0.0
            return prev is not None
        std_prev, std_cur = float(prev.std()), float(cur.std())
        flat_prev, flat_cur = std_prev < self.flat_std, std_cur < self.flat_std
        if flat_prev or flat_cur:
            level_jump = abs(float(prev.mean() - cur.mean())) > self.flat_level_change
            self.last_score = 2.0 if (flat_prev != flat_cur or level_jump) else 0.0
        else:
            m = self.max_shift
            if m > 0 and min(cur.shape) > 4 * m:
                cur = cur[m:-m, m:-m]  # the centre, searched for in the previous thumbnail
            ncc = cv2.matchTemplate(prev, cur, cv2.TM_CCOEFF_NORMED)
            self.last_score = 1.0 - float(ncc.max())
        return self.last_score > self.threshold


# --------------------------------------------------------------------------------------------------
# Smoothers
# --------------------------------------------------------------------------------------------------


def _check(content: np.ndarray, stylized: np.ndarray) -> None:
    if stylized.ndim != 3 or stylized.shape[2] != 3 or stylized.dtype != np.uint8:
        raise ValueError(f"stylized frame must be H×W×3 uint8, got {stylized.shape} {stylized.dtype}")
    if content.shape[:2] != stylized.shape[:2]:
        raise ValueError(f"content {content.shape[:2]} and stylized {stylized.shape[:2]} sizes differ")


class NoSmoothing:
    """Identity: the per-frame output."""

    def process(self, content: np.ndarray, stylized: np.ndarray) -> np.ndarray:
        _check(content, stylized)
        return stylized

    def reset(self) -> None:
        pass


class BlendSmoother:
    """out = strength · previous out + (1 − strength) · stylized, with no motion compensation.

    The baseline: it lowers shimmer on still shots and ghosts on anything that moves. It deliberately
    does no cut detection of its own (the pipeline may still call ``reset()``)."""

    def __init__(self, strength: float = 0.5) -> None:
        self.strength = float(np.clip(strength, 0.0, 1.0))
        self._prev: np.ndarray | None = None

    def reset(self) -> None:
        self._prev = None

    def process(self, content: np.ndarray, stylized: np.ndarray) -> np.ndarray:
        _check(content, stylized)
        if self._prev is None or self._prev.shape != stylized.shape:
            out = stylized.copy()
        else:
            out = cv2.addWeighted(self._prev, self.strength, stylized, 1.0 - self.strength, 0.0)
        self._prev = out
        return out


_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}

# DIS (OpenCV 5.0) raises on images with a side under 12 pixels and crashes the process (segmentation
# fault) on wide images less than 32 pixels high, e.g. 300×16 with the FAST preset or 300×12 with
# MEDIUM; from 32 up both presets ran on every size we tried (32..64 × 32..330 pixels, random content).
# Smaller frames, such as a thin strip or a 1×1 video, are padded to this by repeating their edge, and
# the flow is cropped back.
_MIN_FLOW_SIDE = 32


def dis_flow(dis: "cv2.DISOpticalFlow", source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """DIS flow from ``source`` to ``target`` (grey, same size), padded first when too small for DIS."""
    h, w = source.shape[:2]
    pad_h, pad_w = max(0, _MIN_FLOW_SIDE - h), max(0, _MIN_FLOW_SIDE - w)
    if not (pad_h or pad_w):
        return dis.calc(source, target, None)
    source, target = (cv2.copyMakeBorder(g, 0, pad_h, 0, pad_w, cv2.BORDER_REPLICATE) for g in (source, target))
    return np.ascontiguousarray(dis.calc(source, target, None)[:h, :w])


class FlowSmoother:
    """Motion-compensated blending: out = a·warp(previous out) + (1 − a)·stylized with a per-pixel
    a = strength · confidence, where confidence is 0 wherever the flow cannot be trusted.

    Flow is DIS (CPU, preset FAST) between consecutive *input* frames at ``flow_long_side`` pixels on the
    long side, both directions; flow on a 320-pixel image is plenty for warping a smooth blend weight,
    and costs a quarter of full resolution at 640. A pixel is trusted where the flow passes
    :func:`flow_validity` (forward–backward round trip, motion boundary, source inside the frame) *and*
    the warped previous input matches the current input: mean absolute grey difference over a
    ``residual_window`` square at most ``max_grey_residual`` levels, after removing the mean difference
    so exposure changes pass (patch-based flow spills an object's motion onto the background beside it
    consistently in both directions, so the round trip passes there while the warp is wrong).

    Measured choices (cached per-frame outputs of a fast-tier the_scream model, 30 frames each of diver,
    vtest, cup and bikes at 640 px; warping error of flow ÷ per-frame, mean over the clips, strength
    0.8): ULTRAFAST flow with the metric's own round-trip constant (0.5 px²) gave 0.78; the FAST preset
    and a tolerance of 2 px² (about 1.4 px of disagreement, far below the motion of an occlusion) give
    0.69. Not eroding the mask reaches 0.48, but then background uncovered by a moving object gets
    smeared (tests/test_temporal.py), so failed regions keep a margin (:func:`with_occlusion_margin`):
    a 5×5 erosion of the mask gave 0.69; a 7×7 margin around the failed regions that survive a 3×3
    opening (lone failed pixels stay failed but do not spread) gives 0.62 with the same protection of
    uncovered background (a 5×5 margin smeared it by up to 21 levels; strength 0.9 gave 0.63). A
    failed pixel and its margin end at weight exactly 0 (the blurred weight is multiplied by the mask
    again, before and after the nearest-neighbour upscale), and content that just entered the frame
    gets weight 0, decided at full resolution.

    Accumulated error: each frame re-samples the previous output bilinearly, which blurs a little, and
    flow errors add up. With ``strength`` < 1 the weight of a frame k steps back is at most strength^k
    (0.5 → 1/8 after three frames), so the output is always mostly recent stylizer frames and never
    drifts into a smeared history; strength is clipped to ``max_strength`` for that reason.

    Resets itself on the first frame, on a size change, when :class:`SceneCutDetector` fires, and when
    the valid fraction of the flow collapses below ``min_valid_fraction`` (a cut the thumbnail test
    missed, or motion too fast to follow: either way the history is no use).
    """

    max_strength = 0.9

    def __init__(self, strength: float = 0.8, flow_long_side: int = 320, preset: str = "fast",
                 cut_detector: SceneCutDetector | None = None, min_valid_fraction: float = 0.05,
                 max_grey_residual: float = 20.0, margin: int = 7, speck: int = 3, residual_window: int = 5,
                 round_trip_tolerance: float = 2.0) -> None:
        self.strength = float(np.clip(strength, 0.0, self.max_strength))
        self.flow_long_side = flow_long_side
        self.min_valid_fraction = min_valid_fraction
        self.max_grey_residual = max_grey_residual
        self.residual_window = residual_window
        self.round_trip_tolerance = round_trip_tolerance
        self.cut_detector = cut_detector if cut_detector is not None else SceneCutDetector()
        self._dis = cv2.DISOpticalFlow_create(_PRESETS[preset])
        self._margin = cv2.getStructuringElement(cv2.MORPH_RECT, (margin, margin)) if margin > 1 else None
        self._speck = cv2.getStructuringElement(cv2.MORPH_RECT, (speck, speck)) if speck > 1 else None
        self._prev_grey: np.ndarray | None = None
        self._prev_out: np.ndarray | None = None
        # Diagnostics for the pipeline and the evaluation tool.
        self.cuts = 0
        self.last_valid_fraction = 0.0
        self.last_weight: np.ndarray | None = None

    def reset(self) -> None:
        self._prev_grey = None
        self._prev_out = None
        self.cut_detector.reset()

    def _small_grey(self, content: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
        """Grey input at the flow resolution, and full-resolution pixels per flow pixel in x and y."""
        grey = cv2.cvtColor(content, cv2.COLOR_RGB2GRAY)
        h, w = grey.shape
        k = self.flow_long_side / max(h, w)
        if k >= 1:
            return grey, (1.0, 1.0)
        size = (max(8, round(w * k)), max(8, round(h * k)))
        return cv2.resize(grey, size, interpolation=cv2.INTER_AREA), (w / size[0], h / size[1])

    def _flow(self, source: np.ndarray, target: np.ndarray) -> np.ndarray:
        return dis_flow(self._dis, source, target)

    def _restart(self, grey: np.ndarray, stylized: np.ndarray) -> np.ndarray:
        self._prev_grey, self._prev_out = grey, stylized.copy()
        self.last_weight = None
        return stylized

    def process(self, content: np.ndarray, stylized: np.ndarray) -> np.ndarray:
        _check(content, stylized)
        grey, scale = self._small_grey(content)
        cut = self.cut_detector.is_cut(grey)
        if self._prev_out is None or self._prev_out.shape != stylized.shape or self._prev_grey is None:
            return self._restart(grey, stylized)
        if cut:
            self.cuts += 1
            return self._restart(grey, stylized)

        # Warping flow current → previous, and the reverse for the consistency check.
        to_prev = self._flow(grey, self._prev_grey)
        to_cur = self._flow(self._prev_grey, grey)
        geometric = flow_validity(to_prev, to_cur, pixel_scale=max(scale), round_trip_tolerance=self.round_trip_tolerance)
        # Brightness constancy as well: where the warped previous input does not look like the current
        # input, the warped previous output cannot be right either. The mean difference is taken out so
        # a global exposure change does not fail every pixel.
        residual = cv2.subtract(backward_warp(self._prev_grey, to_prev), grey, dtype=cv2.CV_16S)
        residual = cv2.absdiff(residual, float(residual.mean())).astype(np.float32)
        valid = geometric & (residual <= self.max_grey_residual)
        if self.residual_window > 1:
            # And the mean over a small window: a disoccluded pixel whose grey level matches the
            # occluder's by chance passes the per-pixel test; its neighbourhood as a whole does not.
            valid &= cv2.blur(residual, (self.residual_window, self.residual_window)) <= self.max_grey_residual
        self.last_valid_fraction = float(valid.mean())
        if self.last_valid_fraction < self.min_valid_fraction:
            self.cuts += 1
            return self._restart(grey, stylized)

        # Blur 3×3 so the weight ramps over ~2 px instead of making a seam, then multiply by the mask
        # again (here and after upscaling, nearest): a failed pixel keeps weight exactly 0.
        mask = valid.view(np.uint8)
        if self._margin is not None:
            mask = with_occlusion_margin(mask, self._margin, self._speck)
        weight = cv2.multiply(cv2.blur(mask.astype(np.float32), (3, 3)), mask, dtype=cv2.CV_32F)
        h, w = stylized.shape[:2]
        if weight.shape != (h, w):
            weight = cv2.resize(weight, (w, h), interpolation=cv2.INTER_LINEAR)
            keep = cv2.resize(mask, (w, h), interpolation=cv2.INTER_NEAREST)
            flow = cv2.resize(to_prev, (w, h), interpolation=cv2.INTER_LINEAR)
            if scale[0] == scale[1]:  # the usual case: scale and add the pixel grid in one pass
                coords = cv2.scaleAdd(flow, scale[0], pixel_grid(h, w))
            else:
                coords = cv2.add(flow * np.array(scale, np.float32), pixel_grid(h, w))
        else:
            keep = mask
            coords = cv2.add(to_prev, pixel_grid(h, w))
        # Content that just entered the frame has no history: decided at full resolution, exactly. The
        # mask (0/1) and the inside test (0/255) meet in one AND, and the weight takes both and the
        # strength in one multiplication.
        keep = cv2.bitwise_and(keep, cv2.inRange(coords, (0.0, 0.0), (w - 1.0, h - 1.0)))
        weight = cv2.multiply(weight, keep, scale=self.strength, dtype=cv2.CV_32F)
        warped = cv2.remap(self._prev_out, coords, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        out = cv2.blendLinear(warped, stylized, weight, 1.0 - weight)
        self._prev_grey, self._prev_out = grey, out
        self.last_weight = weight
        return out


def make_smoother(mode: str, strength: float = 0.8) -> Smoother:
    """A fresh smoother: ``mode`` is "off", "blend", "flow" or "flow-hq" (finer flow, slower; see
    FLOW_HQ); ``strength`` in [0, 1] is the weight of the (warped) previous output where it is trusted
    (the flow smoother caps it at 0.9)."""
    if mode == "off":
        return NoSmoothing()
    if mode == "blend":
        return BlendSmoother(strength)
    if mode == "flow":
        return FlowSmoother(strength)
    if mode == "flow-hq":
        return FlowSmoother(strength, **FLOW_HQ)
    raise ValueError(f"unknown smoothing mode {mode!r}; choose one of {', '.join(MODES)}")
