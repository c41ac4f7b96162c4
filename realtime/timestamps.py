"""Timing facts about an input file, read the way players read them.

- ``file_origin``: the time a player shows as 0. Broadcast recordings (MPEG-TS) and cuts start at large
  timestamps (3600 s); outputs and ``--start`` / ``--duration`` are measured from this origin.
- ``declared_end``: where the container's header says a stream ends, for containers that write it down
  (MP4/MOV, Matroska, AVI). A stream that decodes to an earlier end has lost its tail.
- ``PresentationOrder``: presentation times for decoders that reorder frames (B-frames) when the
  container stored each packet's decode time as its presentation time too, as some phone and screen
  recorders do. Decoded frames then come out in presentation order carrying a permutation of the true
  times; FFmpeg repairs such streams with a reorder buffer, and so do we.
"""

from __future__ import annotations

import heapq
import re
from collections import deque
from typing import Generic, Iterable, TypeVar

# Containers whose header states each stream's length (not an estimate from bit rate or from the last
# packets read): only against these can a stream be found to end early.
_DECLARING_FORMATS = ("mov", "mp4", "matroska", "webm", "avi")

# H.264 and HEVC reorder at most 16 frames (the largest decoded picture buffer); a B-frame run is
# shorter than that in every encoder we know of.
REORDER_WINDOW = 16


def stream_start(stream) -> float | None:  # noqa: ANN001 - av.stream.Stream
    """The stream's first timestamp in seconds, when the container knows it."""
    if stream.start_time is None or not stream.time_base:
        return None
    return float(stream.start_time * stream.time_base)


def file_origin(streams: Iterable) -> float:  # noqa: ANN001 - av streams
    """What a player shows as time 0: the earliest start of the given streams. Negative starts (an
    audio encoder's priming samples before a video at 0) count as 0: the file's times stay as they are."""
    starts = [s for s in (stream_start(st) for st in streams) if s is not None]
    return max(0.0, min(starts)) if starts else 0.0


def declares_durations(container) -> bool:  # noqa: ANN001 - av.container.InputContainer
    """Whether the container writes each stream's length in its header."""
    names = container.format.name.split(",")
    return any(n in _DECLARING_FORMATS for n in names)


_CLOCK = re.compile(r"^(\d+):(\d\d):(\d\d(?:\.\d+)?)$")


def declared_end(stream) -> float | None:  # noqa: ANN001 - av.stream.Stream
    """Where the header says the stream ends (seconds, in the file's own timeline), when it says so:
    MP4/MOV and AVI store a duration per stream; FFmpeg's Matroska muxer a DURATION tag (the end
    timestamp, "HH:MM:SS.nnnnnnnnn")."""
    if stream.duration and stream.time_base:
        return float(((stream.start_time or 0) + stream.duration) * stream.time_base)
    for key, value in stream.metadata.items():
        if key.upper().startswith("DURATION"):
            m = _CLOCK.match(value.strip())
            if m:
                return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))
    return None


T = TypeVar("T")


class PresentationOrder(Generic[T]):
    """Re-pairs decoded frames with presentation times: each frame leaving the window gets the smallest
    timestamp among the frames in the window. Frames leave a decoder in presentation order, so this
    gives every frame its true time when the container stored decode times (which are the true times,
    out of order); for a correct stream it changes nothing (its times already ascend).

    ``active`` is False when the window is not needed (the decoder does not reorder); frames then pass
    straight through. ``stop_reordering()`` flushes the window and passes the rest through: the caller
    calls it once the packets show real presentation times (they go back and forth in decode order).
    """

    def __init__(self, active: bool, window: int = REORDER_WINDOW) -> None:
        self.active = active
        self.window = window
        self._frames: deque[T] = deque()
        self._times: list[int] = []

    def push(self, item: T, pts: int | None) -> list[tuple[T, int | None]]:
        """Add a decoded frame; returns the frames that leave, with their presentation times."""
        if not self.active or pts is None:
            # a frame without a timestamp cannot join the sort: everything before it leaves first
            return self.flush() + [(item, pts)]
        self._frames.append(item)
        heapq.heappush(self._times, pts)
        if len(self._frames) > self.window:
            return [(self._frames.popleft(), heapq.heappop(self._times))]
        return []

    def flush(self) -> list[tuple[T, int | None]]:
        """Every frame still in the window, in order, with the remaining times in ascending order."""
        out: list[tuple[T, int | None]] = []
        while self._frames:
            out.append((self._frames.popleft(), heapq.heappop(self._times)))
        return out

    def stop_reordering(self) -> list[tuple[T, int | None]]:
        self.active = False
        return self.flush()
