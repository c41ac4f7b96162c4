"""The cluster's worker: a Ray actor that holds one loaded stylizer and restyles segments with it.

It is a plain class here; ``run.py`` makes it a Ray actor (with the GPU or the cores it gets), so this
module imports nothing of Ray. The model travels as bytes through Ray's object store (no shared file
system is needed) and is written to the worker's scratch folder once; it stays loaded across segments.
"""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path

from .segments import Segment
from .work import SegmentResult, SegmentSettings, restyle_segment


class SegmentWorker:
    """``restyle(segment, settings)`` -> SegmentResult, with a stylizer loaded once."""

    def __init__(self, model: bytes | list, model_name: str, device: str, threads: int | None, lanes: int | None,
                 style: str | None = None, precision: str = "fp32") -> None:
        from ..stylizer import Stylizer

        if isinstance(model, list):  # [ObjectRef] from the driver (run.py)
            import ray

            model = ray.get(model[0])

        self._scratch = tempfile.TemporaryDirectory(prefix="restyle-worker-")
        path = Path(self._scratch.name) / Path(model_name).name
        path.write_bytes(model)
        self.stylizer = Stylizer(path, device=device, threads=threads, lanes=lanes, style=style,  # type: ignore[arg-type]
                                 precision=precision)
        self.name = f"{socket.gethostname()}:{os.getpid()}"

    def restyle(self, segment: Segment, settings: SegmentSettings) -> SegmentResult:
        result = restyle_segment(segment, self.stylizer, settings)
        result.worker = self.name
        return result

    def describe(self) -> str:
        return f"{self.name} {self.stylizer.describe()}"

    def pid(self) -> int:
        return os.getpid()
