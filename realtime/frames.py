"""The frame record that travels from a source through the stylizer to a sink."""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction

import numpy as np


@dataclass(frozen=True, slots=True)
class Frame:
    """One video frame: its position in the stream, its timing, and its pixels (H×W×3 uint8 RGB).

    ``pts`` and ``time_base`` come from the decoder untouched so that variable-frame-rate video keeps
    its timing when it is encoded again. Live sources use a microsecond time base from their clock.
    """

    index: int
    image: np.ndarray
    pts: int | None = None
    time_base: Fraction | None = None

    @property
    def time(self) -> float | None:
        """Presentation time in seconds, when known."""
        if self.pts is None or self.time_base is None:
            return None
        return float(self.pts * self.time_base)

    def with_image(self, image: np.ndarray) -> "Frame":
        """The same frame (index and timing) carrying other pixels."""
        return replace(self, image=image)
