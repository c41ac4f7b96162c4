"""Frame sinks. ``FileSink`` encodes frames with PyAV in a worker thread and copies the audio.

- It opens on the first frame and locks the frame size; frames are encoded with the timestamps they
  carry (shifted by the trimmed start), so variable-frame-rate input keeps its timing.
- 4:2:0 and 4:2:2 need even sizes: an odd side is padded by one replicated row/column (with a warning;
  ``pix_fmt="yuv444p"`` keeps odd sizes exact).
- The other streams of ``audio_from`` are carried over by ``remux.StreamCopier``: every audio stream
  (remuxed when the output container takes its codec, otherwise re-encoded to AAC), subtitles and
  attachments where the container holds them, and a warning for each stream left out. Their packets
  are interleaved with video as it is written, so memory stays bounded however long the file is.
- The file is written under a temporary name in the output folder and renamed into place only after
  the trailer is written; on error or Ctrl+C (``__exit__`` with an exception, or ``abort()``) the
  temporary file is deleted and nothing appears under the output name.
"""

from __future__ import annotations

import os
import queue
import threading
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Callable

import numpy as np

from .outputs import discard, partial_file, publish
from .workers import cpu_count, drain_and_join, lower_thread_priority
from .errors import OutputError, RealtimeError
from .frames import Frame
from .remux import AudioReport, StreamCopier

WarnFn = Callable[[str], None]

# Output containers we write, by file suffix. Explicit rather than guessed, so an unknown suffix is a
# clear error before any work instead of an FFmpeg failure after the first frame.
CONTAINERS: dict[str, str] = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".avi": "avi"}


def container_format(path: str | os.PathLike[str]) -> str:
    """The FFmpeg muxer for an output file name; OutputError for suffixes we do not write."""
    suffix = Path(path).suffix.lower()
    if suffix not in CONTAINERS:
        known = ", ".join(sorted(CONTAINERS))
        raise OutputError(f"cannot write {suffix or 'files without a suffix'}: the output must end in one of {known}")
    return CONTAINERS[suffix]


_X26X_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo")
# --crf: the encoders (by name prefix: libvpx covers libvpx-vp9) and their ranges. x264 clamps a CRF
# above 51 without a word, so the range is checked here for all of them.
_CRF_RANGES = {"libx264": (0, 51), "libx265": (0, 51), "libvpx": (0, 63), "libaom": (0, 63), "libsvtav1": (0, 63)}
_CRF_ENCODERS = tuple(_CRF_RANGES)


