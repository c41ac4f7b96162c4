"""Restyle many and long videos on a Ray cluster: the driver.

The driver plans each input's segments (segments.py), starts one worker actor per GPU (or per share of
the cores) that keeps its stylizer loaded (worker.py), feeds them segments with their packets through
Ray's object store, and joins the encoded segments it gets back, in order, into each output with the
input's audio (join.py). Each worker has at most ``DEPTH`` segments queued, so it never waits for the
driver and the driver holds few segments in memory.

Faults: a worker that dies (process killed, node lost) is replaced by a new one, and the segments it
held are sent again, to another worker where there is one, up to ``ATTEMPTS`` times in all;
then that input fails with a one-line error and the others go on. An error the segment itself causes
(``RealtimeError`` in the worker) fails its input at once. An output is published only when every
segment is in (outputs.py rules); on Ctrl+C the workers are killed and nothing is left behind.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator

from ..errors import Interrupted, RealtimeError
from ..pipeline import check_complete
from ..progress import Progress
from .join import SegmentJoiner
from .segments import Segment, SegmentPlan, StreamInfo, plan, read_segments, stream_info
from .work import SegmentResult, SegmentSettings

WarnFn = Callable[[str], None]

DEPTH = 2  # segments queued on each worker: one running, one waiting
ATTEMPTS = 3  # tries of a segment whose worker died
INSTALL_HINT = "--cluster needs Ray: pip install 'realtime[cluster]'"


@dataclass
class InputJob:
    """One input and where its output goes."""

    input: Path
    output: Path
    overwrite: bool = False
    audio: bool = True


@dataclass
class InputResult:
    """What became of one input (``--json`` lists these)."""

    input: str
    output: str
    ok: bool = False
    error: str | None = None
    frames: int = 0
    segments: int = 0
    retries: int = 0
    seconds: float = 0.0
    audio: list[dict[str, object]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


@dataclass
class ClusterSummary:
    inputs: list[InputResult]
    workers: list[str]
    frames: int
    seconds: float
    retries: int
    driver_cpu_s: float  # the driver process's own CPU time (user + system), all of its threads
    startup_s: float = 0.0  # until the workers had their models loaded (Ray start-up included)
    worker_s: float = 0.0  # the workers' time on the segments that were joined, summed over segments

    @property
    def failed(self) -> list[InputResult]:
        return [r for r in self.inputs if not r.ok]

    def as_dict(self) -> dict[str, object]:
        return {
            "inputs": [r.as_dict() for r in self.inputs],
            "workers": self.workers,
            "frames": self.frames,
            "seconds": round(self.seconds, 4),
            "fps": round(self.frames / self.seconds, 3) if self.seconds > 0 else 0.0,
            "retries": self.retries,
            "driver_cpu_s": round(self.driver_cpu_s, 4),
            "driver_cpu_ms_per_frame": round(1000 * self.driver_cpu_s / self.frames, 3) if self.frames else None,
            "startup_s": round(self.startup_s, 4),
            "worker_s": round(self.worker_s, 4),
        }


@dataclass
class ClusterOptions:
    """How to run on the cluster."""

    address: str | None = None  # None: start a local Ray instance; "auto", "ray://host:10001": join one
    workers: int | None = None  # default: one per GPU, else one per ``threads`` cores
    threads: int | None = None  # cores per worker on the CPU (default: the cores shared out among them)
    lanes: int | None = None
    device: str = "auto"
    segment_seconds: float = 20.0  # segments of about this length (cut at the first keyframe after it)
    warmup: int = 10  # frames decoded before each segment to warm the smoother up (when smoothing)
    style: str | None = None  # the style inside a multi-style model, or a blend (Stylizer's ``style``)
    precision: str = "fp32"  # Stylizer's: fp16 converts the model on each (GPU) worker


def import_ray():  # noqa: ANN201 - the ray module
    """Ray, or a one-line error that says what to install."""
    try:
        import ray
    except ImportError:
        raise RealtimeError(INSTALL_HINT) from None
    return ray


class _Input:
    """The driver's state for one input."""

    def __init__(self, input_id: int, job: InputJob, result: InputResult) -> None:
        self.id = input_id
        self.job = job
        self.result = result
        self.plans: list[SegmentPlan] = []
        self.stream: StreamInfo | None = None
        self.settings: SegmentSettings | None = None
        self.joiner: SegmentJoiner | None = None
        self.done: dict[int, SegmentResult] = {}  # finished, waiting for an earlier one to be joined
        self.next_to_join = 0
        self.video_end: float | None = None  # where the last decoded frame of any joined segment ends
        self.decode_trouble = False  # a worker warned about this input's data (the end check then stays quiet)
        self.started = 0.0
        self.worker_s = 0.0  # the workers' seconds on this input's joined segments
        self.failed = False

    def fail(self, message: str) -> None:
        if self.failed or self.result.ok:
            return  # a published output stays: it is complete
        self.failed = True
        self.result.error = message
        self.done.clear()
        if self.joiner is not None:
            self.joiner.abort()


