"""Restyle a video file: decode (thread) -> batch -> stylize -> post (colour, smoothing, scale, blend) ->
encode with audio (thread).

Everything that can be checked before work starts is checked first (paths, style, device, input), so a
bad invocation fails in a second and leaves nothing behind. The main thread runs the stateful part in
order; decoding and encoding overlap with inference in their own threads through bounded queues, and
on the CPU the runtime works on the next frames (its lanes, ``Stylizer.submit``) while the main thread
finishes the oldest.
"""

from __future__ import annotations

import collections
import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

import numpy as np

from .errors import InputError, Interrupted, OutputError, RealtimeError
from .frames import Frame
from .progress import Progress
from .providers import check_precision
from .sinks import AudioReport, EncoderSettings, FileSink, container_format
from .sources import FileSource, open_input

if TYPE_CHECKING:
    from .stylizer import PendingFrames

WarnFn = Callable[[str], None]


@dataclass
class RestyleOptions:
    """Everything ``restyle-video`` can be asked to do (the CLI fills this from its arguments)."""

    input: Path
    output: Path
    style: str | None = None  # name, path to .onnx, or None for the zoo default
    tier: str = "auto"  # auto (fast on CPU, full on CUDA), full or fast; a path to .onnx ignores it
    device: str = "auto"  # realtime.providers: auto, cpu, cuda[:N], tensorrt[:N]
    precision: str = "fp32"  # fp16: the model converted at load, on a GPU (refused on the CPU)
    batch: int = 1
    max_size: int | None = None  # long side at which to stylize; output keeps the input size
    # stroke size against the one the style was trained for (strokes.py): the frame is stylized at the
    # size that gives it, and scaled back up; None stylizes at full size. --max-size overrides it.
    stroke: float | None = 1.0
    strength: float = 1.0  # 1: fully stylized, 0: the input
    preserve_color: bool = False
    start: float = 0.0
    duration: float | None = None
    smooth: str = "off"
    smooth_strength: float = 0.8
    encoder: EncoderSettings = field(default_factory=EncoderSettings)
    overwrite: bool = False
    audio: bool = True
    threads: int | None = None  # ONNX Runtime intra-op threads (default: all cores)
    lanes: int | None = None  # CPU: batches run side by side (Stylizer.submit; default stylizer.default_lanes)
    queue_size: int = 8


