"""Frame sources. ``FileSource`` decodes a video file with PyAV in a worker thread.

The file source never drops a frame: its queue is bounded and the decoder blocks when the consumer is
slower. It opens the file in its constructor, so a missing, unreadable or video-less file fails before
the first frame. Each frame keeps the decoder's pts and time base, and is turned upright according to
the stream's rotation metadata (phone videos). Decode errors are counted and reported as warnings:
a corrupt or truncated file yields what decodes.

Times are the presentation times a player shows: ``start`` / ``duration`` count from the file's origin
(its first timestamp, ``timestamps.file_origin``), and frames of a reordering decoder whose container
stored decode times get their true times back (``timestamps.PresentationOrder``).
"""

from __future__ import annotations

import math
import os
import queue
import threading
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from .workers import drain_and_join, lower_thread_priority
from .errors import InputError
from .frames import Frame
from .timestamps import PresentationOrder, declared_end, declares_durations, file_origin

WarnFn = Callable[[str], None]


@dataclass(frozen=True)
class VideoInfo:
    """What we know about the input before decoding it."""

    path: Path
    width: int  # upright (after rotation), in pixels
    height: int
    coded_width: int
    coded_height: int
    rotation: int  # counter-clockwise degrees the display applies (0, 90, 180, 270)
    time_base: Fraction
    rate: Fraction | None  # average frame rate, when known
    frames: int | None  # estimated frame count of the whole stream, when known
    duration: float | None  # seconds of video from the origin
    start_time: float  # seconds of the stream's first timestamp
    codec: str
    pix_fmt: str | None
    sample_aspect_ratio: Fraction | None
    video_index: int
    indexed_frames: int | None = None  # frame count from the container's index (exact when present)
    audio_indices: tuple[int, ...] = field(default_factory=tuple)
    origin: float = 0.0  # the file's time that players show as 0 (seconds; timestamps.file_origin)
    # where the header says the video ends (seconds, file timeline), for containers that declare it
    declared_end: float | None = None
    reorders: bool = False  # the decoder reorders frames (B-frames)

    @property
    def display_size(self) -> tuple[int, int]:
        """(width, height) a player shows, non-square pixels included."""
        sar = self.sample_aspect_ratio
        if sar and sar > 0 and sar != 1:
            if self.rotation % 180:
                return self.width, int(round(self.height / sar))
            return int(round(self.width * sar)), self.height
        return self.width, self.height


class _MissedStart(Exception):
    """A seek landed after the requested start: decode from the beginning instead."""


