"""Presentation times as a player shows them: B-frames whose container stored decode times, files that
start at a large timestamp, AVI's constant rate; and the check for files that end early, which must
neither cry wolf on intact files nor stay silent on a cut one."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from media import _picture, make_video, probe


def warnings_in(err: str) -> list[str]:
    return [ln for ln in err.splitlines() if "warning:" in ln]


def container_start(path: Path) -> float:
    """The time a player shows as 0 (FFmpeg's start time of the file: its earliest stream)."""
    with av.open(str(path)) as c:
        return c.start_time / 1_000_000


def decoded_times(path: Path) -> list[float]:
    """The video frames' presentation times in the order the decoder gives the frames out."""
    with av.open(str(path)) as c:
        return [float(f.pts * f.time_base) for f in c.decode(video=0)]


# ---------------------------------------------------------------- B-frames stored with pts = dts


@pytest.mark.parametrize("suffix", [".mkv", ".ts"])
def test_b_frames_stored_with_decode_times_get_their_presentation_times(run_cli, tmp_path: Path, suffix: str) -> None:
    src = tmp_path / f"ptsdts{suffix}"
    true_times = make_video(src, frames=30, bframes=3, pts_from_dts=True, audio="aac")
    stored = decoded_times(src)
    assert stored != sorted(stored)  # the input really decodes with out-of-order times
    out = tmp_path / "out.mp4"
    code, _, err = run_cli(src, out, "--quiet", "--strength", "0")
    assert code == 0, err
    assert warnings_in(err) == []
    b = probe(out)
    assert b.frames == 30
    # What a player shows: the stored times put in presentation order (the decoder's output order),
    # counted from the file's start. They are the encoder's true times, evenly 40 ms apart.
    origin = container_start(src)
    want = [t - origin for t in sorted(stored)]
    assert b.times == pytest.approx(want, abs=float(b.time_base) / 2 + 1e-9)
    assert np.diff(b.times) == pytest.approx(np.diff(true_times), abs=1e-6)
    # and each frame is the picture that belongs at that time (frames were not merely renumbered)
    with av.open(str(out)) as c:
        shown = [f.to_ndarray(format="rgb24").astype(int) for f in c.decode(video=0)]
    for i in (0, 7, 13, 29):
        errors = [np.abs(shown[i] - _picture(j, 64, 48)).mean() for j in range(30)]
        assert int(np.argmin(errors)) == i


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_b_frames_with_true_times_keep_them(run_cli, tmp_path: Path, suffix: str) -> None:
    src = tmp_path / f"b{suffix}"
    make_video(src, frames=30, bframes=3, audio="aac")
    out = tmp_path / "out.mp4"
    code, _, err = run_cli(src, out, "--quiet")
    assert code == 0, err
    a, b = probe(src), probe(out)
    assert b.frames == 30 and warnings_in(err) == []
    assert b.times == pytest.approx(a.times, abs=float(b.time_base) / 2 + 1e-9)


# ---------------------------------------------------------------- files that start late


@pytest.mark.parametrize("name,start,audio", [("late.ts", 3600.0, "mp2"), ("late.mkv", 600.0, "aac")])
def test_a_file_starting_late_plays_from_zero(run_cli, tmp_path: Path, name: str, start: float, audio: str) -> None:
    src = tmp_path / name
    make_video(src, frames=30, start=start, audio=audio)
    origin = container_start(src)
    assert origin > start - 1  # it really starts late
    out = tmp_path / "out.mp4"
    code, _, err = run_cli(src, out, "--quiet")
    assert code == 0, err
    assert warnings_in(err) == []  # an intact file: no "truncated or damaged?"
    a, b = probe(src), probe(out)
    # a video that starts after the audio (10 ms in MPEG-TS here) is placed by an MP4 edit list, whose
    # times are in milliseconds; the intervals are exact
    assert b.times == pytest.approx([t - origin for t in a.times], abs=1e-3)
    assert np.diff(b.times) == pytest.approx(np.diff(a.times), abs=float(b.time_base) + 1e-9)
    with av.open(str(out)) as c:
        assert c.duration / 1_000_000 < 2  # no hour of empty edit before the picture
        assert abs(c.start_time / 1_000_000) < 0.05
        audio_start = c.streams.audio[0].start_time * c.streams.audio[0].time_base
    with av.open(str(src)) as c:
        s = c.streams.audio[0]
        in_audio_start = float(s.start_time * s.time_base) - origin
    assert abs(float(audio_start) - in_audio_start) < 0.03  # audio where it was against the video
    assert b.audio and abs(b.audio[0].seconds - a.audio[0].seconds) < 0.05


@pytest.mark.parametrize("name,start", [("late.ts", 3600.0), ("late.mkv", 600.0)])
def test_start_and_duration_count_from_the_files_start(run_cli, tmp_path: Path, name: str, start: float) -> None:
    src = tmp_path / name
    make_video(src, frames=30, start=start, audio="mp2" if name.endswith(".ts") else "aac")
    origin = container_start(src)
    out = tmp_path / "cut.mp4"
    code, _, err = run_cli(src, out, "--quiet", "--start", "0.4", "--duration", "0.4")
    assert code == 0, err
    shown = [t - origin for t in probe(src, audio=False).times]
    kept = [t for t in shown if 0.4 - 1e-3 <= t < 0.8 - 1e-3]
    b = probe(out)
    assert len(kept) == 10
    assert b.times == pytest.approx([t - kept[0] for t in kept], abs=float(b.time_base) / 2 + 1e-9)
    assert b.audio and abs(b.audio[0].seconds - 0.4) < 0.06


# ---------------------------------------------------------------- AVI: one frame per tick


def _source_of(frame: np.ndarray, size: tuple[int, int]) -> int:
    """Which input picture an output frame shows (made with --strength 0, so the input's own): found by
    where the white square of media._picture is (it moves 3 pixels a frame), which survives lossy coding."""
    w, h = size
    s = max(2, min(w, h) // 5)
    top = frame[: s // 2].astype(int).min(axis=2).min(axis=0)  # white only where the square is
    x0 = int(np.argmax(top > 200))
    return x0 // 3


def test_avi_output_of_variable_frame_rate_keeps_the_timing(run_cli, tmp_path: Path) -> None:
    size, n = (96, 64), 24
    src = tmp_path / "vfr.mp4"
    times = make_video(src, size=size, frames=n, vfr=True, audio="mp2")
    with av.open(str(src)) as c:
        rate = Fraction(c.streams.video[0].average_rate)
    out = tmp_path / "out.avi"
    # MPEG-4 part 2, AVI's own codec: FFmpeg reads H.264 in AVI one tick late (it cannot tell its delay)
    code, _, err = run_cli(src, out, "--quiet", "--strength", "0", "--codec", "mpeg4")
    assert code == 0, err
    lines = warnings_in(err)
    assert len(lines) == 1 and "constant frame rate" in lines[0]  # said once
    with av.open(str(out)) as c:
        vs = c.streams.video[0]
        assert Fraction(vs.average_rate) == rate
        got = [(float(f.pts * f.time_base), _source_of(f.to_ndarray(format="rgb24"), size)) for f in c.decode(vs)]
        a = c.streams.audio[0]
        audio_start = float(a.start_time * a.time_base)
    tick = 1 / float(rate)
    # one frame on every tick from 0, none missing, none doubled
    assert [t for t, _ in got] == pytest.approx([k * tick for k in range(len(got))], abs=1e-6)
    # each tick shows the input frame nearest to it among those that fall on it, else the one before
    want: list[int] = []
    for k in range(len(got)):
        on_tick = [i for i, t in enumerate(times) if round(t / tick) == k]
        want.append(min(on_tick, key=lambda i: abs(times[i] - k * tick)) if on_tick else want[-1])
    assert [source for _, source in got] == want
    last = times[-1] + 0.025  # the last input frame is shown for 25 ms (make_video's steps)
    assert abs(len(got) * tick - last) <= tick
    assert abs(audio_start) < 1e-6  # audio starts with the video, not late


def test_avi_output_has_no_b_frames(run_cli, tmp_path: Path) -> None:
    src = tmp_path / "b.mkv"
    make_video(src, frames=30, bframes=3)
    out = tmp_path / "out.avi"
    code, _, err = run_cli(src, out, "--quiet")  # the default encoder, x264, would use B-frames
    assert code == 0, err
    assert warnings_in(err) == []  # a constant-rate input needs nothing repeated or dropped
    from av.video.frame import PictureType

    with av.open(str(out)) as c:
        kinds = {PictureType(f.pict_type).name for f in c.decode(video=0)}
    with av.open(str(out)) as c:
        packets = [p for p in c.demux(video=0) if p.size]
    assert len(packets) == 30  # one index entry per frame
    assert kinds <= {"I", "P"}, kinds


# ---------------------------------------------------------------- files that end early


@pytest.mark.parametrize(
    "name,kwargs",
    [
        ("late.mkv", dict(start=600.0, audio="aac")),
        ("bframes.mkv", dict(bframes=3, audio="aac")),  # presentation times go back and forth in the file
        ("ptsdts.mkv", dict(bframes=3, pts_from_dts=True, audio="aac")),
        ("mpeg4mp3.avi", dict(codec="mpeg4", audio="mp3")),  # its index holds an empty "repeat" entry
        ("vfr.mkv", dict(vfr=True, audio="aac")),
        ("vfr.mp4", dict(vfr=True, audio="aac")),
        ("opus.webm", dict(codec="libvpx", audio="libopus")),
    ],
)
def test_intact_files_get_no_warning(run_cli, tmp_path: Path, name: str, kwargs: dict) -> None:
    src = tmp_path / name
    make_video(src, frames=30, **kwargs)
    out = tmp_path / "out.mkv"
    code, _, err = run_cli(src, out, "--quiet")
    assert code == 0, err
    assert warnings_in(err) == []


@pytest.mark.parametrize("keep", [0.9, 0.97])
def test_a_cut_matroska_file_is_reported_once(run_cli, tmp_path: Path, keep: float) -> None:
    full = tmp_path / "full.mkv"  # a recording interrupted near its end: the header still has the length
    make_video(full, frames=50, audio="aac")
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(full.read_bytes()[: int(full.stat().st_size * keep)])
    a = probe(cut)
    assert a.frames < 50 or a.audio[0].seconds < 1.98  # something really is missing
    out = tmp_path / "out.mp4"
    code, _, err = run_cli(cut, out, "--quiet")
    assert code == 0, err
    lines = warnings_in(err)
    assert len(lines) == 1, err
    assert "truncated" in lines[0] and "of 2.00s" in lines[0]
    assert probe(out).frames == a.frames  # what there is, is kept