@dataclass
class RestyleSummary:
    """What was done, for ``--json`` and the benchmark."""

    input: str
    output: str
    style: str
    model: str
    device: str
    provider: str
    device_note: str | None  # why "auto" runs on the CPU, when it asked for CUDA
    precision: str  # what ran: fp32, or fp16 where asked and on a GPU
    graph_io: bool  # pre/post inside the graph (realtime.graph_io)
    frames: int
    width: int
    height: int
    process_width: int
    process_height: int
    seconds: float
    fps: float  # frames / seconds, everything from opening the input to the renamed output
    fps_after_warmup: float  # the same without the one-off warm-up inference
    warmup_s: float
    audio: list[dict[str, object]]
    warnings: list[str]
    stages: dict[str, object]
    smooth: str

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file (also through links); False when that cannot be told."""
    try:
        if a.resolve() == b.resolve():
            return True
    except OSError:
        pass
    try:
        return b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_paths(input_path: Path, output_path: Path, overwrite: bool) -> None:
    """Refuse a run that cannot end well, before any work: input missing, output same as input, output
    taken, unknown output format, output folder missing or not writable."""
    if not input_path.exists():
        raise InputError(f"input {input_path} does not exist")
    if input_path.is_dir():
        raise InputError(f"input {input_path} is a folder, not a video file")
    if same_file(input_path, output_path):
        raise OutputError(f"output {output_path} is the input file; choose another name")
    container_format(output_path)
    if output_path.is_dir():
        raise OutputError(f"output {output_path} is a folder")
    if output_path.exists() or output_path.is_symlink():
        if not overwrite:
            raise OutputError(f"output {output_path} exists; use --overwrite to replace it")
    check_output_folder(output_path.parent)


def check_output_folder(folder: Path) -> None:
    """The folder exists, is a folder, and a file can really be created in it."""
    if not folder.exists():
        raise OutputError(f"output folder {folder} does not exist")
    if not folder.is_dir():
        raise OutputError(f"output folder {folder} is not a folder")
    # os.access() says yes to root and ignores read-only mounts of some kinds; a real file says the truth
    try:
        with tempfile.TemporaryFile(dir=folder, prefix=".restyle-probe-"):
            pass
    except OSError as exc:
        raise OutputError(f"output folder {folder} is not writable ({exc.strerror or exc})") from exc


def processing_size(width: int, height: int, max_size: int | None, short_side: int | None = None) -> tuple[int, int]:
    """The (width, height) at which to stylize: the frame size, or scaled down so the long side is
    ``max_size`` or else the short side is ``short_side`` (never enlarged)."""
    if max_size:
        scale = max_size / max(width, height)
    elif short_side:
        scale = short_side / min(width, height)
    else:
        return width, height
    if scale >= 1.0:
        return width, height
    return max(1, int(round(width * scale))), max(1, int(round(height * scale)))


def stroke_short_side_for(stylizer, max_size: int | None, stroke: float | None) -> int | None:  # noqa: ANN001
    """The short side to stylize at for ``stroke`` (strokes.py), unless ``max_size`` or full size rules."""
    from .strokes import stroke_short_side

    if max_size or stroke is None:
        return None
    return stroke_short_side(stylizer.info.metadata, stroke)


def preserve_colour(content: np.ndarray, stylized: np.ndarray) -> np.ndarray:
    """Luminance from the stylized frame, chroma from the input (Gatys et al. 2016, "colour preservation")."""
    import cv2

    y = cv2.cvtColor(stylized, cv2.COLOR_RGB2YCrCb)
    c = cv2.cvtColor(content, cv2.COLOR_RGB2YCrCb)
    c[..., 0] = y[..., 0]
    return cv2.cvtColor(c, cv2.COLOR_YCrCb2RGB)


def blend(original: np.ndarray, stylized: np.ndarray, strength: float) -> np.ndarray:
    """``strength`` of the stylized frame over the original (both uint8, same size)."""
    if strength >= 1.0:
        return stylized
    if strength <= 0.0:
        return original
    import cv2

    return cv2.addWeighted(stylized, float(strength), original, 1.0 - float(strength), 0.0)


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2

    h, w = image.shape[:2]
    if (w, h) == size:
        return image
    shrink = size[0] < w
    # INTER_AREA for shrinking avoids aliasing the network would turn into texture; bicubic to enlarge
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


def finish_frame(original: np.ndarray, content: np.ndarray, stylized: np.ndarray, *, preserve_color: bool,
                 smoother: object | None, strength: float) -> np.ndarray:
    """What follows the network for every frame, files and live alike: colour preservation and smoothing
    at the processing size (``content`` is the input at that size), then back to the original's size and
    blended with it at ``strength``."""
    out = stylized
    if preserve_color:
        out = preserve_colour(content, out)
    if smoother is not None:
        out = smoother.process(content, out)  # type: ignore[attr-defined]
    if out.shape[:2] != original.shape[:2]:
        from .strokes import upscale_with_detail

        # stylized smaller than the frame: scale up, with the frame's own edges added back
        out = upscale_with_detail(original, content, out)
    return blend(original, out, strength)


def batched(frames: Iterable[Frame], n: int) -> Iterator[list[Frame]]:
    batch: list[Frame] = []
    for f in frames:
        batch.append(f)
        if len(batch) >= n:
            yield batch
            batch = []
    if batch:
        yield batch


def smoother_for(mode: str, strength: float):  # noqa: ANN202 - realtime.temporal.Smoother or None
    """The smoother for a --smooth mode (None for "off"); a mode this build cannot run is a RealtimeError."""
    if mode == "off":
        return None  # "off" must work without importing the temporal module at all
    try:
        from .temporal import make_smoother
    except ImportError as exc:
        raise RealtimeError(f"--smooth {mode} is not available in this build ({exc})") from exc
    try:
        return make_smoother(mode, strength)
    except ValueError as exc:
        raise RealtimeError(f"--smooth {mode}: {exc}") from exc


@dataclass
class FrameWork:
    """What :func:`restyle_frames` did: frames written, the last one's time, the frame and processing
    sizes, the model's warm-up time, and where the loop waited (seconds)."""

    frames: int = 0
    last_time: float | None = None
    size: tuple[int, int] = (0, 0)
    proc: tuple[int, int] = (0, 0)
    warmup_s: float = 0.0
    waits: dict[str, float] = field(default_factory=lambda: {"decode_wait_s": 0.0, "encode_wait_s": 0.0, "post_s": 0.0})