class _End:
    """End-of-stream marker; carries the worker's exception when it failed."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


def _rotation_of(stream: object, first_frame_rotation: int | None = None) -> int:
    """Rotation in counter-clockwise degrees, snapped to a quarter turn."""
    deg: float | None = first_frame_rotation
    if deg is None:
        try:
            deg = float(stream.metadata.get("rotate", 0))  # type: ignore[attr-defined]
            deg = -deg  # the legacy tag is clockwise
        except (TypeError, ValueError):
            deg = 0.0
    return int(round(deg / 90.0)) % 4 * 90


def upright(image: np.ndarray, rotation: int) -> np.ndarray:
    """Rotate pixels so that the picture is upright (``rotation`` as in ``VideoFrame.rotation``)."""
    k = (rotation // 90) % 4
    if k == 0:
        return image
    return np.ascontiguousarray(np.rot90(image, k=k))


def open_input(path: str | os.PathLike[str]):  # -> av.container.InputContainer
    """Open a media file with PyAV, mapping every failure to a one-line InputError."""
    import av

    p = Path(path)
    if not p.exists():
        raise InputError(f"input {p} does not exist")
    if p.is_dir():
        raise InputError(f"input {p} is a folder, not a video file")
    if not os.access(p, os.R_OK):
        raise InputError(f"input {p} is not readable")
    try:
        return av.open(str(p), mode="r")
    except av.error.FFmpegError as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise InputError(f"{p} is not a video file, or it is damaged ({reason})") from exc
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot open {p}: {exc}") from exc


def _pick_video_stream(container):  # noqa: ANN001 - PyAV types
    for s in container.streams.video:
        # cover art in music files is a one-picture "video" stream; it is not a video
        if s.disposition & s.disposition.__class__.attached_pic:
            continue
        if s.codec_context is None or not s.codec_context.width:
            continue
        return s
    return None


def probe(path: str | os.PathLike[str]) -> VideoInfo:
    """Read the container header (no decoding beyond what the demuxer already did)."""
    container = open_input(path)
    try:
        return _info(Path(path), container)
    finally:
        container.close()


def _info(path: Path, container) -> VideoInfo:  # noqa: ANN001
    vs = _pick_video_stream(container)
    if vs is None:
        raise InputError(f"{path} has no video stream")
    cc = vs.codec_context
    rotation = _rotation_from_side_data(vs)
    w, h = cc.width, cc.height
    if rotation % 180:
        w, h = h, w
    tb = vs.time_base or Fraction(1, 90000)
    rate = vs.average_rate or vs.guessed_rate or vs.base_rate
    audio = list(container.streams.audio)
    origin = file_origin([vs, *audio])
    end = declared_end(vs)
    duration = None
    if end is not None:
        duration = max(0.0, end - origin)
    elif container.duration:
        # the container's length; Matroska's counts from 0, not from the first timestamp
        duration = container.duration / 1_000_000
        if container.format.name.startswith("matroska"):
            duration = max(0.0, duration - origin)
    frames = vs.frames or None
    if not frames and duration and rate:
        frames = int(round(duration * float(rate)))
    start = float(vs.start_time * tb) if vs.start_time is not None else 0.0
    return VideoInfo(
        path=path,
        width=w,
        height=h,
        coded_width=cc.width,
        coded_height=cc.height,
        rotation=rotation,
        time_base=Fraction(tb),
        rate=Fraction(rate) if rate else None,
        frames=frames,
        duration=duration,
        start_time=start,
        codec=cc.name,
        pix_fmt=cc.pix_fmt,
        sample_aspect_ratio=vs.sample_aspect_ratio,
        video_index=vs.index,
        indexed_frames=vs.frames or None,
        audio_indices=tuple(a.index for a in audio),
        origin=origin,
        declared_end=end if declares_durations(container) else None,
        reorders=bool(cc.has_b_frames),
    )


def _rotation_from_side_data(vs) -> int:  # noqa: ANN001
    """The stream's display-matrix rotation. PyAV exposes it on decoded frames (``frame.rotation``);
    at probe time we fall back to the legacy ``rotate`` tag. The source re-checks on the first frame."""
    return _rotation_of(vs)


class FileSource:
    """Iterate the frames of a video file, decoded in a thread: ``with FileSource(p) as src: for f in src``.

    ``start`` / ``duration`` (seconds from the file's origin) select a part: the source seeks near
    ``start`` and drops the frames before it. Frames are RGB uint8, upright, with the file's own
    timestamps. ``warnings`` lists what went wrong while decoding; ``video_end`` is where the decoded
    video ends (seconds, file timeline: the last frame's time plus its duration).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        start: float = 0.0,
        duration: float | None = None,
        queue_size: int = 8,
        warn: WarnFn | None = None,
        decoder_threads: int = 0,
        background: bool = False,
    ) -> None:
        self.path = Path(path)
        self.start = max(0.0, float(start))
        self.end = None if duration is None else self.start + float(duration)
        self.container = open_input(self.path)
        try:
            self.info = _info(self.path, self.container)
            self.stream = self.container.streams[self.info.video_index]
            if self.info.duration is not None and self.start >= self.info.duration + 1e-3 and self.start > 0:
                raise InputError(f"--start {self.start:g}s is past the end of {self.path.name} ({self.info.duration:.2f}s)")
            cc = self.stream.codec_context
            cc.thread_type = "AUTO"  # frame + slice threads: decoding keeps pace with the network
            if decoder_threads:
                cc.thread_count = decoder_threads
        except BaseException:
            self.container.close()
            raise
        self.background = background  # decode at a lower priority than the network (workers.lower_thread_priority)
        self.warnings: list[str] = []
        self.decode_errors = 0
        self.truncated = False
        self.frames_out = 0
        self.video_end: float | None = None
        self._warn = warn
        self._queue: queue.Queue[Frame | _End] = queue.Queue(maxsize=max(1, queue_size))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._done = False

    # ------------------------------------------------------------------ context and iteration

    def __enter__(self) -> "FileSource":
        self._start_thread()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start_thread(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="decode", daemon=True)
            self._thread.start()

    def __iter__(self) -> Iterator[Frame]:
        self._start_thread()
        while True:
            item = self._get()
            if isinstance(item, _End):
                self._done = True
                if item.error is not None:
                    raise item.error
                return
            yield item

    def _get(self) -> Frame | _End:
        # A timeout loop instead of a bare get(): keeps the main thread responsive to Ctrl+C and
        # notices a worker that died without managing to post its end marker.
        while True:
            try:
                return self._queue.get(timeout=0.2)
            except queue.Empty:
                if self._thread is not None and not self._thread.is_alive() and self._queue.empty():
                    return _End(RuntimeError("decoder thread ended without an end-of-stream marker"))

    def estimated_frames(self) -> int | None:
        """Frames this source will likely yield (for progress and ETA); None when unknown."""
        info = self.info
        if info.frames is None or not info.rate:
            return info.frames if self.start == 0 and self.end is None else None
        total = info.frames
        begin = int(round((self.start) * float(info.rate)))
        if self.end is not None:
            total = min(total, int(math.ceil(self.end * float(info.rate))))
        return max(0, total - begin)

    def close(self) -> None:
        """Stop the worker (also mid-stream) and release the file."""
        self._stop.set()
        drain_and_join(self._thread, self._queue)
        try:
            self.container.close()
        except Exception:  # noqa: BLE001 - closing a half-read file must not mask the real error
            pass

    # ------------------------------------------------------------------ worker

    def _put(self, item: Frame | _End) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _note(self, message: str) -> None:
        self.warnings.append(message)
        if self._warn is not None:
            self._warn(message)

    def _run(self) -> None:
        import av

        error: BaseException | None = None
        try:
            if self.background:
                lower_thread_priority()
            self._decode_all(av)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            error = exc
        finally:
            if self._stop.is_set():
                try:
                    self._queue.put_nowait(_End(error))
                except queue.Full:
                    pass
            else:
                self._put(_End(error))

    def _decode_all(self, av) -> None:  # noqa: ANN001
        if self.start > 0:
            vs = self.stream
            target = int((self.info.origin + self.start) / Fraction(vs.time_base))
            try:
                self.container.seek(target, stream=vs, backward=True, any_frame=False)
                self._decode(av, seeked=True)
                return
            except (av.error.FFmpegError, _MissedStart):
                # not seekable, or the seek landed past the start (files without an index, such as
                # MPEG-TS, seek by byte position and may find no key frame before it): decode from
                # the beginning and drop the frames before the start
                self.container.close()
                self.container = open_input(self.path)
                self.stream = self.container.streams[self.info.video_index]
        self._decode(av, seeked=False)

    def _decode(self, av, seeked: bool) -> None:  # noqa: ANN001
        """Decode from where the container stands; after a seek, raise _MissedStart when the first frame
        lies after the start (nothing has been queued then)."""
        vs = self.stream
        tb = Fraction(vs.time_base)
        eps = float(tb) / 2
        stamps = FrameStamps(tb, self.info.rate, fallback_rotation=self.info.rotation)
        state = {"check_start": seeked}
        order: PresentationOrder = PresentationOrder(self.info.reorders)
        last_packet_pts: int | None = None

        def emit_all(timed: list) -> bool:  # list[tuple[VideoFrame, int | None]]
            return all(self._emit(vf, pts, tb, eps, state, stamps) for vf, pts in timed)

        try:
            for packet in self.container.demux(vs):
                if self._stop.is_set():
                    return
                if order.active and packet.pts is not None:
                    # presentation times that go back in decode order are real ones: no repair needed
                    if last_packet_pts is not None and packet.pts < last_packet_pts:
                        if not emit_all(order.stop_reordering()):
                            return
                    last_packet_pts = packet.pts
                try:
                    frames = packet.decode()
                except av.error.FFmpegError as exc:
                    # one damaged packet: skip it, keep decoding (the decoder resyncs on the next one)
                    self._decode_error(exc)
                    continue
                for vf in frames:
                    if not emit_all(order.push(vf, vf.pts)):
                        return
        except av.error.FFmpegError as exc:
            if seeked and state["check_start"]:
                raise _MissedStart from exc
            # a demuxer error mid-file: the file is truncated or damaged here; keep what we have
            self.truncated = True
            self._note(f"{self.path.name}: stopped reading at frame {self.frames_out}: {_short(exc)} (file truncated or damaged?)")
            try:
                for vf in vs.codec_context.decode(None):
                    if not emit_all(order.push(vf, vf.pts)):
                        return
            except av.error.FFmpegError:
                pass
        emit_all(order.flush())
        if state["check_start"]:
            raise _MissedStart  # the seek found nothing to decode

    def _decode_error(self, exc: BaseException) -> None:
        self.decode_errors += 1
        if self.decode_errors <= 3:
            self._note(f"{self.path.name}: skipped undecodable data after frame {self.frames_out}: {_short(exc)}")
        elif self.decode_errors == 4:
            self._note(f"{self.path.name}: more decode errors follow; counting them quietly")

    def _emit(self, vf, pts: int | None, tb: Fraction, eps: float, state: dict, stamps: "FrameStamps") -> bool:  # noqa: ANN001
        """Convert and queue one decoded frame (presentation time ``pts``); False when the requested
        range has ended."""
        pts = stamps.pts(pts)
        t_file = float(pts * tb)
        frame_end = t_file + (float(vf.duration * tb) if vf.duration else float(stamps.step or 0) * float(tb))
        self.video_end = frame_end if self.video_end is None else max(self.video_end, frame_end)
        t = t_file - self.info.origin
        if state["check_start"]:
            if t > self.start + eps:
                raise _MissedStart
            state["check_start"] = False
        if t + eps < self.start:
            return True
        if self.end is not None and t + eps >= self.end:
            return False
        frame = Frame(index=self.frames_out, image=stamps.image(vf), pts=pts, time_base=tb)
        if self._put(frame):
            self.frames_out += 1
            return True
        return False


class FrameStamps:
    """Timestamps and upright pixels of one stream's decoded frames, in presentation order.

    ``pts`` takes each frame's presentation time as the caller has it (the frame's own, or the one a
    ``timestamps.PresentationOrder`` gave it back); a frame without one (some AVI/raw streams) continues
    from the last one at the nominal rate. The rotation is the first frame's display matrix unless
    ``rotation`` is given (frames decoded from packets outside their container carry no display matrix:
    the cluster workers are told it). Shared by ``FileSource`` and the cluster workers
    (realtime.cluster), so both see the same frames.
    """

    def __init__(self, time_base: Fraction, rate: Fraction | None, rotation: int | None = None,
                 fallback_rotation: int = 0) -> None:
        self.time_base = Fraction(time_base)
        self.rate = rate
        self.rotation = rotation
        self.fallback_rotation = fallback_rotation
        self._state: dict = {"last_pts": None, "step": None}

    @property
    def step(self) -> int | None:
        """The last positive interval between two frames (``time_base`` units), once there is one."""
        return self._state["step"]

    def pts(self, pts: int | None) -> int:
        """A frame's pts in ``time_base`` (guessed when None); advances the state."""
        state = self._state
        if pts is None:
            pts = _guess_next_pts(state, self.time_base, self.rate)
        elif state["last_pts"] is not None:
            step = pts - state["last_pts"]
            if step > 0:
                state["step"] = step
        state["last_pts"] = pts
        return int(pts)

    def image(self, vf) -> np.ndarray:  # noqa: ANN001 - av.VideoFrame
        """The frame as upright H×W×3 uint8 RGB."""
        if self.rotation is None:
            self.rotation = frame_rotation(vf, self.fallback_rotation)
        return upright(vf.to_ndarray(format="rgb24"), self.rotation)


def frame_rotation(vf, fallback: int = 0) -> int:  # noqa: ANN001 - av.VideoFrame
    """A decoded frame's display rotation (counter-clockwise degrees, a quarter turn); ``fallback`` with
    an older PyAV that does not expose it."""
    try:
        return _rotation_of(None, int(round(vf.rotation)))
    except Exception:  # noqa: BLE001 - older PyAV without frame.rotation
        return fallback


def _guess_next_pts(state: dict, tb: Fraction, rate: Fraction | None) -> int:
    last = state["last_pts"]
    if last is None:
        return 0
    step = state["step"]
    if step is None:
        step = max(1, int(round(1 / (float(rate) * tb)))) if rate else 1
    return last + step


def _short(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]
