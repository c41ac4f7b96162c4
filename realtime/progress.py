"""A small progress bar on stderr: frames done, frames/s and ETA. No dependency.

On a terminal it redraws one line (carriage return) a few times a second; when stderr is a file or a
pipe it prints a plain line every few seconds, so logs stay readable.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


def _clock(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class Progress:
    """``p = Progress(total); p.update(n); p.close()``; ``enabled=False`` makes every call a no-op."""

    def __init__(self, total: int | None, *, label: str = "", stream: TextIO | None = None, enabled: bool = True,
                 width: int = 28) -> None:
        self.total = total if total and total > 0 else None
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.width = width
        self.done = 0
        self.start = time.perf_counter()
        self._last_draw = 0.0
        try:
            self._tty = bool(self.stream.isatty())
        except (AttributeError, ValueError):
            self._tty = False
        self._interval = 0.25 if self._tty else 5.0
        if not self._tty:
            self._last_draw = self.start  # logs: first line after one interval, not at frame 1
        self._drawn = False

    def rate(self) -> float:
        elapsed = time.perf_counter() - self.start
        return self.done / elapsed if elapsed > 0 else 0.0

    def line(self) -> str:
        fps = self.rate()
        head = f"{self.label} " if self.label else ""
        if self.total:
            frac = min(1.0, self.done / self.total)
            fill = int(round(frac * self.width))
            bar = "#" * fill + "-" * (self.width - fill)
            if self.done >= self.total:
                tail = f"took {_clock(time.perf_counter() - self.start)}"
            else:
                tail = f"ETA {_clock((self.total - self.done) / fps)}" if fps > 0 else "ETA --:--"
            return f"{head}[{bar}] {self.done}/{self.total} frames {fps:5.1f} fps {tail}"
        return f"{head}{self.done} frames {fps:5.1f} fps elapsed {_clock(time.perf_counter() - self.start)}"

    def update(self, n: int = 1) -> None:
        self.done += n
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self._last_draw >= self._interval:
            self._last_draw = now
            self._draw()

    def _draw(self) -> None:
        try:
            if self._tty:
                self.stream.write("\r" + self.line() + "\x1b[K")
            else:
                self.stream.write(self.line() + "\n")
            self.stream.flush()
            self._drawn = True
        except (OSError, ValueError):
            self.enabled = False  # a closed stderr must not break the run

    def clear(self) -> None:
        """Remove the bar line on a terminal (before printing a warning or an error)."""
        if self.enabled and self._tty and self._drawn:
            try:
                self.stream.write("\r\x1b[K")
                self.stream.flush()
            except (OSError, ValueError):
                pass

    def abandon(self) -> None:
        """Stop drawing without a final line (the run failed; its error message follows)."""
        self.clear()
        self.enabled = False

    def close(self) -> None:
        if not self.enabled:
            return
        self._draw()
        if self._tty:
            try:
                self.stream.write("\n")
                self.stream.flush()
            except (OSError, ValueError):
                pass
        self.enabled = False