def restyle_frames(
    frames: Iterable[Frame],
    stylizer,  # noqa: ANN001 - realtime.stylizer.Stylizer
    write: Callable[[Frame], None],
    *,
    batch: int = 1,
    max_size: int | None = None,
    stroke: float | None = None,
    preserve_color: bool = False,
    strength: float = 1.0,
    smoother: object | None = None,
    keep: Callable[[Frame], bool] | None = None,
    on_frame: Callable[[], None] | None = None,
) -> FrameWork:
    """Stylize ``frames`` in order and ``write`` each finished frame: the in-order part of a file run,
    shared by ``restyle_file`` and the cluster workers (realtime.cluster), which restyle a file in
    segments. Frames that ``keep`` refuses are stylized and smoothed but not written: the frames before a
    segment, which bring the smoother (and its cut detector) to the state a run from the start has there.

    Up to ``stylizer.lanes`` batches are in the network at once (Stylizer.submit): the oldest is
    collected and finished in order while the next ones run. The caller resets the smoother.

    Frames are stylized at ``max_size`` (long side) if given, else at the size ``stroke`` asks of the
    model's trained stroke scale (``stroke_short_side_for``; None: full size)."""
    work = FrameWork()
    waits = work.waits
    in_flight: collections.deque[tuple[list[Frame], list[np.ndarray], PendingFrames]] = collections.deque()

    def finish_oldest() -> None:
        done, contents, job = in_flight.popleft()
        for f, content, s in zip(done, contents, job.result()):
            t0 = time.perf_counter()
            s = finish_frame(f.image, content, s, preserve_color=preserve_color, smoother=smoother, strength=strength)
            if keep is not None and not keep(f):
                waits["post_s"] += time.perf_counter() - t0
                continue
            t1 = time.perf_counter()
            write(f.with_image(s))
            t2 = time.perf_counter()
            waits["post_s"] += t1 - t0
            waits["encode_wait_s"] += t2 - t1
            work.frames += 1
            work.last_time = f.time
            if on_frame is not None:
                on_frame()

    try:
        t_wait = time.perf_counter()
        for group in batched(frames, batch):
            waits["decode_wait_s"] += time.perf_counter() - t_wait
            h, w = group[0].image.shape[:2]
            if not work.proc[0]:
                work.size = (w, h)
                work.proc = processing_size(w, h, max_size, stroke_short_side_for(stylizer, max_size, stroke))
                work.warmup_s = stylizer.warmup(work.proc[1], work.proc[0], len(group))
            contents = [_resize(f.image, work.proc) for f in group]
            in_flight.append((group, contents, stylizer.submit(contents)))
            if len(in_flight) >= stylizer.lanes:
                finish_oldest()
            t_wait = time.perf_counter()
        while in_flight:
            finish_oldest()
    finally:
        stylizer.wait_idle()  # the runtime may still be reading a batch when an error stops us
    return work


