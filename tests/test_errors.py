"""Bad input: a one-line error, a non-zero exit, no traceback, nothing lost or left behind."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import av
import numpy as np
import pytest

from conftest import run_subprocess, snapshot
from media import make_video, probe


@pytest.fixture
def work(tmp_path: Path, clips) -> tuple[Path, Path, Path]:
    """(input folder with a good clip, output folder, the clip)."""
    inp = tmp_path / "in"
    out = tmp_path / "out"
    inp.mkdir()
    out.mkdir()
    clip = inp / "clip.mp4"
    shutil.copy(clips("tone.mp4", audio="aac", frames=25), clip)
    return inp, out, clip


def assert_one_line_error(code: int, err: str, expect: str, exit_code: int = 1) -> None:
    assert code == exit_code, (code, err)
    lines = [ln for ln in err.splitlines() if ln.startswith("restyle-video: error:")]
    assert len(lines) == 1, err
    assert expect in lines[0], lines[0]
    assert "Traceback" not in err


def check(run_cli, folders: list[Path], argv: list[object], expect: str, exit_code: int = 1) -> None:
    before = [snapshot(f) for f in folders]
    code, _, err = run_cli(*argv)
    assert_one_line_error(code, err, expect, exit_code)
    assert [snapshot(f) for f in folders] == before  # nothing written, nothing removed, nothing touched


def test_missing_input(run_cli, work) -> None:
    inp, out, _ = work
    check(run_cli, [inp, out], [inp / "nope.mp4", out / "o.mp4"], "does not exist")


def test_not_a_video(run_cli, work) -> None:
    inp, out, _ = work
    fake = inp / "notes.mp4"
    fake.write_text("hello, I am text\n" * 50)
    check(run_cli, [inp, out], [fake, out / "o.mp4"], "not a video file")


def test_no_video_stream(run_cli, work) -> None:
    inp, out, _ = work
    audio_only = inp / "song.m4a"
    with av.open(str(audio_only), "w", format="mp4") as c:
        s = c.add_stream("aac", rate=48000)
        s.layout = "mono"
        for i in range(20):
            f = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            f.sample_rate, f.pts = 48000, i * 1024
            c.mux(s.encode(f))
        c.mux(s.encode(None))
    check(run_cli, [inp, out], [audio_only, out / "o.mp4"], "has no video stream")


def test_output_is_the_input(run_cli, work, monkeypatch: pytest.MonkeyPatch) -> None:
    inp, out, clip = work
    check(run_cli, [inp], [clip, clip, "--overwrite"], "is the input file")
    link = out / "link.mp4"
    link.symlink_to(clip)
    check(run_cli, [inp, out], [clip, link, "--overwrite"], "is the input file")
    monkeypatch.chdir(out)
    check(run_cli, [inp, out], [clip, Path("..") / "in" / ".." / "in" / "clip.mp4", "--overwrite"], "is the input file")
    hard = out / "hard.mp4"
    os.link(clip, hard)
    check(run_cli, [inp, out], [clip, hard, "--overwrite"], "is the input file")


def test_output_exists(run_cli, work) -> None:
    inp, out, clip = work
    existing = out / "o.mp4"
    existing.write_bytes(b"precious")
    check(run_cli, [inp, out], [clip, existing], "exists; use --overwrite")
    code, _, err = run_cli(clip, existing, "--overwrite", "--quiet")
    assert code == 0, err
    assert probe(existing).frames == 25
    assert sorted(p.name for p in out.iterdir()) == ["o.mp4"]


def test_output_folder_missing(run_cli, work) -> None:
    inp, out, clip = work
    check(run_cli, [inp, out], [clip, out / "sub" / "o.mp4"], "does not exist")


def test_output_folder_not_writable(run_cli, work, tmp_path: Path) -> None:
    inp, out, clip = work
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o555)
        try:
            check(run_cli, [inp, locked], [clip, locked / "o.mp4"], "not writable")
        finally:
            locked.chmod(0o755)
        return
    # root writes anywhere a mode bit forbids; a kernel-owned folder still refuses
    target = Path("/sys")
    try:
        with open(target / "restyle-probe.tmp", "w"):
            pass
        pytest.skip("running as root and /sys is writable here: no folder to test with")
    except OSError:
        pass
    check(run_cli, [inp], [clip, target / "o.mp4"], "not writable")


def test_unknown_output_suffix(run_cli, work) -> None:
    inp, out, clip = work
    check(run_cli, [inp, out], [clip, out / "o.xyz"], "the output must end in one of")


def test_unknown_style(run_cli, work) -> None:
    inp, out, clip = work
    check(run_cli, [inp, out], [clip, out / "o.mp4", "--style", "no_such_style"], "unknown style 'no_such_style'")


def test_model_not_onnx(run_cli, work, tmp_path: Path) -> None:
    inp, out, clip = work
    bad = tmp_path / "model.onnx"
    bad.write_text("not a model")
    check(run_cli, [inp, out], [clip, out / "o.mp4", "--style", bad], "not an ONNX model")


def test_model_with_wrong_input_shape(run_cli, work, tmp_path: Path) -> None:
    from tiny_model import make_tiny_model

    inp, out, clip = work
    gray = make_tiny_model(tmp_path / "gray.onnx", channels_in=1)
    check(run_cli, [inp, out], [clip, out / "o.mp4", "--style", gray], "channels")


def test_usage_error_exits_2(run_cli, work) -> None:
    inp, out, clip = work
    before = snapshot(out)
    code, _, err = run_cli(clip, out / "o.mp4", "--strength", "3")
    assert code == 2 and "error:" in err and "Traceback" not in err
    assert snapshot(out) == before


@pytest.mark.parametrize("args,expect", [
    (["--duration", "nan"], "not a time: 'nan'"),
    (["--duration", "inf"], "not a time: 'inf'"),
    (["--duration", "1e400"], "not a time"),
    (["--start", "nan"], "not a time: 'nan'"),
    (["--start", "0:nan"], "not a time"),
    (["--strength", "nan"], "not a finite number: 'nan'"),
])
def test_times_and_numbers_that_are_not_finite_are_usage_errors(run_cli, work, args: list[str], expect: str) -> None:
    inp, out, clip = work
    before = snapshot(out)
    code, _, err = run_cli(clip, out / "o.mp4", *args)
    assert code == 2 and err.count("\n") == 1, err  # one line, no usage block
    assert "restyle-video: error: argument" in err and expect in err and "Traceback" not in err
    assert snapshot(out) == before


def test_truncated_file_gives_what_decodes(run_cli, tmp_path: Path) -> None:
    full = tmp_path / "full.mkv"  # Matroska streams: a cut file still opens, like an interrupted recording
    make_video(full, frames=50, audio="aac")
    data = full.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    out = tmp_path / "out.mp4"
    code, _, err = run_cli(cut, out, "--quiet")
    assert code == 0, err
    assert "warning:" in err and "truncated" in err
    p = probe(out)
    assert 10 < p.frames < 50 and p.decode_errors == 0
    assert p.audio and p.audio[0].seconds > 0.3


def test_corrupt_file_gives_what_decodes(run_cli, tmp_path: Path) -> None:
    full = tmp_path / "full.avi"
    make_video(full, frames=50, audio="mp2", codec="mpeg4")
    data = bytearray(full.read_bytes())
    rng = np.random.default_rng(1)
    start = int(len(data) * 0.4)
    data[start : start + 3000 : 7] = rng.integers(0, 256, len(range(start, start + 3000, 7)), dtype=np.uint8).tobytes()
    bad = tmp_path / "bad.avi"
    bad.write_bytes(bytes(data))
    out = tmp_path / "out.mp4"
    code, _, err = run_cli(bad, out, "--quiet")
    assert code == 0, err
    assert "warning:" in err and "Traceback" not in err
    p = probe(out)  # the output itself decodes cleanly: damaged audio packets were dropped, not copied
    assert 0 < p.frames <= 50 and p.decode_errors == 0
    assert p.audio and p.audio[0].seconds > 0.3


def test_truncated_mp4_without_index_is_a_clear_error(run_cli, tmp_path: Path) -> None:
    full = tmp_path / "full.mp4"  # the MP4 index (moov) is written last: cut it off and nothing can be read
    make_video(full, frames=30)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(full.read_bytes()[:-2000])
    out = tmp_path / "o"
    out.mkdir()
    check(run_cli, [out], [cut, out / "o.mp4"], "damaged")


@pytest.mark.parametrize("lanes", ["1", "2"])
def test_error_mid_run_leaves_nothing(run_cli, work, monkeypatch: pytest.MonkeyPatch, lanes: str) -> None:
    # The runtime's failure arrives as its error string where the batch ends (on a runtime thread
    # with two lanes); it must stop the run with one line and leave nothing behind.
    from realtime.stylizer import PendingFrames

    inp, out, clip = work
    calls = {"n": 0}
    real = PendingFrames._complete

    def failing(self, outputs, user_data, error):  # noqa: ANN001
        calls["n"] += 1
        if calls["n"] == 12:
            error = "simulated failure in the middle"
        return real(self, outputs, user_data, error)

    monkeypatch.setattr(PendingFrames, "_complete", failing)
    check(run_cli, [inp, out], [clip, out / "o.mp4", "--lanes", lanes], "inference failed: simulated failure in the middle")
    assert 12 <= calls["n"] <= 12 + int(lanes)  # stopped at the failure (a lane may have had one more in flight)


def test_ctrl_c_mid_run_in_process(run_cli, work, monkeypatch: pytest.MonkeyPatch) -> None:
    from realtime.stylizer import Stylizer

    inp, out, clip = work
    real = Stylizer.submit
    calls = {"n": 0}

    def interrupted(self, images):  # noqa: ANN001
        calls["n"] += 1
        if calls["n"] == 10:
            raise KeyboardInterrupt
        return real(self, images)

    monkeypatch.setattr(Stylizer, "submit", interrupted)
    check(run_cli, [inp, out], [clip, out / "o.mp4"], "interrupted", exit_code=130)


@pytest.mark.parametrize("where", ["encoder", "decoder"])
def test_worker_thread_errors_reach_the_main_thread(run_cli, work, monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    # a failing worker must surface as an error, not a hang, and must not leave a partial file
    from realtime.errors import RealtimeError
    from realtime.sinks import FileSink
    from realtime.sources import FileSource

    inp, out, clip = work
    cls, name = (FileSink, "_encode") if where == "encoder" else (FileSource, "_emit")
    real = getattr(cls, name)
    calls = {"n": 0}

    def failing(self, *args):  # noqa: ANN001
        calls["n"] += 1
        if calls["n"] == 5:
            raise RealtimeError(f"simulated {where} failure")
        return real(self, *args)

    monkeypatch.setattr(cls, name, failing)
    check(run_cli, [inp, out], [clip, out / "o.mp4"], f"simulated {where} failure")


@pytest.mark.slow
def test_subprocess_error_has_no_traceback(work) -> None:
    inp, out, clip = work
    before = snapshot(out)
    res = run_subprocess(clip, out / "o.mp4", "--style", "missing_style")
    assert_one_line_error(res.returncode, res.stderr, "unknown style")
    assert snapshot(out) == before


@pytest.mark.parametrize("args,expect", [
    (["--preset", "turbo"], "unknown libx264 preset 'turbo'"),
    (["--codec", "nope"], "unknown video encoder 'nope'"),
    (["--codec", "aac"], "not a video encoder"),
    (["--pix-fmt", "nope"], "unknown pixel format 'nope'"),
    (["--codec", "mpeg4", "--crf", "5"], "--crf applies to"),
    (["--crf", "99"], "outside libx264's range 0..51"),  # x264 would clamp it to 51 without a word
    (["--crf", "nan"], "outside libx264's range 0..51"),
])
def test_bad_encoder_settings_fail_before_work(run_cli, work, args: list[str], expect: str) -> None:
    inp, out, clip = work
    check(run_cli, [inp, out], [clip, out / "o.mp4", *args], expect)


def test_other_encoder_with_a_coarser_time_base(run_cli, clips, tmp_path: Path) -> None:
    # MPEG-4 part 2 cannot take a 1/90000-like time base: timestamps are rounded to 1 ms, with a warning
    from conftest import REPO

    src = REPO / "samples" / "sample.mp4"  # a phone-style 1/90000 time base
    out = tmp_path / "o.mkv"
    code, _, err = run_cli(src, out, "--quiet", "--codec", "mpeg4")
    assert code == 0, err
    assert "rounded to 1 ms" in err
    a, b = probe(src), probe(out)
    assert b.codec == "mpeg4" and b.frames == a.frames
    assert max(abs(x - y) for x, y in zip(a.times, b.times)) <= 0.0005 + 1e-9
