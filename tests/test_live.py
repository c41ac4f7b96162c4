"""restyle-cam without a display: the drop-oldest capture, the live loop with fake cameras and slow or
fast fake stylizers, recording, style switching (also a failing one), key handling, and one-line errors.

Fake cameras are generators paced on the wall clock; fake stylizers sleep. Timing bounds are generous
(loaded CI machines) but far below what a queue that keeps old frames would give.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest

from conftest import in_process
from realtime.camera import MICROS, ClipReader, LatestFrame, parse_size
from realtime.controls import Action, Command, ViewState, command_for_key
from realtime.live import LiveLoop, LiveOptions, NoDisplay, StyleLoader
from realtime.models import Style


class FakeCamera:
    """A camera at ``rate`` frames/s; pixel value = frame number % 256. ``frames``: end after that many;
    ``fail_after``: raise after that many (a driver fault)."""

    description = "fake camera"

    def __init__(self, rate: float = 50.0, frames: int | None = None, size: tuple[int, int] = (64, 48),
                 fail_after: int | None = None) -> None:
        self.rate = rate
        self.frame_size = size
        self.frames = frames
        self.fail_after = fail_after
        self.n = 0
        self.closed = False
        self._stop = threading.Event()
        self._due: float | None = None
        self.times: list[float] = []  # when each frame was delivered

    def read(self) -> np.ndarray | None:
        if self.frames is not None and self.n >= self.frames:
            return None
        if self.fail_after is not None and self.n >= self.fail_after:
            raise RuntimeError("fake camera fault")
        now = time.monotonic()
        interval = 1.0 / self.rate
        # one frame per interval; after a stall (a loaded machine) it goes on at its rate, no burst
        self._due = now if self._due is None or now > self._due + interval else self._due + interval
        delay = self._due - now
        if delay > 0 and self._stop.wait(delay):
            return None
        self.times.append(time.monotonic())
        w, h = self.frame_size
        img = np.full((h, w, 3), self.n % 256, np.uint8)
        self.n += 1
        return img

    def interrupt(self) -> None:
        self._stop.set()

    def close(self) -> None:
        self.closed = True


class SleepyStylizer:
    """Inverts the picture after ``delay`` seconds (a stand-in for a slow or fast model)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.calls = 0

    def stylize(self, images):  # noqa: ANN001, ANN201
        self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        return [255 - im for im in images]


def skip_if_starved(cam: FakeCamera, what: str) -> None:
    """Wall-clock checks need a process that gets the CPU: if even the camera thread missed its slots
    by more than two intervals, the machine is too loaded for them to mean anything."""
    gaps = np.diff(cam.times) if len(cam.times) > 1 else np.zeros(1)
    if gaps.max() > 3.0 / cam.rate:
        pytest.skip(f"machine too loaded for {what}: the fake camera thread stalled {gaps.max() * 1000:.0f} ms "
                    f"(frame interval {1000 / cam.rate:.0f} ms)")


def run_loop(camera: FakeCamera, stylizer, *, duration: float | None = None, **opts) -> tuple[LiveLoop, object]:  # noqa: ANN001
    grab = LatestFrame(camera)
    loop = LiveLoop(grab, stylizer, [], 0, NoDisplay(), LiveOptions(duration=duration, **opts), info=lambda m: None)
    grab.start()
    return loop, loop.run()


# --------------------------------------------------------------------------- drop policy and latency


def test_slow_stylizer_drops_oldest_and_latency_stays_bounded() -> None:
    rate, delay = 50.0, 0.15
    cam = FakeCamera(rate=rate)
    loop, s = run_loop(cam, SleepyStylizer(delay), max_frames=8, duration=60)
    interval = 1.0 / rate
    assert s.frames_shown == 8
    assert s.dropped > 0
    # every captured frame is shown, dropped, or was still in the slot when the run stopped
    assert s.captured - s.frames_shown - s.dropped in (0, 1)
    assert s.dropped > s.captured / 2  # ~7 shown per second out of 50 captured
    # scheduler-independent: the loop was always handed the newest frame captured so far
    assert loop.camera.staleness_max == 0
    skip_if_starved(cam, "the latency bounds")
    # The loop always takes the newest frame: at most about one interval old when taken (a FIFO would
    # hand out frames ever older, ~1.3 s by the end of this run).
    assert s.age_ms_max < 1000 * (2 * interval) + 100
    # shown = model time + that age + drawing; it does not grow over the run
    assert s.latency_ms_max < 1000 * (delay + 2 * interval) + 200
    lat = list(loop.meter.latency_ms)
    half = len(lat) // 2
    assert max(lat[half:]) < 1000 * (delay + 2 * interval) + 200
    assert cam.closed  # the capture thread released the camera


