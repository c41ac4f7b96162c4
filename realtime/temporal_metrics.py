"""Temporal-stability metrics, defined as in DESIGN.md ("How we measure") so numbers stay comparable.

Warping error (Lai et al., "Learning Blind Video Temporal Consistency", ECCV 2018): frames as RGB floats
in [0, 1]; optical flow on the *input* frames; the output at t−1 is backward-warped onto t; pixels that
fail the forward–backward check |f + b(x+f)|² > 0.01(|f|² + |b(x+f)|²) + 0.5 or lie on a motion boundary
are left out; the squared error is averaged over the remaining pixels and the three channels; the
result is the mean over all consecutive pairs.

Choices the definition leaves open, fixed here:

- Flow is OpenCV DIS with the MEDIUM preset at full resolution (``method="dis"``), or Farnebäck
  (``method="farneback"``, slower). Lai et al. used FlowNet2; any flow method biases the number a
  little, so compare only figures made with the same method. The flow smoother computes its own flow
  with DIS ULTRAFAST at 320 px, so the metric's flow is a different, more accurate estimate of the same
  motion rather than the smoother grading its own homework.
- Pixels whose warp source x + f lies outside the frame are also left out (content that just entered
  the frame has no previous frame to agree with; the reference code zero-pads there instead).
- A pair with no valid pixel at all (e.g. across a scene cut) is skipped, not counted as 0.

Ghosting: DESIGN.md asks for the content distance between smoothed and per-frame output. The VGG16
relu3_3 feature distance needs the trainer's loss network; :func:`ghosting` takes any feature
function for that, and without one measures the mean absolute pixel difference in [0, 1] (named
"ghost L1" in reports, never "content distance"). Per-frame values are available so the frames right
after fast motion or a cut can be looked at, not just the mean.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, Sequence

import cv2
import numpy as np

from realtime.temporal import backward_warp, dis_flow, flow_validity

__all__ = [
    "PairFlow",
    "pair_flow",
    "pair_flows",
    "warping_error_pair",
    "pair_warping_error",
    "warping_error",
    "warping_error_with_flows",
    "warping_errors_per_pair",
    "ghosting",
    "ghosting_per_frame",
]


@dataclass(frozen=True)
class PairFlow:
    """The motion from input frame t−1 to t, as needed to compare outputs t−1 and t.

    ``flow`` (H×W×2 float32, pixels) takes a pixel x of frame t to x + flow(x) in frame t−1;
    ``valid`` (H×W bool) is where that correspondence passed the occlusion, motion-boundary and
    inside-the-frame tests."""

    flow: np.ndarray
    valid: np.ndarray

    @property
    def valid_fraction(self) -> float:
        return float(self.valid.mean())


def _grey(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return image
    if image.dtype != np.uint8:
        image = np.clip(np.asarray(image, np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def _to_unit_float(image: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] → float32 [0, 1]; float input is taken to be in [0, 1] already."""
    if image.dtype == np.uint8:
        return image.astype(np.float32) * np.float32(1.0 / 255.0)
    return np.asarray(image, np.float32)


@functools.lru_cache(maxsize=1)
def _dis() -> "cv2.DISOpticalFlow":
    # One instance for every pair: calc() with no initial flow keeps no state between calls.
    return cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)


def _flow(a: np.ndarray, b: np.ndarray, method: str) -> np.ndarray:
    if method == "dis":
        return dis_flow(_dis(), a, b)  # padded where DIS would crash on a thin frame
    if method == "farneback":
        return cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 4, 15, 3, 5, 1.2, 0)
    raise ValueError(f"unknown flow method {method!r}; use 'dis' or 'farneback'")


def pair_flow(prev_input: np.ndarray, cur_input: np.ndarray, method: str = "dis") -> PairFlow:
    """Flow and validity mask for one pair of consecutive *input* frames (uint8 RGB or grey), at
    their full resolution."""
    if prev_input.shape[:2] != cur_input.shape[:2]:
        raise ValueError(f"frame sizes differ: {prev_input.shape[:2]} vs {cur_input.shape[:2]}")
    g0, g1 = _grey(prev_input), _grey(cur_input)
    to_prev = _flow(g1, g0, method)  # the warping flow f: t → t−1
    to_cur = _flow(g0, g1, method)  # b: t−1 → t, for the round trip
    return PairFlow(to_prev, flow_validity(to_prev, to_cur))


