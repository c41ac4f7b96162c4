"""The overlay of ``restyle-cam``: the running figures it shows (``Meter``, also summed up when the
session ends) and the text drawn over the picture (``draw_overlay``).
"""

from __future__ import annotations

import collections
from typing import Sequence

import numpy as np


def draw_overlay(bgr: np.ndarray, lines: Sequence[str], in_place: bool = False) -> np.ndarray:
    """Text lines on a translucent dark box in the top-left corner (drawn on a copy, or on ``bgr``
    itself with ``in_place``)."""
    import cv2

    out = bgr if in_place else bgr.copy()
    if not lines:
        return out
    scale = max(0.4, min(0.7, out.shape[1] / 1100))
    thick = 1
    (_, th), _ = cv2.getTextSize("Ag", cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    step = th + 8
    width = max(cv2.getTextSize(t, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)[0][0] for t in lines) + 16
    height = step * len(lines) + 8
    x1, y1 = min(out.shape[1], width), min(out.shape[0], height)
    # darken instead of a solid box: the picture stays visible under the numbers
    out[:y1, :x1] = (out[:y1, :x1] * 0.35).astype(np.uint8)
    for i, text in enumerate(lines):
        y = 4 + step * (i + 1) - 4
        cv2.putText(out, text, (8, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA)
    return out


class Meter:
    """Running figures for the overlay (last second) and the summary (whole run, bounded memory)."""

    def __init__(self) -> None:
        self.shown_times: collections.deque[float] = collections.deque(maxlen=240)
        self.model_ms: collections.deque[float] = collections.deque(maxlen=5000)
        self.latency_ms: collections.deque[float] = collections.deque(maxlen=5000)
        self.age_ms_max = 0.0
        self.latency_ms_max = 0.0
        self.count = 0
        self.first: float | None = None
        self.last: float | None = None

    def add(self, now: float, model_ms: float, latency_ms: float, age_ms: float) -> None:
        self.shown_times.append(now)
        self.count += 1
        self.first = now if self.first is None else self.first
        self.last = now
        self.model_ms.append(model_ms)
        self.latency_ms.append(latency_ms)
        self.age_ms_max = max(self.age_ms_max, age_ms)
        self.latency_ms_max = max(self.latency_ms_max, latency_ms)

    def fps(self, now: float) -> float:
        recent = [t for t in self.shown_times if now - t <= 1.0]
        if len(recent) < 2:
            return 0.0
        return (len(recent) - 1) / max(1e-6, recent[-1] - recent[0])

    @staticmethod
    def recent(values: collections.deque[float], n: int = 10) -> float:
        tail = list(values)[-n:]
        return sum(tail) / len(tail) if tail else 0.0