def test_fast_stylizer_drops_nothing() -> None:
    cam = FakeCamera(rate=10.0, frames=12)
    loop, s = run_loop(cam, SleepyStylizer(0.0))
    assert s.end_reason == "fake camera ended"
    assert s.captured == 12
    assert loop.camera.staleness_max == 0
    skip_if_starved(cam, "the no-drop check")
    assert s.dropped == 0
    assert s.frames_shown == 12
    assert s.age_ms_max < 100  # taken as soon as it arrived


class LaneStylizer:
    """Like the real stylizer's lanes: ``submit`` returns at once and the frame is done ``delay`` seconds
    later (a timer thread stands in for the runtime's); inverts the picture."""

    lanes = 2

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.lock = threading.Lock()
        self.in_flight = self.max_in_flight = 0

    def submit(self, images):  # noqa: ANN001, ANN201
        job = FakeJob([255 - im for im in images])
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

        def finish() -> None:
            with self.lock:
                self.in_flight -= 1
            job.event.set()

        threading.Timer(self.delay, finish).start()
        return job


class FakeJob:
    model_seconds = 0.0

    def __init__(self, frames) -> None:  # noqa: ANN001
        self.frames, self.event = frames, threading.Event()

    def done(self) -> bool:
        return self.event.is_set()

    def wait(self) -> None:
        self.event.wait()

    def result(self):  # noqa: ANN201
        self.event.wait()
        return self.frames


def test_lanes_keep_two_frames_in_flight_and_show_them_in_order() -> None:
    cam = FakeCamera(rate=50.0, frames=30)
    stylizer = LaneStylizer(delay=0.05)
    display = ScriptedDisplay(lambda d: -1)
    grab = LatestFrame(cam)
    loop = LiveLoop(grab, stylizer, [], 0, display, LiveOptions(duration=60), state=ViewState(overlay=False),
                    info=lambda m: None)
    grab.start()
    s = loop.run()
    numbers = [255 - int(bgr[0, 0, 0]) for bgr in display.shown]  # the fake camera's frame numbers
    assert numbers == sorted(set(numbers)) and len(numbers) == s.frames_shown
    # the camera ended with frames still in flight: they were shown, not lost
    assert s.captured - s.frames_shown - s.dropped == 0
    assert numbers[-1] == cam.n - 1 or s.dropped > 0
    skip_if_starved(cam, "the in-flight count")  # a frame every 20 ms, each 50 ms in the network
    assert stylizer.max_in_flight == 2  # the next frame went in while one was in the network


def test_capture_error_is_reraised_in_main_thread_and_thread_stops() -> None:
    cam = FakeCamera(rate=50.0, fail_after=3)
    grab = LatestFrame(cam)
    loop = LiveLoop(grab, SleepyStylizer(), [], 0, NoDisplay(), LiveOptions(duration=10), info=lambda m: None)
    grab.start()
    with pytest.raises(RuntimeError, match="fake camera fault"):
        loop.run()
    assert grab._thread is not None and not grab._thread.is_alive()
    assert cam.closed


def test_latest_frame_counts_drops_without_consumer() -> None:
    cam = FakeCamera(rate=100.0, frames=10)
    with LatestFrame(cam) as grab:
        deadline = time.monotonic() + 10
        while grab.ended is None and time.monotonic() < deadline:
            time.sleep(0.02)
        last = grab.get(timeout=0.5)
    assert grab.captured == 10
    assert grab.dropped == 9  # all but the newest were replaced unseen
    assert last is not None and last.index == 9 and int(last.image[0, 0, 0]) == 9
    assert last.time_base == MICROS


# --------------------------------------------------------------------------- recording


def _video_times(path: Path) -> tuple[list[float], tuple[int, int]]:
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        times = [float(f.pts * f.time_base) for f in c.decode(vs)]
        return times, (vs.codec_context.width, vs.codec_context.height)