def restyle_file(
    opts: RestyleOptions,
    *,
    warn: WarnFn | None = None,
    info: WarnFn | None = None,
    progress: bool = True,
    stylizer=None,  # noqa: ANN001 - a prepared Stylizer (the benchmark reuses one)
) -> RestyleSummary:
    """Restyle ``opts.input`` into ``opts.output``. Raises RealtimeError (one line) on expected failures;
    Ctrl+C becomes ``Interrupted``. On any failure nothing is left under the output name."""
    from .models import resolve_style_for_device, slow_tier_note
    from .stylizer import Stylizer

    inp, out = Path(opts.input), Path(opts.output)
    if opts.batch < 1:
        raise RealtimeError("--batch must be at least 1")
    if not 0.0 <= opts.strength <= 1.0:
        raise RealtimeError("--strength must be between 0 and 1")
    if opts.start < 0 or (opts.duration is not None and opts.duration <= 0):
        raise RealtimeError("--start must be >= 0 and --duration > 0")
    if opts.max_size is not None and opts.max_size < 8:
        raise RealtimeError("--max-size must be at least 8")
    if opts.stroke is not None and not (math.isfinite(opts.stroke) and 0.1 <= opts.stroke <= 10):
        raise RealtimeError("--stroke must be between 0.1 and 10 (1: the size the style was trained for)")
    check_precision(opts.precision, opts.device)
    check_paths(inp, out, opts.overwrite)
    opts.encoder.validate()
    open_input(inp).close()  # "not a video" before the model is loaded (that takes a while)

    warnings: list[str] = []
    bar: Progress | None = None

    def _warn(msg: str) -> None:
        warnings.append(msg)
        if warn is not None:
            if bar is not None:
                bar.clear()
            warn(msg)

    note = None
    if stylizer is None:
        style = resolve_style_for_device(opts.style, opts.tier, opts.device)
        stylizer = Stylizer(style.path, device=opts.device, threads=opts.threads, lanes=opts.lanes,  # type: ignore[arg-type]
                            style=style.mix or None, precision=opts.precision)
        note = slow_tier_note(style, opts.tier, stylizer.device)
    if info is not None:
        info(f"{stylizer.describe()}")
        if note:
            info(note)
    smoother = smoother_for(opts.smooth, opts.smooth_strength)

    t_start = time.perf_counter()
    # On the CPU the network takes every core: decode and encode then run below its priority, and
    # the encoder on few threads (workers.lower_thread_priority, sinks.beside_cpu_network).
    on_cpu = stylizer.device == "cpu"
    source = FileSource(inp, start=opts.start, duration=opts.duration, queue_size=opts.queue_size, warn=_warn,
                        background=on_cpu)
    end = None if opts.duration is None else opts.start + opts.duration
    try:
        sink = _make_sink(opts, source, end, _warn, background=on_cpu)
    except BaseException:
        source.close()
        raise
    if info is not None:
        w, h = source.info.width, source.info.height
        pw, ph = processing_size(w, h, opts.max_size, stroke_short_side_for(stylizer, opts.max_size, opts.stroke))
        if (pw, ph) != (w, h):
            why = f"--max-size {opts.max_size}" if opts.max_size else (
                "the style's trained stroke size" if opts.stroke == 1 else f"--stroke {opts.stroke:g}")
            info(f"stylizing {w}x{h} at {pw}x{ph} ({why}; --full-size for every pixel), output at {w}x{h}")
    bar = Progress(source.estimated_frames(), label=inp.name, enabled=progress)
    try:
        with source, sink:
            if smoother is not None:
                smoother.reset()
            work = restyle_frames(source, stylizer, sink.write, batch=opts.batch, max_size=opts.max_size,
                                  stroke=opts.stroke, preserve_color=opts.preserve_color, strength=opts.strength,
                                  smoother=smoother, on_frame=bar.update)
            if work.frames == 0:
                raise InputError(f"no video frames could be decoded from {inp}" + (
                    f" between {opts.start:g}s and {end:g}s" if end is not None else ""))
            t_close = time.perf_counter()
        work.waits["encode_flush_s"] = time.perf_counter() - t_close
        if opts.start == 0 and opts.duration is None and not source.truncated:
            _check_complete(source, sink.audio, _warn)
    except KeyboardInterrupt as exc:
        bar.abandon()
        raise Interrupted("interrupted; no output written") from exc
    except BaseException:
        bar.abandon()
        raise
    bar.close()
    seconds = time.perf_counter() - t_start
    frames, size, proc, warmup_s = work.frames, work.size, work.proc, work.warmup_s
    stages = stylizer.times.as_dict()
    stages.update({k: round(v, 4) for k, v in work.waits.items()})
    return RestyleSummary(
        input=str(inp),
        output=str(out),
        style=stylizer.info.style_name,
        model=str(stylizer.path),
        device=stylizer.device,
        provider=stylizer.provider,
        device_note=getattr(stylizer, "fallback", None),
        precision=getattr(stylizer, "precision", "fp32"),
        graph_io=bool(getattr(stylizer, "graph_io", False)),
        frames=frames,
        width=size[0],
        height=size[1],
        process_width=proc[0],
        process_height=proc[1],
        seconds=round(seconds, 4),
        fps=round(frames / seconds, 3) if seconds > 0 else 0.0,
        fps_after_warmup=round(frames / (seconds - warmup_s), 3) if seconds > warmup_s else 0.0,
        warmup_s=round(warmup_s, 4),
        audio=[{"input_index": a.input_index, "codec": a.codec, "mode": a.mode, "packets": a.packets} for a in sink.audio],
        warnings=warnings,
        stages=stages,
        smooth=opts.smooth,
    )


