"""Live frame sources for ``restyle-cam``: a camera (OpenCV) or a video file standing in for one.

A live source must never make the viewer wait for old pictures. ``LatestFrame`` runs the reader in its
own thread and keeps a one-slot buffer: a new frame replaces one the consumer has not taken yet
(drop-oldest), and every such replacement is counted. However slow the model, the frame it gets next is
at most one frame interval old, so what is shown lags the camera by the model's time plus at most one
interval, and the lag never grows.

Frames carry their capture time as ``pts`` in a microsecond time base (``MICROS``) counted from the
moment the source started, so a recording made from them plays back in real time.

A video file standing in for a camera (``ClipReader``) is paced at its own frame rate on the wall clock,
as a real camera would be: it does not wait for a slow consumer, it produces frames that get dropped.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator, Protocol

import numpy as np

from .errors import InputError
from .frames import Frame
from .workers import lower_thread_priority

MICROS = Fraction(1, 1_000_000)

# cap.read() failing this many times in a row means the camera is gone (unplugged, driver reset)
_MAX_READ_FAILURES = 5


class Reader(Protocol):
    """A blocking source of RGB frames at its own pace."""

    description: str
    rate: float | None  # frames per second, when known
    frame_size: tuple[int, int]  # (width, height) it delivers, before LatestFrame resizes

    def read(self) -> np.ndarray | None:
        """The next H×W×3 uint8 RGB frame, blocking until the source produces it; None when it ended."""
        ...

    def interrupt(self) -> None:
        """Make a blocked or future ``read()`` return None soon (called from another thread)."""
        ...

    def close(self) -> None:
        """Release the device or file (called by the thread that reads)."""
        ...


def parse_size(text: str) -> tuple[int, int]:
    """``"640x480"`` → (640, 480); ValueError with a short reason otherwise."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", text)
    if not m:
        raise ValueError(f"not a size: {text!r} (use WIDTHxHEIGHT, e.g. 640x480)")
    w, h = int(m.group(1)), int(m.group(2))
    if not (16 <= w <= 7680 and 16 <= h <= 4320):
        raise ValueError(f"size {w}x{h} is out of range (16x16 to 7680x4320)")
    return w, h


# ------------------------------------------------------------------------------------------- cameras


@contextlib.contextmanager
def _quiet_opencv() -> Iterator[None]:
    """Silence OpenCV's (and its bundled FFmpeg's) multi-line warnings while probing cameras: the user
    gets our one-line message instead. Only used before any worker thread runs, so redirecting fd 2
    cannot swallow another thread's output."""
    import cv2

    old_level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    saved = None
    try:
        sys.stderr.flush()
        saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
    except OSError:
        saved = None
    try:
        yield
    finally:
        if saved is not None:
            os.dup2(saved, 2)
            os.close(saved)
        cv2.utils.logging.setLogLevel(old_level)


def _backend() -> int:
    import cv2

    # V4L2 directly on Linux: CAP_ANY also tries FFmpeg and Orbbec backends, which are slow to fail and
    # print their own errors for an index that does not exist.
    return cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY


def _candidate_indices(limit: int = 10) -> list[int]:
    if sys.platform.startswith("linux"):
        found = sorted(int(p.name[5:]) for p in Path("/dev").glob("video*") if p.name[5:].isdigit())
        return found[:limit]
    return list(range(limit))


def available_cameras(limit: int = 10) -> list[int]:
    """Camera indices that open (tried on the V4L2 nodes on Linux, 0..limit-1 elsewhere)."""
    import cv2

    found = []
    with _quiet_opencv():
        for i in _candidate_indices(limit):
            cap = cv2.VideoCapture(i, _backend())
            try:
                if cap.isOpened():
                    found.append(i)
            finally:
                cap.release()
    return found


def _cameras_text() -> str:
    found = available_cameras()
    if not found:
        return "no camera opens on this machine; use --camera FILE to stand in a video file"
    return "cameras that open: " + ", ".join(str(i) for i in found)