def test_recording_is_playable_with_capture_timestamps(tmp_path: Path) -> None:
    rate = 25.0
    out = tmp_path / "live.mp4"
    cam = FakeCamera(rate=rate, frames=20)  # the "camera" ends mid-run: the file must still be complete
    loop, s = run_loop(cam, SleepyStylizer(0.0), output=out, compare=True)
    assert s.recordings == [str(out)] and out.is_file()
    assert not list(tmp_path.glob(".*partial*"))
    times, size = _video_times(out)
    assert size == (128, 48)  # compare view: original | stylized
    assert len(times) == s.frames_shown
    steps = np.diff(times)
    assert (steps > 0).all()
    skip_if_starved(cam, "the timestamp spacing check")
    # capture clock: frames 1/25 s apart (drops would show up as whole multiples)
    assert abs(float(np.median(steps)) - 1 / rate) < 0.25 / rate
    assert abs(times[-1] - times[0] - (s.frames_shown - 1) / rate) < 0.5 * (s.frames_shown - 1) / rate


def test_recording_finalized_when_camera_fails(tmp_path: Path) -> None:
    out = tmp_path / "fault.mkv"
    cam = FakeCamera(rate=25.0, fail_after=8)
    grab = LatestFrame(cam)
    loop = LiveLoop(grab, SleepyStylizer(), [], 0, NoDisplay(), LiveOptions(output=out, duration=10), info=lambda m: None)
    grab.start()
    with pytest.raises(RuntimeError):
        loop.run()
    times, _ = _video_times(out)
    assert len(times) == loop.summary.frames_shown >= 1


# --------------------------------------------------------------------------- styles


class ScriptedDisplay(NoDisplay):
    """Presses keys: ``script(display)`` returns a key code (or -1) at every poll."""

    def __init__(self, script) -> None:  # noqa: ANN001
        self.script = script
        self.loop: LiveLoop | None = None
        self.shown: list[np.ndarray] = []
        self.fullscreen: list[bool] = []

    def show(self, bgr: np.ndarray) -> None:
        self.shown.append(bgr)

    def poll_key(self, wait_ms: int) -> int:
        return self.script(self)

    def set_fullscreen(self, on: bool) -> None:
        self.fullscreen.append(on)


def _style_loop(styles: list[Style], script, tmp_path: Path) -> LiveLoop:  # noqa: ANN001
    from realtime.stylizer import Stylizer

    def factory(style: Style) -> Stylizer:
        s = Stylizer(style.path, device="cpu", threads=1)
        s.warmup(48, 64)
        return s

    display = ScriptedDisplay(script)
    grab = LatestFrame(FakeCamera(rate=30.0))
    loop = LiveLoop(grab, factory(styles[0]), styles, 0, display, LiveOptions(duration=20, save_dir=tmp_path),
                    loader_factory=factory, info=lambda m: None)
    display.loop = loop
    grab.start()
    return loop


def _script(first_key: str):  # noqa: ANN202
    """Press ``first_key`` on the 2nd frame, then q once the load finished and 3 more frames showed."""
    state = {"after": None}

    def script(d: ScriptedDisplay) -> int:
        n = len(d.shown)
        if n == 2 and state["after"] is None:
            state["after"] = -1
            return ord(first_key)
        if state["after"] == -1 and d.loop.loader is not None and not d.loop.loader.busy:
            state["after"] = n
        if state["after"] not in (None, -1) and n >= state["after"] + 3:
            return ord("q")
        return -1

    return script


def test_switch_style_in_background(tmp_path: Path, models_dir: Path) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from tiny_model import make_tiny_model

    other = make_tiny_model(tmp_path / "other.onnx", style_name="other", seed=5)
    styles = [Style("tiny", models_dir / "tiny.onnx", "extra"), Style("other", other, "file")]
    loop = _style_loop(styles, _script("n"), tmp_path)
    s = loop.run()
    assert s.end_reason == "quit"
    assert s.style == "other" and loop.style_index == 1
    shown = loop.display.shown
    assert not np.array_equal(shown[0], shown[-1])  # other weights, other picture (the input is flat)


def test_broken_style_keeps_current_and_says_so(tmp_path: Path, models_dir: Path) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_text("not a model")
    styles = [Style("tiny", models_dir / "tiny.onnx", "extra"), Style("broken", broken, "file")]
    loop = _style_loop(styles, _script("2"), tmp_path)
    before = loop.stylizer
    s = loop.run()
    assert s.end_reason == "quit"
    assert loop.stylizer is before and s.style == "tiny"
    assert len(s.style_errors) == 1 and "broken" in s.style_errors[0]
    assert loop.state.style_index == 0  # selection falls back to the running style
    assert any("failed to load" in text for _, text in loop.messages)  # shown in the overlay
    assert s.frames_shown >= 5  # the picture kept going