@dataclass(frozen=True)
class EncoderSettings:
    """Video encoder choices (``--codec``, ``--crf``, ``--preset``, ``--pix-fmt``)."""

    codec: str = "libx264"
    pix_fmt: str = "yuv420p"
    crf: float | None = None
    preset: str | None = None
    threads: int = 0  # 0: the encoder's own choice

    def validate(self) -> None:
        """Open the encoder once on a small frame: a bad codec, pixel format, preset or CRF is reported
        before any work (an encoder only checks its options when it opens)."""
        import av

        try:
            codec = av.Codec(self.codec, "w")
        except Exception as exc:  # noqa: BLE001 - UnknownCodecError and friends
            raise OutputError(f"unknown video encoder {self.codec!r}") from exc
        if codec.type != "video":
            raise OutputError(f"{self.codec!r} is not a video encoder")
        try:
            av.VideoFormat(self.pix_fmt)
        except (ValueError, TypeError) as exc:
            raise OutputError(f"unknown pixel format {self.pix_fmt!r}") from exc
        if self.codec in ("libx264", "libx265") and self.preset is not None and self.preset not in _X26X_PRESETS:
            # checked here because x264 prints its own complaint to stderr before FFmpeg can catch it
            raise OutputError(f"unknown {self.codec} preset {self.preset!r}; choose one of {', '.join(_X26X_PRESETS)}")
        if self.crf is not None and not self.codec.startswith(_CRF_ENCODERS):
            raise OutputError(f"--crf applies to {', '.join(_CRF_ENCODERS)}, not {self.codec}")
        if self.crf is not None:
            lo, hi = next(r for name, r in _CRF_RANGES.items() if self.codec.startswith(name))
            if not lo <= self.crf <= hi:
                raise OutputError(f"--crf {self.crf:g} is outside {self.codec}'s range {lo}..{hi} (lower is better)")
        try:
            ctx = av.CodecContext.create(codec)
            ctx.width, ctx.height = 64, 64
            ctx.pix_fmt = self.pix_fmt
            ctx.time_base = Fraction(1, 25)
            ctx.framerate = Fraction(25)
            ctx.options = self.options()
            ctx.open(strict=True)
        except Exception as exc:  # noqa: BLE001 - FFmpeg reports bad options as a generic open failure
            raise OutputError(
                f"the encoder {self.codec} refuses these settings (pix fmt {self.pix_fmt}, options {self.options() or 'none'}): {_short(exc)}"
            ) from exc

    def options(self) -> dict[str, str]:
        opts: dict[str, str] = {}
        if self.crf is not None:
            opts["crf"] = f"{self.crf:g}"
        if self.preset is not None:
            opts["preset"] = self.preset
        elif self.codec in ("libx264", "libx265"):
            # x264's own default ("medium") shares the two cores of a small machine with the network:
            # on diver.mov at 640×360 with the fast tier, "veryfast" took restyle-video from 19.6 to
            # 24.1 frames/s, and "superfast" costs a third less again (6.3 against 9.6 ms a frame on
            # one thread); see tools/bench.py. --preset overrides it.
            opts["preset"] = DEFAULT_X26X_PRESET
        return opts


DEFAULT_X26X_PRESET = "superfast"