def _make_sink(opts: RestyleOptions, source: FileSource, end: float | None, warn: WarnFn, background: bool) -> FileSink:
    info = source.info
    cut = opts.start > 0 or end is not None
    return FileSink(
        Path(opts.output),
        settings=opts.encoder,
        background=background,
        rate=info.rate,
        streams_from=Path(opts.input),
        video_index=info.video_index,
        copy_audio=opts.audio,
        # the sink works in the file's own timeline; --start and --duration count from its origin
        copy_start=info.origin + opts.start if cut else 0.0,
        copy_end=None if end is None else info.origin + end,
        # a cut starts at its first frame; a whole file keeps its times, counted from its origin
        offset=None if opts.start > 0 else info.origin,
        sample_aspect_ratio=output_sar(info.sample_aspect_ratio, info.rotation),
        overwrite=opts.overwrite,
        queue_size=opts.queue_size,
        warn=warn,
    )


def _check_complete(source: FileSource, audio: list[AudioReport], warn: WarnFn) -> None:
    info = source.info
    check_complete(source.path.name, info.origin, info.rate, info.declared_end, source.video_end, audio, warn)


def check_complete(name: str, origin: float, rate: Fraction | None, declared: float | None, video_end: float | None,
                   audio: list[AudioReport], warn: WarnFn) -> None:
    """A file cut short (an interrupted recording, a partial download) often just ends, without a
    decoder error: compare where each stream ended with where the header says it ends, for containers
    that declare it (timestamps.declared_end). Streams may end apart and files may start late; only a
    stream that stops short of its own declared end by more than half a frame, or by more than one and a
    half audio packets (Matroska's end counts the last packet's full length, its demuxer may not), counts.
    Times are the file's own (seconds); ``video_end`` is where the last decoded frame ends."""
    short: list[str] = []
    step = 1.0 / float(rate) if rate else 0.04
    if declared is not None and video_end is not None and video_end < declared - step / 2:
        short.append(f"video at {video_end - origin:.2f}s of {declared - origin:.2f}s")
    for a in audio:
        slack = 1.5 * a.longest_packet if a.longest_packet > 0 else 0.05
        if a.declared_end is not None and a.end is not None and a.end < a.declared_end - slack:
            short.append(f"audio at {a.end - origin:.2f}s of {a.declared_end - origin:.2f}s")
    if short:
        warn(f"{name} ends before its header says: {', '.join(short)} (file truncated?)")


def output_sar(sar: Fraction | None, rotation: int) -> Fraction | None:
    """Non-square pixels keep their shape; a quarter turn swaps which side is stretched."""
    if not sar or sar <= 0 or sar == 1:
        return None
    return Fraction(1) / Fraction(sar) if rotation % 180 else Fraction(sar)