def test_style_loader_reraises_bugs() -> None:
    def factory(style: Style):  # noqa: ANN202
        raise ZeroDivisionError("bug")

    loader = StyleLoader(factory)
    loader.request(Style("x", Path("x.onnx"), "file"))
    deadline = time.monotonic() + 10
    with pytest.raises(ZeroDivisionError):
        while time.monotonic() < deadline:
            loader.poll()
            time.sleep(0.01)
    loader.close()


def test_keys_screenshot_toggles_and_overlay(tmp_path: Path) -> None:
    keys = iter([ord("c"), ord("-"), ord("-"), ord("h"), ord("f"), ord("s"), ord(" "), 27])

    def script(d: ScriptedDisplay) -> int:
        return next(keys, -1) if d.shown else -1

    display = ScriptedDisplay(script)
    grab = LatestFrame(FakeCamera(rate=30.0, size=(64, 48)))
    loop = LiveLoop(grab, SleepyStylizer(), [], 0, display, LiveOptions(duration=20, save_dir=tmp_path), info=lambda m: None)
    display.loop = loop
    grab.start()
    s = loop.run()
    assert s.end_reason == "quit"
    st = loop.state
    assert st.preserve_colour and st.strength == 0.8 and not st.overlay and st.fullscreen and st.smooth
    assert display.fullscreen == [True]
    assert len(s.screenshots) == 1
    import cv2

    png = cv2.imread(s.screenshots[0])
    assert png.shape == (48, 64, 3)
    # no overlay in the screenshot; the picture is the blend 0.8·inverted + 0.2·original of a flat frame
    assert float(png.std()) < 3.0


def test_overlay_darkens_and_writes(tmp_path: Path) -> None:
    from realtime.live import draw_overlay

    img = np.full((120, 200, 3), 200, np.uint8)
    out = draw_overlay(img, ["style x", "10.0 fps"])
    assert out.shape == img.shape and (img == 200).all()  # drawn on a copy
    corner = out[:30, :60]
    assert corner.min() < 100 and corner.max() > 200  # dark box, white text


# --------------------------------------------------------------------------- pure key handling


def test_command_for_key() -> None:
    assert command_for_key(-1) is None
    assert command_for_key(ord("x")) is None
    assert command_for_key(ord("q")) == Command(Action.QUIT)
    assert command_for_key(27) == Command(Action.QUIT)
    assert command_for_key(ord("1")) == Command(Action.SELECT_STYLE, 0)
    assert command_for_key(ord("9")) == Command(Action.SELECT_STYLE, 8)
    assert command_for_key(ord(" ")) == Command(Action.SCREENSHOT)
    assert command_for_key(ord("=")) == command_for_key(ord("+")) == Command(Action.STRENGTH_UP)
    assert command_for_key(0x100000 | ord("n")) == Command(Action.NEXT_STYLE)  # modifier bits


def test_view_state_apply() -> None:
    s = ViewState(style_index=0, n_styles=3)
    assert s.apply(Command(Action.PREV_STYLE)).style_index == 2
    assert s.apply(Command(Action.NEXT_STYLE)).apply(Command(Action.NEXT_STYLE)).apply(Command(Action.NEXT_STYLE)).style_index == 0
    assert s.apply(Command(Action.SELECT_STYLE, 2)).style_index == 2
    assert s.apply(Command(Action.SELECT_STYLE, 5)) == s  # no 6th style: ignored
    up = s.apply(Command(Action.STRENGTH_UP))
    assert up.strength == 1.0
    down = s
    for _ in range(12):
        down = down.apply(Command(Action.STRENGTH_DOWN))
    assert down.strength == 0.0
    assert s.apply(Command(Action.TOGGLE_SMOOTH)).smooth is True
    assert s.apply(Command(Action.SCREENSHOT)) == s


def test_parse_size() -> None:
    assert parse_size("640x480") == (640, 480)
    for bad in ("640", "x480", "0x0", "640x480x3", "99999x10"):
        with pytest.raises(ValueError):
            parse_size(bad)


# --------------------------------------------------------------------------- file as camera