def beside_cpu_network(settings: EncoderSettings, cores: int) -> EncoderSettings:
    """The encoder settings to use while the network runs on the CPU: x264/x265 on one thread per four
    cores unless the settings name a thread count. The network already keeps every core busy, so
    more encoder threads only preempt its workers; on 2 cores the single-threaded encoder at a lower
    priority (workers.lower_thread_priority) is what made 20 frames/s reachable at 640x360."""
    if settings.threads or settings.codec not in ("libx264", "libx265"):
        return settings
    return replace(settings, threads=max(1, cores // 4))


class _End:
    pass


def _short(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]


class ConstantRate:
    """Puts frames on the ticks of a constant frame rate, for containers that store no timestamps (AVI):
    a frame goes to the tick nearest its time; of frames that share a tick, the nearest is kept; a tick
    no frame falls on repeats the frame before it, as a player would still show that one. Frames are
    held one step (``place`` returns what is decided), so that a tick can pick the nearer of two."""

    def __init__(self, rate: Fraction) -> None:
        self.rate = Fraction(rate)
        self.repeated = 0
        self.dropped = 0
        self._held: tuple[object, int, float] | None = None  # (frame, tick, distance from the tick)

    def place(self, frame: object, t: float | None) -> list[tuple[object, int]]:
        """Add a frame shown from ``t`` seconds (None: one tick after the previous one); returns the
        (frame, tick) pairs now decided, in tick order."""
        held = self._held
        if t is None:
            x = float(held[1] + 1) if held is not None else 0.0
        else:
            x = max(0.0, t * float(self.rate))
        tick, distance = int(round(x)), abs(x - round(x))
        if held is not None and tick <= held[1]:
            self.dropped += 1
            if tick == held[1] and distance < held[2]:
                self._held = (frame, tick, distance)
            return []
        out: list[tuple[object, int]] = []
        if held is not None:
            out = [(held[0], k) for k in range(held[1], tick)]
            self.repeated += len(out) - 1
        self._held = (frame, tick, distance)
        return out

    def flush(self) -> list[tuple[object, int]]:
        held, self._held = self._held, None
        return [] if held is None else [(held[0], held[1])]


def _opens_with(settings: "EncoderSettings", width: int, height: int, time_base: Fraction, rate: Fraction) -> bool:
    """Whether the encoder opens with this time base (tried on a throwaway context)."""
    import av

    try:
        ctx = av.CodecContext.create(settings.codec, "w")
        ctx.width, ctx.height = width, height
        ctx.pix_fmt = settings.pix_fmt
        ctx.time_base = time_base
        ctx.framerate = rate
        ctx.options = settings.options()
        ctx.open()
        return True
    except Exception:  # noqa: BLE001
        return False


class FileSink:
    """Write frames to a video file: ``with FileSink(path, ...) as sink: sink.write(frame)``.

    Frames carry their own pts and time base; ``offset`` (seconds) is subtracted from every timestamp
    (video and the copied streams) so that the output starts at zero; None means "the first frame's
    time". ``streams_from`` names the input whose other streams are carried over (``remux``), from
    ``copy_start`` to ``copy_end`` (seconds, that file's timeline); ``video_index`` is the input stream
    the frames come from, and ``copy_audio=False`` leaves its audio out.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        settings: EncoderSettings = EncoderSettings(),
        rate: Fraction | None = None,
        streams_from: str | os.PathLike[str] | None = None,
        copy_start: float = 0.0,
        copy_end: float | None = None,
        video_index: int | None = None,
        copy_audio: bool = True,
        offset: float | None = 0.0,
        sample_aspect_ratio: Fraction | None = None,
        overwrite: bool = False,
        queue_size: int = 8,
        warn: WarnFn | None = None,
        background: bool = False,
    ) -> None:
        self.path = Path(path)
        self.format = container_format(self.path)
        # beside a network on the CPU: encode at a lower priority and on few threads
        self.background = background
        self.settings = beside_cpu_network(settings, cpu_count()) if background else settings
        self.rate = rate
        self.streams_from = Path(streams_from) if streams_from else None
        self.copy_start, self.copy_end, self.offset = copy_start, copy_end, offset
        self.video_index, self.copy_audio = video_index, copy_audio
        self.sar = sample_aspect_ratio
        self.overwrite = overwrite
        self._warn = warn
        self._queue: queue.Queue[Frame | _End] = queue.Queue(maxsize=max(1, queue_size))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self.tmp_path: Path | None = None
        self.size: tuple[int, int] | None = None  # (width, height) locked on the first frame
        self.coded_size: tuple[int, int] | None = None
        self.frames_written = 0
        self.audio: list[AudioReport] = []
        self._container = None
        self._closed = False

    # ------------------------------------------------------------------ public

    def __enter__(self) -> "FileSink":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:  # noqa: ANN001
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def write(self, frame: Frame) -> None:
        """Queue one frame for encoding (blocks while the encoder is behind; raises its error)."""
        if self._closed:
            raise RuntimeError("write() after close()")
        if self._thread is None:
            self._open(frame)
        h, w = frame.image.shape[:2]
        if (w, h) != self.size:
            raise RealtimeError(f"frame {frame.index} is {w}x{h}, but this output was opened at {self.size[0]}x{self.size[1]}")
        while True:
            if self._error is not None or not self._thread.is_alive():
                self._raise_worker_error()
            try:
                self._queue.put(frame, timeout=0.1)
                return
            except queue.Full:
                continue

    def close(self) -> None:
        """Flush the encoder, finish the audio, write the trailer and move the file into place."""
        if self._closed:
            return
        self._closed = True
        if self._thread is None or self._thread.ident is None:
            # no frame was written, or Ctrl+C came while the first one opened the file and before the
            # encoder thread ran: nothing to finish (the caller reports it); a temporary file goes
            self._discard()
            return
        try:
            while self._thread.is_alive():
                try:
                    self._queue.put(_End(), timeout=0.1)
                    break
                except queue.Full:
                    continue
            while self._thread.is_alive():
                self._thread.join(timeout=0.1)
            self._raise_worker_error()
            self._publish()
        except BaseException:
            self.abort()  # also on Ctrl+C while flushing: wait for the worker, then delete the file
            raise

    def abort(self) -> None:
        """Stop without finishing; the temporary file is removed and the output name left untouched."""
        self._closed = True
        self._stop.set()
        drain_and_join(self._thread, self._queue)
        self._discard()

    # ------------------------------------------------------------------ opening

    def _open(self, frame: Frame) -> None:
        import av

        h, w = frame.image.shape[:2]
        self.size = (w, h)
        fmt = av.VideoFormat(self.settings.pix_fmt)
        cw, ch = w, h
        # subsampled chroma (4:2:0, 4:2:2) needs even sides; 4:4:4 and RGB keep any size, even 1 pixel
        if w % 2 and fmt.chroma_width(64) < 64:
            cw = w + 1
        if h % 2 and fmt.chroma_height(64) < 64:
            ch = h + 1
        if (cw, ch) != (w, h) and self._warn:
            self._warn(
                f"{w}x{h} has an odd side, which {self.settings.pix_fmt} cannot store: padded to {cw}x{ch} "
                "by repeating the edge (use --pix-fmt yuv444p to keep the exact size)"
            )
        self.coded_size = (cw, ch)
        fd, self.tmp_path = partial_file(self.path)
        os.close(fd)  # FFmpeg opens it by name
        try:
            # AVI has no timestamps to shift: FFmpeg's shift of every stream past AAC's negative
            # priming time would only delay the video by a tick against the audio
            options = {"avoid_negative_ts": "disabled"} if self.format == "avi" else None
            out = av.open(str(self.tmp_path), mode="w", format=self.format, container_options=options)
            self._container = out
            rate = self.rate if self.rate and self.rate > 0 else Fraction(25)
            rate = Fraction(rate).limit_denominator(100000)
            try:
                vs = out.add_stream(self.settings.codec, rate=rate, options=self.settings.options())
            except Exception as exc:  # noqa: BLE001 - PyAV raises several types for an unknown codec
                raise OutputError(f"cannot use video codec {self.settings.codec!r}: {_short(exc)}") from exc
            vs.width, vs.height = cw, ch
            try:
                vs.pix_fmt = self.settings.pix_fmt
            except (ValueError, av.error.FFmpegError) as exc:
                raise OutputError(f"unknown pixel format {self.settings.pix_fmt!r}") from exc
            tb = Fraction(frame.time_base or Fraction(1, 90000))
            self._ticks: ConstantRate | None = None
            if self.format == "avi":
                # AVI stores no timestamps, only one frame per tick of a constant rate, and no reordering
                tb = 1 / rate
                vs.codec_context.max_b_frames = 0
                self._ticks = ConstantRate(rate)
            elif not _opens_with(self.settings, cw, ch, tb, rate):
                # e.g. MPEG-4 part 2 takes at most 16-bit time bases (phone video uses 1/90000)
                tb = Fraction(1, 1000)
                if self._warn:
                    self._warn(f"{self.settings.codec} cannot use the input's time base; timestamps rounded to 1 ms")
            # Encode in the input's own time base: timestamps are carried over exactly, not resampled to
            # a constant rate (variable-frame-rate phone video keeps its timing).
            vs.time_base = tb
            vs.codec_context.time_base = tb
            if self.settings.threads:
                vs.codec_context.thread_count = self.settings.threads
            if not av.VideoFormat(self.settings.pix_fmt).is_rgb:
                # PyAV converts RGB to YUV with the BT.601 matrix in limited range; say so in the stream,
                # or players guess BT.709 for HD sizes and shift the colours
                cc = vs.codec_context
                cc.colorspace, cc.color_primaries, cc.color_trc, cc.color_range = 6, 6, 6, 1
            if self.sar and self.sar > 0 and self.sar != 1:
                vs.sample_aspect_ratio = self.sar
            self._video = vs
            self._tb = Fraction(tb)
            if self.offset is None:
                # trimmed output: start at the first kept frame exactly; audio moves by the same amount
                self.offset = float((frame.pts or 0) * self._tb)
            self._shift = int(round(self.offset / self._tb))
            self._last_pts: int | None = None
            self._audio = None
            if self.streams_from is not None:
                self._audio = StreamCopier(self.streams_from, out, self.format, self.copy_start, self.copy_end, self.offset,
                                           self._warn, video_index=self.video_index, audio=self.copy_audio)
                self.audio = self._audio.reports
        except BaseException:
            self._discard()
            raise
        self._thread = threading.Thread(target=self._run, name="encode", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ worker

    def _run(self) -> None:
        out = self._container
        finished = False
        try:
            if self.background:
                lower_thread_priority()
            while True:
                if self._stop.is_set():
                    return
                try:
                    item = self._queue.get(timeout=0.1)
                except queue.Empty:
                    continue
                if isinstance(item, _End):
                    break
                self._encode(out, item)
            if self._ticks is not None:
                for image, tick in self._ticks.flush():
                    self._encode_image(out, image, tick)
                self._say_ticks()
            for p in self._video.encode(None):
                out.mux(p)
            if self._audio is not None:
                self._audio.finish(out)
            finished = True
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            self._error = exc
        finally:
            if self._audio is not None:
                self._audio.close()
            try:
                out.close()
            except BaseException as exc:  # noqa: BLE001
                if finished and self._error is None:
                    self._error = exc
            self._container = None

    def _encode(self, out, frame: Frame) -> None:  # noqa: ANN001
        img = frame.image
        w, h = self.size
        cw, ch = self.coded_size
        if (cw, ch) != (w, h):
            img = np.pad(img, ((0, ch - h), (0, cw - w), (0, 0)), mode="edge")
        if self._ticks is not None:
            t = frame.time - self.offset if frame.time is not None else None
            for image, tick in self._ticks.place(img, t):
                self._encode_image(out, image, tick)
            return
        if frame.time_base is not None and Fraction(frame.time_base) != self._tb:
            pts = int(round((frame.pts or 0) * Fraction(frame.time_base) / self._tb))
        else:
            pts = frame.pts if frame.pts is not None else (self._last_pts + 1 if self._last_pts is not None else 0)
        pts -= self._shift
        # encoders and muxers need strictly increasing timestamps; damaged input can repeat one
        if self._last_pts is not None and pts <= self._last_pts:
            pts = self._last_pts + 1
        self._last_pts = pts
        self._encode_image(out, img, pts)

    def _encode_image(self, out, img: np.ndarray, pts: int) -> None:  # noqa: ANN001
        import av

        vf = av.VideoFrame.from_ndarray(img, format="rgb24")
        vf.pts = pts
        vf.time_base = self._tb
        for p in self._video.encode(vf):
            out.mux(p)
        self.frames_written += 1
        if self._audio is not None:
            self._audio.pump(out, float(pts * self._tb))

    def _say_ticks(self) -> None:
        ticks = self._ticks
        if self._warn is not None and (ticks.repeated or ticks.dropped):
            self._warn(
                f"AVI holds a constant frame rate only: {ticks.repeated} frames repeated and {ticks.dropped} dropped to keep "
                f"the timing at {float(ticks.rate):.6g} frames/s (.mkv, .mp4 and .mov keep variable timing)"
            )

    # ------------------------------------------------------------------ finishing

    def _raise_worker_error(self) -> None:
        err = self._error
        if err is None:
            if self._thread is not None and not self._thread.is_alive() and not self._closed:
                raise RealtimeError("the encoder stopped unexpectedly")
            return
        import av

        if isinstance(err, RealtimeError):
            raise err
        if isinstance(err, av.error.FFmpegError):
            raise OutputError(f"encoding {self.path.name} failed: {_short(err)}") from err
        raise err

    def _publish(self) -> None:
        assert self.tmp_path is not None
        publish(self.tmp_path, self.path, self.overwrite)
        self.tmp_path = None

    def _discard(self) -> None:
        c = self._container
        if c is not None and (self._thread is None or not self._thread.is_alive()):
            try:
                c.close()
            except BaseException:  # noqa: BLE001
                pass
            self._container = None
        discard(self.tmp_path)
        self.tmp_path = None
