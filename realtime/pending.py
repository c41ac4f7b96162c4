"""A batch of frames in ONNX Runtime (``Stylizer.submit``): the runtime's completion callback, waiting
for it, the runtime's error as one line, and the stylized frames once the stylizer has finished them.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Sequence

import numpy as np

from .errors import ModelError

if TYPE_CHECKING:
    from .stylizer import Stylizer


class PendingFrames:
    """A batch in the runtime (``Stylizer.submit``). ``result()`` waits for it, then converts and returns
    the stylized frames; ``done()`` says whether the network has finished."""

    def __init__(self, stylizer: "Stylizer", count: int, height: int, width: int, feeds: dict[str, np.ndarray]) -> None:
        # dropped once the frames are out: the stylizer keeps each lane's last job, and a cycle would
        # keep a discarded stylizer's sessions alive until the cyclic collector runs
        self._stylizer: Stylizer | None = stylizer
        self._name = stylizer.path.name
        self._input: dict[str, np.ndarray] | None = feeds  # the runtime reads them while it runs: keep them alive until then
        self.count, self.height, self.width = count, height, width
        self._event = threading.Event()
        self._output: np.ndarray | None = None
        self._error = ""
        self._frames: list[np.ndarray] | None = None
        self.started = time.perf_counter()
        self.finished: float | None = None

    def _complete(self, outputs: Sequence[np.ndarray] | None, _user_data: object, error: str) -> None:
        # called on a runtime thread: record and signal, nothing else
        self.finished = time.perf_counter()
        if error:
            self._error = str(error)
        else:
            self._output = outputs[0] if outputs else None
        self._event.set()

    def done(self) -> bool:
        return self._event.is_set()

    def wait(self) -> None:
        self._event.wait()

    @property
    def model_seconds(self) -> float:
        """From submission to the network's end (the time one frame spends in its lane)."""
        return (self.finished or time.perf_counter()) - self.started

    def output(self) -> np.ndarray:
        """Wait for the network and return its raw output (a ModelError if the runtime failed)."""
        self._event.wait()
        self._input = None
        if self._error or self._output is None:
            text = self._error.strip().splitlines()[0] if self._error.strip() else "no output"
            raise ModelError(f"{self._name}: inference failed: {text[:300]}")
        return self._output

    def result(self) -> list[np.ndarray]:
        if self._frames is None:
            stylizer = self._stylizer
            assert stylizer is not None
            t0 = time.perf_counter()
            output = self.output()
            stylizer.times.seconds["inference_wait"] += time.perf_counter() - t0
            self._frames = stylizer._finish(self, output)
            self._output = self._stylizer = None
        return self._frames