class CameraReader:
    """An OpenCV camera by index (``0``) or device path (``/dev/video2``)."""

    def __init__(self, spec: int | str, size: tuple[int, int] | None = None) -> None:
        import cv2

        self._cv2 = cv2
        self.description = f"camera {spec}"
        self._stop = threading.Event()
        with _quiet_opencv():
            cap = cv2.VideoCapture(spec, _backend())
            if not cap.isOpened():
                cap.release()
                cap = None
        if cap is None:
            raise InputError(f"camera {spec} cannot be opened; {_cameras_text()}")
        if size is not None:
            # a request: the driver picks the nearest mode it has; LatestFrame resizes to the exact size
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])
        ok, first = cap.read()
        if not ok or first is None:
            cap.release()
            raise InputError(f"camera {spec} opened but delivers no frames (in use by another program?)")
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.rate: float | None = float(fps) if fps and 1 <= fps <= 240 else None
        self.frame_size: tuple[int, int] = (first.shape[1], first.shape[0])
        self._cap = cap
        self._first: np.ndarray | None = first

    def read(self) -> np.ndarray | None:
        if self._first is not None:
            bgr, self._first = self._first, None
            return self._cv2.cvtColor(bgr, self._cv2.COLOR_BGR2RGB)
        failures = 0
        while not self._stop.is_set():
            ok, bgr = self._cap.read()
            if ok and bgr is not None:
                return self._cv2.cvtColor(bgr, self._cv2.COLOR_BGR2RGB)
            failures += 1
            if failures >= _MAX_READ_FAILURES:
                return None
            time.sleep(0.05)
        return None

    def interrupt(self) -> None:
        self._stop.set()

    def close(self) -> None:
        self._cap.release()


class ClipReader:
    """A video file standing in for a camera: decoded with the project's ``FileSource`` and released at
    the file's own frame times on the wall clock; ``loop`` starts over at the end."""

    def __init__(self, path: str | os.PathLike[str], loop: bool = False, clock: Callable[[], float] = time.monotonic) -> None:
        from .sources import FileSource

        self._source_cls = FileSource
        self.path = Path(path)
        self.loop = loop
        self.description = f"{self.path.name}" + (" (looped)" if loop else "")
        self._clock = clock
        self._stop = threading.Event()
        self._source = FileSource(self.path, queue_size=4)  # fails here (one line) if it is not a video
        rate = self._source.info.rate
        self.rate: float | None = float(rate) if rate and rate > 0 else None
        self._interval = 1.0 / (self.rate or 25.0)
        self.frame_size: tuple[int, int] = (self._source.info.width, self._source.info.height)
        self._iter: Iterator[Frame] | None = None
        self._pass_start = 0.0  # clip time (s) of this pass's first frame, on the continuous timeline
        self._offset = 0.0  # continuous-timeline time of the start of the current pass
        self._first_time: float | None = None
        self._last_t = -self._interval
        self._frames_this_pass = 0
        self._anchor: float | None = None  # wall time of timeline 0

    def _next(self) -> Frame | None:
        while not self._stop.is_set():
            if self._iter is None:
                self._source.__enter__()
                self._iter = iter(self._source)
            try:
                return next(self._iter)
            except StopIteration:
                pass
            if not self.loop or self._frames_this_pass == 0:
                return None
            # start over; the timeline continues one frame interval after the last frame
            self._source.close()
            self._source = self._source_cls(self.path, queue_size=4)
            self._iter = None
            self._offset = self._last_t + self._interval
            self._first_time = None
            self._frames_this_pass = 0
        return None

    def read(self) -> np.ndarray | None:
        frame = self._next()
        if frame is None:
            return None
        t_clip = frame.time if frame.time is not None else self._frames_this_pass * self._interval
        if self._first_time is None:
            self._first_time = t_clip
        t = self._offset + (t_clip - self._first_time)
        self._frames_this_pass += 1
        self._last_t = t
        now = self._clock()
        if self._anchor is None:
            self._anchor = now - t
        delay = self._anchor + t - now
        if delay > 0:
            self._stop.wait(delay)
        elif delay < -0.5:
            # decoding fell far behind (a loaded machine): re-anchor instead of bursting to catch up
            self._anchor -= delay
        return None if self._stop.is_set() else frame.image

    def interrupt(self) -> None:
        self._stop.set()

    def close(self) -> None:
        self._source.close()


