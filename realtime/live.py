"""The live loop of ``restyle-cam``: newest camera frame → stylizer → colour / smoothing / strength →
window (with overlay) and optional recording.

Threads: capture (``camera.LatestFrame``, drop-oldest), encode (``sinks.FileSink``, the writer of
``restyle-video``) and one short-lived thread per style switch (``StyleLoader``) so that loading and
warming a model never freezes the picture. On the CPU the stylizer runs two frames side by side in the
runtime's own threads (``Stylizer.submit``): the loop shows the older one when it is done. Everything
stateful (stylizer, smoother, window) stays in the main thread. A worker's error is re-raised here;
the capture ending (file over, camera unplugged) ends the loop normally, and the recording is always
finalized, Ctrl+C included.

This module is the loop; its parts are modules of their own: the window (``live_display``), the overlay
and its figures (``live_overlay``), the recorder (``live_record``) and the style loader (``live_loader``).
"""

from __future__ import annotations

import collections
import os
import statistics
import sys
import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Callable, Protocol, Sequence

import numpy as np

from .camera import LatestFrame
from .controls import HELP, Action, Command, ViewState, command_for_key
from .errors import OutputError, RealtimeError
from .frames import Frame
# NoDisplay, OpenCVWindow and display_problem are not used here: re-exported (__all__) for cli_cam and callers
from .live_display import Display, NoDisplay, OpenCVWindow, display_problem
from .live_loader import StyleLoader
from .live_overlay import Meter, draw_overlay
from .live_record import Recorder
from .models import Style

InfoFn = Callable[[str], None]
MORPH_SECONDS = 1.0  # the "m" key: from one style of a multi-style model to the next


class StylizerLike(Protocol):
    """What the loop needs of ``realtime.stylizer.Stylizer`` (tests pass slow or fast fakes). Where it
    also has ``submit`` and ``lanes`` (the real one does), up to ``lanes`` frames are in the network at
    once and the oldest is shown when it is done."""

    def stylize(self, images: Sequence[np.ndarray]) -> list[np.ndarray]: ...


@dataclass
class LiveOptions:
    compare: bool = False  # original | stylized side by side
    smooth_mode: str = "flow"  # what "smoothing on" means
    smooth_strength: float = 0.8
    output: Path | None = None  # record from the start to this file
    overwrite: bool = False
    save_dir: Path = Path(".")  # screenshots and recordings started with "r"
    duration: float | None = None  # stop after this many seconds
    max_frames: int | None = None  # stop after showing this many frames (tests, benchmarks)
    rate_hint: float | None = None  # nominal capture rate for the recording's stream header
    # the size frames are stylized at, as restyle-video's (pipeline.stroke_short_side_for): the style's
    # trained stroke scale times ``stroke`` (None: full size), or ``max_size`` as the long side
    stroke: float | None = 1.0
    max_size: int | None = None


@dataclass
class LiveSummary:
    frames_shown: int = 0
    seconds: float = 0.0
    captured: int = 0
    dropped: int = 0
    fps_shown: float = 0.0
    model_ms_median: float | None = None
    latency_ms_median: float | None = None
    latency_ms_p95: float | None = None
    latency_ms_max: float | None = None
    age_ms_max: float | None = None  # capture → taken by the loop: the drop policy keeps this < 1 interval
    end_reason: str = ""
    recordings: list[str] = field(default_factory=list)
    screenshots: list[str] = field(default_factory=list)
    style: str = ""
    style_errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def _stamp() -> str:
    return datetime.now().strftime("%Y%m%d-%H%M%S-%f")[:-3]


# ------------------------------------------------------------------------------------------ the loop


@dataclass
class InFlight:
    """A camera frame in the stylizer: when it was taken from the camera and its pending result."""

    frame: Frame
    taken: float
    job: "PendingLike"
    content: np.ndarray | None = None  # the frame at the size it was stylized at (None: the frame itself)