def test_clip_reader_paces_and_loops(clips) -> None:  # noqa: ANN001
    clip = clips("cam10.mp4", size=(64, 48), frames=10, fps=25)
    reader = ClipReader(clip, loop=True)
    t0 = time.monotonic()
    frames = [reader.read() for _ in range(15)]  # 1.5 passes
    elapsed = time.monotonic() - t0
    reader.close()
    assert all(f is not None and f.shape == (48, 64, 3) for f in frames)
    assert elapsed >= 14 / 25 - 0.05  # paced at the clip's rate, across the loop point
    once = ClipReader(clip, loop=False)
    got = 0
    while once.read() is not None:
        got += 1
    once.close()
    assert got == 10


# --------------------------------------------------------------------------- command line


@pytest.fixture
def cam_cli(capsys: pytest.CaptureFixture[str]):
    from realtime.cli_cam import main

    return in_process(main, capsys)


def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("restyle-cam: error: ")
    assert "Traceback" not in err
    return lines[0]


def test_cli_no_display(cam_cli, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    import sys

    if not sys.platform.startswith("linux"):
        pytest.skip("display detection by environment is Linux-only")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    code, _, err = cam_cli("--camera", "0")
    line = _one_error_line(err)
    assert code != 0 and "--no-window" in line and "restyle-video" in line


def test_cli_bad_inputs(cam_cli, tmp_path: Path) -> None:  # noqa: ANN001
    code, _, err = cam_cli("--camera", "7", "--no-window")
    line = _one_error_line(err)
    assert code == 1 and "camera 7" in line and ("cameras that open" in line or "no camera opens" in line)
    code, _, err = cam_cli("--camera", tmp_path / "missing.mov", "--no-window")
    assert code == 1 and "missing.mov" in _one_error_line(err)
    code, _, err = cam_cli("--size", "big", "--no-window")
    assert code == 2 and "--size" in _one_error_line(err)
    code, _, err = cam_cli("--batch", "4", "--no-window")
    assert code == 1 and "--batch" in _one_error_line(err)
    code, _, err = cam_cli("--style", "nosuchstyle", "--no-window")
    assert code == 1 and "nosuchstyle" in _one_error_line(err)
    code, _, err = cam_cli("--no-window", "--output", tmp_path / "x.gif")
    assert code == 1 and ".gif" in _one_error_line(err)


def test_cli_records_without_window(cam_cli, clips, tmp_path: Path) -> None:  # noqa: ANN001
    clip = clips("cam_cli.mp4", size=(80, 60), frames=15, fps=25)
    out = tmp_path / "cam.mp4"
    code, stdout, err = cam_cli("--camera", clip, "--no-window", "--output", out, "--size", "64x48", "--mirror",
                                "--json", "--quiet")
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["end_reason"] == "cam_cli.mp4 ended"
    assert summary["recordings"] == [str(out)]
    times, size = _video_times(out)
    assert size == (64, 48) and len(times) == summary["frames_shown"] >= 1
    assert all(b > a for a, b in zip(times, times[1:]))
    code, _, err = cam_cli("--camera", clip, "--no-window", "--output", out)
    assert code == 1 and "--overwrite" in _one_error_line(err)


def test_cli_stylizes_at_the_styles_stroke_scale(cam_cli, clips, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    """As restyle-video: frames go to the network at the style's trained short side (here 24 px) and
    come back at the camera's size; --full-size sends every pixel."""
    from realtime import modelmeta
    from realtime import stylizer as stylizer_module
    from tiny_model import make_tiny_model

    model = make_tiny_model(tmp_path / "stroked.onnx", metadata={modelmeta.TRAINED_SHORT_SIDE: "24"})
    clip = clips("cam_stroke.mp4", size=(80, 60), frames=6, fps=25)
    shapes: list[tuple[int, int]] = []
    real = stylizer_module.Stylizer.submit

    def spy(self, images):  # noqa: ANN001, ANN202
        shapes.extend(i.shape[:2] for i in images)
        return real(self, images)

    monkeypatch.setattr(stylizer_module.Stylizer, "submit", spy)
    for extra, expect in (([], (24, 32)), (["--full-size"], (60, 80))):
        shapes.clear()
        out = tmp_path / f"cam{len(extra)}.mp4"
        code, _, err = cam_cli("--camera", clip, "--no-window", "--output", out, "--style", model, "--quiet", *extra)
        assert code == 0, err
        assert shapes and set(shapes) == {expect}
        assert _video_times(out)[1] == (80, 60)