def prepare(jobs: list[InputJob], settings: SegmentSettings, opts: ClusterOptions,
            check: Callable[[InputJob], None]) -> list[_Input]:
    """Check and plan every input on the driver; an input that cannot be used fails here, alone."""
    inputs = []
    for i, job in enumerate(jobs):
        state = _Input(i, job, InputResult(str(job.input), str(job.output)))
        inputs.append(state)
        try:
            check(job)
            state.stream = stream_info(job.input)
            frames = max(1, round(opts.segment_seconds * float(state.stream.rate or 25)))
            state.plans = plan(job.input, frames, opts.warmup if settings.smooth != "off" else 0)
            # each input's segments are written in its output's container (work.py)
            state.settings = replace(settings, suffix=job.output.suffix.lower())
            if not state.plans:
                raise RealtimeError(f"no video frames could be decoded from {job.input}")
            state.result.segments = len(state.plans)
        except RealtimeError as exc:
            state.failed = True
            state.result.error = str(exc)
    return inputs


def connect(ray, address: str | None) -> bool:  # noqa: ANN001
    """Join ``address`` or start a local instance; True when this call did it (and must shut it down)."""
    if ray.is_initialized():
        return False  # the caller's own connection (tests, notebooks): use it, leave it up
    try:
        with keep_signal_handlers():
            ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR,
                     configure_logging=True)
    except ConnectionError as exc:
        raise RealtimeError(f"cannot reach the Ray cluster at {address}: {str(exc).splitlines()[0][:200]}") from exc
    except Exception as exc:  # noqa: BLE001 - ray.init raises several types for a bad address
        raise RealtimeError(f"cannot start or join Ray ({address or 'local'}): {str(exc).splitlines()[0][:200]}") from exc
    return True


@contextlib.contextmanager
def keep_signal_handlers() -> Iterator[None]:
    """Put back the signal handlers that ``ray.init`` replaces: it installs its own SIGTERM handler
    (``sys.exit``) in the driver and leaves it after ``ray.shutdown``, which would bypass
    realtime.signals (SIGTERM must stop a run as Ctrl+C does: workers killed, nothing half-written,
    one line, exit 143) and outlive the run."""
    names = ("SIGTERM", "SIGINT", "SIGHUP")
    if threading.current_thread() is not threading.main_thread():
        yield  # handlers can only be set from the main thread; Ray then leaves them alone too
        return
    saved = {sig: signal.getsignal(sig) for sig in (getattr(signal, n) for n in names if hasattr(signal, n))}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            if handler is not None and signal.getsignal(sig) is not handler:
                signal.signal(sig, handler)