def open_reader(camera: str, size: tuple[int, int] | None = None, loop: bool = False) -> Reader:
    """``camera`` is an index (``"0"``), a device path (``/dev/video2``) or a video file."""
    text = camera.strip()
    if text.isdigit():
        return CameraReader(int(text), size)
    path = Path(text).expanduser()
    if text.startswith("/dev/"):
        if not path.exists():
            raise InputError(f"camera {text} does not exist; {_cameras_text()}")
        return CameraReader(str(path), size)
    if not path.exists():
        raise InputError(f"--camera {text}: no such camera index, device or video file; {_cameras_text()}")
    return ClipReader(path, loop=loop)


# ------------------------------------------------------------------------------------- drop-oldest


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class LatestFrame:
    """Capture in a thread, keep only the newest frame: ``with LatestFrame(reader) as cam: cam.get()``.

    ``get()`` returns the newest frame not yet taken (waiting up to ``timeout``), None on timeout or at
    the end (then ``ended`` says why). A capture error is re-raised by ``get()`` in the caller's thread.
    Counters: ``captured``, ``taken``, ``dropped`` (frames replaced before anyone took them).
    ``size`` resizes every frame to (width, height); ``mirror`` flips it left-right (selfie view).
    """

    def __init__(
        self,
        reader: Reader,
        *,
        size: tuple[int, int] | None = None,
        mirror: bool = False,
        clock: Callable[[], float] = time.monotonic,
        background: bool = False,
    ) -> None:
        self.reader = reader
        # capture (and a clip's decode threads, which start from it) below the network's priority when
        # the network runs on the CPU: workers.lower_thread_priority
        self.background = background
        self.size = size
        self.mirror = mirror
        self.clock = clock
        self.origin = clock()  # wall time of pts 0
        self.captured = 0
        self.taken = 0
        self.dropped = 0
        # newest captured index minus the index handed out, worst case: 0 is the drop-oldest promise
        self.staleness_max = 0
        self.ended: str | None = None
        self._slot: Frame | _Failed | None = None  # the one-frame buffer
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def rate(self) -> float | None:
        return self.reader.rate

    def __enter__(self) -> "LatestFrame":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        if self._thread is None:
            self.origin = self.clock()
            self._thread = threading.Thread(target=self._run, name="capture", daemon=True)
            self._thread.start()

    def capture_time(self, frame: Frame) -> float:
        """The clock time at which ``frame`` was captured."""
        return self.origin + float((frame.pts or 0) * MICROS)

    def get(self, timeout: float = 0.1) -> Frame | None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._slot is None and self.ended is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)
            item, self._slot = self._slot, None
            if isinstance(item, Frame):
                self.staleness_max = max(self.staleness_max, self.captured - 1 - item.index)
        if isinstance(item, _Failed):
            self.ended = self.ended or "capture failed"
            raise item.error
        if item is not None:
            self.taken += 1
        return item

    def close(self) -> None:
        """Stop capturing and wait for the thread (it releases the device itself)."""
        self._stop.set()
        self.reader.interrupt()
        t = self._thread
        if t is not None:
            t.join()

    def _process(self, image: np.ndarray) -> np.ndarray:
        import cv2

        if self.size is not None and (image.shape[1], image.shape[0]) != self.size:
            shrink = self.size[0] < image.shape[1]
            image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        if self.mirror:
            image = cv2.flip(image, 1)
        return image

    def _run(self) -> None:
        reason = f"{self.reader.description} ended"
        try:
            if self.background:
                lower_thread_priority()
            while not self._stop.is_set():
                image = self.reader.read()
                if image is None:
                    if isinstance(self.reader, CameraReader) and not self._stop.is_set():
                        reason = f"{self.reader.description} stopped delivering frames (unplugged?)"
                    break
                t = self.clock()
                image = self._process(image)
                pts = max(0, int(round((t - self.origin) * 1_000_000)))
                frame = Frame(index=self.captured, image=image, pts=pts, time_base=MICROS)
                with self._cond:
                    if isinstance(self._slot, Frame):
                        self.dropped += 1  # drop-oldest: the unseen frame is replaced by a newer one
                    self._slot = frame
                    self.captured += 1
                    self._cond.notify_all()
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer's thread by get()
            with self._cond:
                self._slot = _Failed(exc)
                self._cond.notify_all()
            reason = "capture failed"
        finally:
            try:
                self.reader.close()
            except Exception:  # noqa: BLE001 - releasing a vanished device must not hide why it ended
                pass
            with self._cond:
                if self._stop.is_set() and self.ended is None:
                    reason = "stopped"
                self.ended = self.ended or reason
                self._cond.notify_all()