def pair_flows(inputs: Sequence[np.ndarray], method: str = "dis") -> list[PairFlow]:
    """:func:`pair_flow` for every consecutive pair; compute once and score many outputs with it."""
    return [pair_flow(inputs[t - 1], inputs[t], method) for t in range(1, len(inputs))]


def warping_error_pair(prev_output: np.ndarray, cur_output: np.ndarray, motion: PairFlow) -> float:
    """Mean squared error (RGB in [0, 1], over valid pixels and channels) between output t and output
    t−1 warped onto t. NaN when no pixel is valid."""
    if not motion.valid.any():
        return float("nan")
    warped = backward_warp(_to_unit_float(prev_output), motion.flow)
    diff = warped - _to_unit_float(cur_output)
    return float(np.mean(np.square(diff[motion.valid])))


def pair_warping_error(prev_input: np.ndarray, cur_input: np.ndarray, prev_output: np.ndarray,
                       cur_output: np.ndarray, method: str = "dis") -> float:
    """Warping error of one pair of consecutive frames: flow from the inputs, error of the outputs."""
    return warping_error_pair(prev_output, cur_output, pair_flow(prev_input, cur_input, method))


def warping_errors_per_pair(flows: Sequence[PairFlow], outputs: Sequence[np.ndarray]) -> list[float]:
    """Warping error of each consecutive pair of ``outputs`` (len(outputs) − 1 values)."""
    if len(flows) != len(outputs) - 1:
        raise ValueError(f"{len(flows)} flows for {len(outputs)} outputs; need one per pair")
    return [warping_error_pair(outputs[t], outputs[t + 1], flows[t]) for t in range(len(flows))]


def warping_error_with_flows(flows: Sequence[PairFlow], outputs: Sequence[np.ndarray]) -> float:
    """Mean over pairs of :func:`warping_error_pair`, skipping pairs with no valid pixel."""
    errors = [e for e in warping_errors_per_pair(flows, outputs) if not np.isnan(e)]
    return float(np.mean(errors)) if errors else float("nan")


def warping_error(inputs: Sequence[np.ndarray], outputs: Sequence[np.ndarray], method: str = "dis") -> float:
    """Warping error of an output video given the input video it was made from (same length and
    size, H×W×3 uint8 RGB or float RGB in [0, 1]). Pass ``outputs=inputs`` for the input's own."""
    if len(inputs) != len(outputs):
        raise ValueError(f"{len(inputs)} input frames but {len(outputs)} output frames")
    if len(inputs) < 2:
        raise ValueError("need at least two frames")
    return warping_error_with_flows(pair_flows(inputs, method), outputs)


FeatureFn = Callable[[np.ndarray], np.ndarray]


def ghosting_per_frame(smoothed: Sequence[np.ndarray], perframe: Sequence[np.ndarray],
                       features: FeatureFn | None = None) -> list[float]:
    """Distance of each smoothed frame to the per-frame (unsmoothed) output of the same input frame.

    With ``features`` (e.g. VGG16 relu3_3 of an RGB [0, 1] image), the mean squared feature difference;
    without, the mean absolute pixel difference of RGB in [0, 1]. Smoothing must lower the warping error
    without raising this much: a trail of old content shows up here as a large value."""
    if len(smoothed) != len(perframe):
        raise ValueError(f"{len(smoothed)} smoothed frames but {len(perframe)} per-frame outputs")
    out = []
    for s, p in zip(smoothed, perframe):
        a, b = _to_unit_float(s), _to_unit_float(p)
        if features is None:
            out.append(float(np.mean(np.abs(a - b))))
        else:
            out.append(float(np.mean(np.square(features(a) - features(b)))))
    return out


def ghosting(smoothed: Sequence[np.ndarray], perframe: Sequence[np.ndarray],
             features: FeatureFn | None = None) -> float:
    """Mean over frames of :func:`ghosting_per_frame`."""
    return float(np.mean(ghosting_per_frame(smoothed, perframe, features)))