class PendingLike(Protocol):
    def result(self) -> list[np.ndarray]: ...

    def done(self) -> bool: ...

    def wait(self) -> None: ...

    @property
    def model_seconds(self) -> float: ...


class _Done:
    """The result of a stylizer that only has ``stylize`` (it ran at submission)."""

    def __init__(self, frames: list[np.ndarray], seconds: float = 0.0) -> None:
        self._frames, self.model_seconds = frames, seconds

    def result(self) -> list[np.ndarray]:
        return self._frames

    def done(self) -> bool:
        return True

    def wait(self) -> None:
        pass


class LiveLoop:
    """One live session. ``run()`` returns when the user quits, the window closes, the duration is
    over or the capture ends; it raises worker errors and KeyboardInterrupt after cleaning up."""

    def __init__(
        self,
        camera: LatestFrame,
        stylizer: StylizerLike,
        styles: Sequence[Style],
        style_index: int,
        display: Display,
        options: LiveOptions,
        *,
        state: ViewState | None = None,
        loader_factory: Callable[[Style], StylizerLike] | None = None,
        info: InfoFn = lambda m: print(f"restyle-cam: {m}", file=sys.stderr, flush=True),
    ) -> None:
        self.camera = camera
        self.stylizer = stylizer
        # (stylizer, the short side its style is stylized at): read from its metadata once per style, not per frame
        self._stroke_side: tuple[object, int | None] | None = None
        self.styles = list(styles)
        self.style_index = style_index
        self.display = display
        self.opts = options
        self.info = info
        self.state = state or ViewState(style_index=style_index, n_styles=len(self.styles))
        self.loader = StyleLoader(loader_factory) if loader_factory is not None else None
        self.meter = Meter()
        self.recorder = Recorder(options.rate_hint or camera.rate, info,
                                 background=getattr(stylizer, "device", None) == "cpu")
        self.summary = LiveSummary(style=self._style_name())
        self.messages: collections.deque[tuple[float, str]] = collections.deque(maxlen=3)
        self._smoother = None
        self._frame_size: tuple[int, int] | None = None
        self._in_flight: collections.deque[InFlight] = collections.deque()  # submitted, not yet shown
        # a morph in progress: (from vector, to vector, start time); the style input moves between them
        self._morph: tuple[np.ndarray, np.ndarray, float] | None = None

    # ----------------------------------------------------------------- helpers

    def _style_name(self) -> str:
        describe = getattr(self.stylizer, "style_description", None)
        info = getattr(self.stylizer, "info", None)
        if describe is not None and len(getattr(info, "style_names", ())) > 1:
            return str(describe())  # a style (or blend) inside a multi-style model
        if info is not None and getattr(info, "style_name", None):
            return str(info.style_name)
        return self.styles[self.style_index].name if self.styles else "?"

    def say(self, text: str) -> None:
        """A message in the overlay for a few seconds, and on stderr."""
        self.messages.append((time.monotonic(), text))
        self.info(text)

    def _smoother_for(self, on: bool):  # noqa: ANN202 - realtime.temporal.Smoother
        if not on:
            self._smoother = None
            return None
        if self._smoother is None:
            from .temporal import make_smoother

            self._smoother = make_smoother(self.opts.smooth_mode, self.opts.smooth_strength)
        return self._smoother

    def submit(self, frame: Frame) -> "InFlight":
        """Hand a frame to the stylizer; with lanes (``Stylizer.submit``) the network runs it while the
        loop shows the previous frame and takes the next one from the camera."""
        submit = getattr(self.stylizer, "submit", None)
        taken = time.monotonic()
        content = self._processing_image(frame.image)
        if submit is not None:
            return InFlight(frame, taken, submit([content]), content)
        t0 = time.perf_counter()
        frames = self.stylizer.stylize([content])
        return InFlight(frame, taken, _Done(frames, time.perf_counter() - t0), content)

    def _processing_image(self, image: np.ndarray) -> np.ndarray:
        """The frame at the size the current style is stylized at (its trained stroke scale)."""
        from .images import processing_image
        from .pipeline import stroke_short_side_for

        if self._stroke_side is None or self._stroke_side[0] is not self.stylizer:  # a new style
            short = stroke_short_side_for(self.stylizer, self.opts.max_size, self.opts.stroke) \
                if getattr(self.stylizer, "info", None) is not None else None
            self._stroke_side = (self.stylizer, short)
        return processing_image(image, self.opts.max_size, self._stroke_side[1])

    def render(self, item: "InFlight") -> tuple[np.ndarray, float]:
        """The RGB view for a submitted frame (stylized, or original | stylized) and the model's
        milliseconds (from submission to the network's end)."""
        from .pipeline import finish_frame

        image = item.frame.image
        out = item.job.result()[0]
        st = self.state
        content = item.content if item.content is not None else image
        out = finish_frame(image, content, out, preserve_color=st.preserve_colour, smoother=self._smoother_for(st.smooth),
                           strength=st.strength)
        if self.opts.compare:
            out = np.hstack([image, out])
        return out, 1000 * item.job.model_seconds

    def overlay_lines(self, now: float) -> list[str]:
        st, m, cam = self.state, self.meter, self.camera
        n = len(self.styles)
        line1 = f"{self._style_name()}" + (f"  [{self.style_index + 1}/{n}]" if n > 1 else "")
        if self.loader is not None and self.loader.loading is not None:
            line1 += f"  loading {self.loader.loading.name}..."
        lines = [
            line1,
            f"{m.fps(now):5.1f} fps shown   model {m.recent(m.model_ms):4.0f} ms   latency {m.recent(m.latency_ms):4.0f} ms",
            f"dropped {cam.dropped} of {cam.captured}",
            f"smooth {self.opts.smooth_mode if st.smooth else 'off'}   strength {st.strength:.1f}   colour {'kept' if st.preserve_colour else 'styled'}",
        ]
        if self.recorder.active:
            lines.append(f"REC {now - self.recorder.started:5.1f}s  {self.recorder.path.name}")
        lines += [text for t, text in self.messages if now - t < 4.0]
        return lines

    # ----------------------------------------------------------------- commands

    def handle(self, cmd: Command, view_rgb: np.ndarray | None) -> bool:
        """Apply one command; False means quit."""
        if cmd.action is Action.QUIT:
            return False
        before = self.state
        self.state = before.apply(cmd)
        a = cmd.action
        if a is Action.SCREENSHOT:
            self.screenshot(view_rgb)
        elif a is Action.TOGGLE_RECORD:
            self.toggle_record()
        elif a is Action.TOGGLE_FULLSCREEN:
            self.display.set_fullscreen(self.state.fullscreen)
        elif a is Action.TOGGLE_SMOOTH and self.state.smooth and self._smoother is not None:
            self._smoother.reset()
        if self.state.style_index != before.style_index:
            self.switch_style(self.state.style_index, morph=a is Action.MORPH_NEXT)
        return True

    def _in_running_model(self, style: Style) -> bool:
        """Whether ``style`` is one of the running model's own styles (switched without a new session)."""
        path = getattr(self.stylizer, "path", None)
        return (path is not None and hasattr(self.stylizer, "set_style") and style.path.resolve() == Path(path).resolve()
                and (style.mix or style.name) in getattr(self.stylizer.info, "style_names", ()))

    def switch_style(self, index: int, morph: bool = False) -> None:
        """Run style ``index``: at once where the running model holds it (the same session, a new style
        vector; ``morph``: moving there over MORPH_SECONDS), else loaded in the background."""
        if not self.styles:
            return
        style = self.styles[index]
        if self._in_running_model(style):
            target = self.stylizer.info.style_names.index(style.mix or style.name)
            to = np.zeros(len(self.stylizer.info.style_names), np.float32)
            to[target] = 1.0
            if morph:
                self._morph = (self.stylizer.style_vector.copy(), to, time.monotonic())
            else:
                self._morph = None
                self.stylizer.set_style(to)
                if self._smoother is not None:
                    self._smoother.reset()  # the previous output is in another style
            self.style_index = index
            self.summary.style = style.name
            self.say(f"{'morphing to' if morph else 'style'} {style.name}")
            return
        self._morph = None
        if self.loader is None:
            return
        self.say(f"loading style {style.name}...")
        self.loader.request(style)

    def _advance_morph(self, now: float) -> None:
        """Move the style vector along the morph (smoothstep in time): each new frame a little further."""
        if self._morph is None:
            return
        start, end, t0 = self._morph
        t = min(1.0, (now - t0) / MORPH_SECONDS)
        w = t * t * (3 - 2 * t)
        self.stylizer.set_style((1 - w) * start + w * end)
        if t >= 1.0:
            self._morph = None

    def _collect_style(self) -> None:
        if self.loader is None:
            return
        done = self.loader.poll()
        if done is None:
            return
        style, stylizer, message = done
        if stylizer is None:
            text = f"style {style.name} failed to load: {message}"
            self.summary.style_errors.append(text)
            self.say(text)
            # the picture keeps the running style; the selection goes back to it
            self.state = replace(self.state, style_index=self.style_index)
            return
        self.stylizer = stylizer
        self.style_index = self.styles.index(style) if style in self.styles else self.style_index
        if self._smoother is not None:
            self._smoother.reset()  # the previous output is in another style
        self.summary.style = self._style_name()
        self.say(f"style {self._style_name()}")

    def screenshot(self, view_rgb: np.ndarray | None) -> Path | None:
        import cv2

        if view_rgb is None:
            self.say("no frame to save yet")
            return None
        self.opts.save_dir.mkdir(parents=True, exist_ok=True)
        path = self.opts.save_dir / f"restyle-cam-{_stamp()}.png"
        # the picture without the overlay: a screenshot is for keeping
        if not cv2.imwrite(str(path), cv2.cvtColor(view_rgb, cv2.COLOR_RGB2BGR)):
            self.say(f"could not write {path}")
            return None
        self.summary.screenshots.append(str(path))
        print(f"screenshot: {path}", flush=True)
        self.messages.append((time.monotonic(), f"saved {path.name}"))
        return path

    def toggle_record(self) -> None:
        if self.recorder.active:
            self.recorder.stop()
            return
        path = self.opts.save_dir / f"restyle-cam-{_stamp()}.mp4"
        try:
            self.opts.save_dir.mkdir(parents=True, exist_ok=True)
            self.recorder.start(path)
        except (RealtimeError, OSError) as exc:
            self.say(f"cannot record: {exc}")
            return
        self.say(f"recording to {path}")

    # ----------------------------------------------------------------- run

    def run(self) -> LiveSummary:
        import cv2

        t_start = time.monotonic()
        view: np.ndarray | None = None
        reason = ""
        in_flight = self._in_flight
        try:
            if self.opts.output is not None:
                self.recorder.start(self.opts.output, overwrite=self.opts.overwrite)
            while True:
                now = time.monotonic()
                if self.opts.duration is not None and now - t_start >= self.opts.duration:
                    reason = f"{self.opts.duration:g} s elapsed"
                    break
                self._collect_style()
                self._advance_morph(now)
                lanes = getattr(self.stylizer, "lanes", 1)
                if len(in_flight) < lanes:
                    # with a frame in the network, look at the camera only briefly: the frame may finish
                    frame = self.camera.get(timeout=0.005 if in_flight else 0.02)
                    if frame is not None:
                        in_flight.append(self.submit(frame))
                    elif self.camera.ended is not None and not in_flight:
                        reason = self.camera.ended
                        break
                shown_item = None
                # show the oldest when no lane is free, when it is done, or when no more frames will come
                if in_flight and (len(in_flight) >= lanes or in_flight[0].job.done() or self.camera.ended):
                    shown_item = in_flight.popleft()
                    view, model_ms = self.render(shown_item)
                    # cvtColor, not a reversed view: copying a negative-stride view cost ~3 ms a frame
                    bgr = cv2.cvtColor(view, cv2.COLOR_RGB2BGR)
                    if self.state.overlay:
                        bgr = draw_overlay(bgr, self.overlay_lines(shown_item.taken), in_place=True)
                    self.display.show(bgr)
                    self.recorder.write(shown_item.frame.with_image(view))
                key = self.display.poll_key(1)
                if shown_item is not None:
                    # shown: imshow draws on the next event pump, which poll_key just ran
                    shown = time.monotonic()
                    captured = self.camera.capture_time(shown_item.frame)
                    self.meter.add(shown, model_ms, 1000 * (shown - captured), 1000 * (shown_item.taken - captured))
                    self.summary.frames_shown += 1
                    if self.opts.max_frames is not None and self.summary.frames_shown >= self.opts.max_frames:
                        reason = f"{self.opts.max_frames} frames shown"
                        break
                if self.display.closed():
                    reason = "window closed"
                    break
                cmd = command_for_key(key)
                if cmd is not None and not self.handle(cmd, view):
                    reason = "quit"
                    break
        except KeyboardInterrupt:
            reason = "interrupted"
            self._finish(t_start, reason)
            raise
        except BaseException:
            self._finish(t_start, "failed", failed=True)
            raise
        self._finish(t_start, reason)
        return self.summary

    def _finish(self, t_start: float, reason: str, failed: bool = False) -> None:
        """Stop capture, finalize a recording (kept even on Ctrl+C or a camera error: it is what the
        user saw; only a broken encoder discards it), wait for a style load, close the window."""
        for item in self._in_flight:
            item.job.wait()  # frames still in the network: the runtime reads their buffers until it ends
        self._in_flight.clear()
        try:
            self.camera.close()
        finally:
            try:
                if self.recorder.active:
                    try:
                        self.recorder.stop()
                    except BaseException:
                        self.recorder.abort()
                        if not failed:
                            raise
            finally:
                if self.loader is not None:
                    self.loader.close()
                self.display.close()
        s = self.summary
        s.seconds = round(time.monotonic() - t_start, 3)
        s.captured = self.camera.captured
        s.dropped = self.camera.dropped
        s.end_reason = reason
        s.recordings = list(self.recorder.saved)
        m = self.meter
        if m.count > 1 and m.first is not None and m.last is not None and m.last > m.first:
            s.fps_shown = round((m.count - 1) / (m.last - m.first), 2)
        if m.model_ms:
            s.model_ms_median = round(statistics.median(m.model_ms), 1)
        if m.latency_ms:
            lat = sorted(m.latency_ms)
            s.latency_ms_median = round(statistics.median(lat), 1)
            s.latency_ms_p95 = round(lat[min(len(lat) - 1, int(0.95 * len(lat)))], 1)
            s.latency_ms_max = round(m.latency_ms_max, 1)
            s.age_ms_max = round(m.age_ms_max, 1)


def check_output(path: Path, overwrite: bool) -> None:
    """``--output`` problems before the camera and model are opened."""
    from .sinks import container_format

    container_format(path)
    if path.exists() and not overwrite:
        raise OutputError(f"{path} exists; use --overwrite")
    if path.is_dir():
        raise OutputError(f"{path} is a folder")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise OutputError(f"folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise OutputError(f"cannot write in {folder}")


__all__ = ["HELP", "LiveLoop", "LiveOptions", "LiveSummary", "NoDisplay", "OpenCVWindow", "StyleLoader",
           "check_output", "display_problem", "draw_overlay"]