def worker_shape(ray, opts: ClusterOptions) -> tuple[int, dict[str, float], str, int | None]:  # noqa: ANN001
    """How many workers, what each reserves, the device it runs on, and its CPU threads."""
    resources = ray.cluster_resources()
    cpus = int(resources.get("CPU", 1))
    gpus = int(resources.get("GPU", 0))
    # cuda:N / tensorrt:N name a GPU of one machine; Ray gives each GPU worker its own GPU, as its GPU 0
    kind = opts.device.partition(":")[0]
    if gpus and opts.device != "cpu":
        n = opts.workers or gpus
        return n, {"num_gpus": 1, "num_cpus": 1}, kind if kind in ("cuda", "tensorrt") else "auto", opts.threads
    if kind in ("cuda", "tensorrt"):
        raise RealtimeError(f"--device {opts.device}: the cluster has no GPUs")
    n = opts.workers or max(1, cpus // (opts.threads or 2))
    threads = opts.threads or max(1, cpus // n)
    if n * threads > cpus:
        raise RealtimeError(f"{n} workers of {threads} cores need {n * threads} cores; the cluster has {cpus}")
    return n, {"num_cpus": threads}, "cpu", threads


def restyle_on_cluster(jobs: list[InputJob], model: Path | Callable[[str], Path], settings: SegmentSettings,
                       opts: ClusterOptions, *,
                       check: Callable[[InputJob], None], warn: WarnFn | None = None, info: WarnFn | None = None,
                       progress: bool = True, on_segment: Callable[[SegmentResult], None] | None = None) -> ClusterSummary:
    """Restyle every input on the cluster; each input ends in an output or a one-line error (in its
    ``InputResult``). ``model`` is the model file, or a function of the workers' device ("cuda", "auto"
    or "cpu") that picks it (the tier depends on it; only the cluster knows its GPUs). ``check``
    refuses an input before any work (paths, output exists). ``on_segment`` is called after each
    segment arrives (the fault test kills a worker there). Ctrl+C raises ``Interrupted`` after the
    partial outputs are removed and the workers killed."""
    ray = import_ray()
    t0 = time.perf_counter()
    cpu0 = os.times()
    inputs = prepare(jobs, settings, opts, check)
    live = [s for s in inputs if not s.failed]
    started = connect(ray, opts.address) if live else False
    actors: list[object] = []
    retries = 0
    startup = 0.0
    names: list[str] = []
    bar: Progress | None = None
    try:
        if live:
            n, resources, device, threads = worker_shape(ray, opts)
            remote = ray.remote(max_restarts=0, max_task_retries=0, **resources)(_worker_class())
            if callable(model):
                model = model(device)
            model_ref = ray.put(model.read_bytes())

            def new_worker():  # noqa: ANN202 - an actor handle
                return remote.remote(model_ref, model.name, device, threads, opts.lanes, opts.style, opts.precision)

            actors = [new_worker() for _ in range(n)]
            try:
                names = ray.get([a.describe.remote() for a in actors])
            except Exception as exc:  # noqa: BLE001 - the model or device fails the same way on every worker
                cause = getattr(exc, "cause", None) or exc
                raise RealtimeError(str(cause).splitlines()[0][:300] if str(cause) else type(cause).__name__) from exc
            startup = time.perf_counter() - t0
            if info is not None:
                info(f"{n} workers: {names[0].split(' ', 1)[1] if names else ''}")
            total = sum(p.frames for s in live for p in s.plans)
            bar = Progress(total, label=f"{len(live)} input{'s' if len(live) != 1 else ''}", enabled=progress)
            retries = _schedule(ray, live, actors, new_worker, bar, warn, on_segment)
            bar.close()
    except KeyboardInterrupt as exc:
        if bar is not None:
            bar.abandon()
        for s in inputs:  # the workers are killed below
            s.fail("interrupted")
        raise Interrupted("interrupted; no output written") from exc
    except BaseException:
        if bar is not None:
            bar.abandon()
        for s in inputs:
            s.fail("stopped")
        raise
    finally:
        for a in actors:
            try:
                ray.kill(a, no_restart=True)
            except Exception:  # noqa: BLE001
                pass
        if started:
            ray.shutdown()
    cpu1 = os.times()
    results = [s.result for s in inputs]
    return ClusterSummary(results, names, sum(r.frames for r in results if r.ok), time.perf_counter() - t0, retries,
                          (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system), startup,
                          sum(s.worker_s for s in inputs))


def _worker_class():  # noqa: ANN202
    from .worker import SegmentWorker

    return SegmentWorker


def _segments(inputs: list[_Input]) -> Iterator[tuple[_Input, Segment]]:
    for s in inputs:
        if s.failed:
            continue
        assert s.stream is not None
        try:
            for seg in read_segments(s.job.input, s.id, s.plans, s.stream):
                if s.failed:
                    break
                yield s, seg
        except RealtimeError as exc:
            s.fail(str(exc))


def _schedule(ray, inputs: list[_Input], actors: list[object], new_worker: Callable[[], object],  # noqa: ANN001
              bar: Progress, warn: WarnFn | None, on_segment: Callable[[SegmentResult], None] | None) -> int:
    """Keep every worker ``DEPTH`` segments deep until all are joined; returns how many were resent.
    A worker that died is replaced by a new one (which loads the model again), once."""
    import av
    from ray.exceptions import ObjectLostError, RayActorError, RayTaskError, WorkerCrashedError

    feed = _segments(inputs)
    retry: deque[tuple[_Input, Segment, int, int]] = deque()  # (input, segment, attempts, last worker)
    running: dict[object, tuple[_Input, Segment, int, int, object]] = {}  # ref -> (input, segment, attempts, worker, actor)
    load = [0] * len(actors)
    retries = 0
    exhausted = False

    def next_work() -> tuple[_Input, Segment, int, int] | None:
        nonlocal exhausted
        while retry:
            item = retry.popleft()
            if not item[0].failed:
                return item
        if exhausted:
            return None
        try:
            s, seg = next(feed)
        except StopIteration:
            exhausted = True
            return None
        return s, seg, 0, -1

    while True:
        while min(load) < DEPTH:
            item = next_work()
            if item is None:
                break
            s, seg, attempts, last = item
            # the least loaded worker; a resent segment goes to another worker than the one that died
            order = sorted(range(len(actors)), key=lambda i: (load[i], i == last))
            w = order[0]
            ref = actors[w].restyle.remote(seg, s.settings)  # type: ignore[attr-defined]
            running[ref] = (s, seg, attempts + 1, w, actors[w])
            load[w] += 1
            if s.joiner is None and not s.started:
                s.started = time.perf_counter()
        if not running:
            break
        ready, _ = ray.wait(list(running), num_returns=1, timeout=0.5)
        for ref in ready:
            s, seg, attempts, w, actor = running.pop(ref)
            load[w] -= 1
            try:
                result: SegmentResult = ray.get(ref)
            except RayTaskError as exc:
                cause = exc.cause if getattr(exc, "cause", None) is not None else exc
                if isinstance(cause, RealtimeError):
                    s.fail(str(cause))
                else:
                    s.fail(f"segment {seg.index} failed: {type(cause).__name__}: {_first_line(cause)}")
                continue
            except (RayActorError, WorkerCrashedError, ObjectLostError) as exc:
                if actors[w] is actor:
                    actors[w] = new_worker()  # its other segments fail too; they go to the new one or another
                if attempts >= ATTEMPTS:
                    s.fail(f"segment {seg.index} failed {attempts} times: its worker died ({_first_line(exc)})")
                    continue
                retries += 1
                s.result.retries += 1
                retry.append((s, seg, attempts, w))
                continue
            if s.failed:
                continue
            bar.update(result.frames)
            s.decode_trouble = s.decode_trouble or bool(result.warnings)
            for message in result.warnings:
                s.result.warnings.append(message)
                if warn is not None:
                    bar.clear()
                    warn(f"{s.job.input.name}: {message}")
            s.done[result.index] = result
            def say(message: str, s: _Input = s) -> None:
                s.result.warnings.append(message)
                if warn is not None:
                    bar.clear()
                    warn(message)

            try:
                _join_ready(s, say)
            except RealtimeError as exc:
                s.fail(str(exc))
            except (av.error.FFmpegError, ValueError) as exc:  # the muxer refused a packet (e.g. its timestamps)
                s.fail(f"joining its segments failed: {_first_line(exc)}")
            if on_segment is not None:
                on_segment(result)
    return retries


def _join_ready(s: _Input, warn: Callable[[str], None] | None = None) -> None:
    """Join the finished segments that are next in order; publish the output after the last, then
    check, as a single run does, that the file did not end before its header says (``warn``)."""
    while s.next_to_join in s.done:
        result = s.done.pop(s.next_to_join)
        if s.joiner is None:
            assert s.stream is not None
            s.joiner = SegmentJoiner(s.job.output, streams_from=s.job.input, video_index=s.stream.video_index,
                                     copy_audio=s.job.audio, origin=s.stream.origin,
                                     overwrite=s.job.overwrite, warn=s.result.warnings.append)
        s.joiner.add(result.data)
        if result.video_end is not None:
            s.video_end = result.video_end if s.video_end is None else max(s.video_end, result.video_end)
        s.result.frames += result.frames
        s.worker_s += result.seconds
        s.next_to_join += 1
    if s.next_to_join == len(s.plans) and not s.failed:
        if s.joiner is None or s.result.frames == 0:
            s.fail(f"no video frames could be decoded from {s.job.input}")
            return
        s.joiner.close()
        if warn is not None and not s.decode_trouble and s.stream is not None:
            st = s.stream
            check_complete(s.job.input.name, st.origin, st.rate, st.declared_end, s.video_end, s.joiner.audio, warn)
        s.result.ok = True
        s.result.seconds = round(time.perf_counter() - s.started, 4)
        s.result.audio = [{"input_index": a.input_index, "codec": a.codec, "mode": a.mode, "packets": a.packets}
                          for a in s.joiner.audio]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__
