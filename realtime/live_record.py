"""Recording what ``restyle-cam`` shows to a video file, started and stopped at will, with the writer
of ``restyle-video`` (``sinks.FileSink``, imported when a recording starts).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from .frames import Frame

InfoFn = Callable[[str], None]


class Recorder:
    """Start/stop recordings of the shown frames with ``restyle-video``'s ``FileSink``.

    Frames keep their capture timestamps (microseconds), shifted so that each recording starts at 0:
    the file plays in real time at the capture clock, whatever the display rate was.
    """

    def __init__(self, rate_hint: float | None, info: InfoFn, background: bool = False) -> None:
        self.rate_hint = rate_hint
        self.info = info
        self.background = background  # the network runs on the CPU: encode below its priority
        self.sink = None
        self.path: Path | None = None
        self.started = 0.0
        self.saved: list[str] = []

    @property
    def active(self) -> bool:
        return self.sink is not None

    def start(self, path: Path, overwrite: bool = False) -> None:
        from fractions import Fraction

        from .sinks import EncoderSettings, FileSink

        rate = Fraction(self.rate_hint).limit_denominator(1001) if self.rate_hint else None
        # the default x264 preset (superfast): the encoder shares the CPU with the model; CRF 20 keeps it good
        settings = EncoderSettings(crf=20)
        self.sink = FileSink(path, settings=settings, rate=rate, offset=None, overwrite=overwrite, queue_size=4,
                             warn=lambda m: self.info(f"warning: {m}"), background=self.background)
        self.path = path
        self.started = time.monotonic()

    def write(self, frame: Frame) -> None:
        if self.sink is not None:
            self.sink.write(frame)

    def stop(self) -> Path | None:
        """Finalize the file (flush, trailer, rename into place); returns its path, None if empty."""
        sink, path = self.sink, self.path
        self.sink = None
        if sink is None:
            return None
        sink.close()
        if sink.frames_written == 0:
            self.info(f"recording {path} had no frames; nothing written")
            return None
        self.saved.append(str(path))
        self.info(f"recording saved: {path} ({sink.frames_written} frames)")
        return path

    def abort(self) -> None:
        sink, self.sink = self.sink, None
        if sink is not None:
            sink.abort()
