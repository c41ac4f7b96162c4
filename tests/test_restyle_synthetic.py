"""restyle-video on synthetic clips: every frame kept with its timestamp, display size kept, audio kept."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from media import VideoProbe, probe


def assert_same_video(src: VideoProbe, out: VideoProbe, *, offset: float = 0.0) -> None:
    """Frame count, timestamps (within one tick of the output time base) and display size."""
    assert out.frames == src.frames, (src.frames, out.frames)
    tick = float(out.time_base)
    worst = max(abs((a - offset) - b) for a, b in zip(src.times, out.times))
    assert worst <= tick + 1e-9, f"timestamps moved by {worst:.6f}s (tick {tick})"
    assert out.display == src.display
    assert out.rotation == 0  # written upright
    assert out.decode_errors == 0


def assert_same_audio(src: VideoProbe, out: VideoProbe) -> None:
    assert len(out.audio) == len(src.audio) >= 1
    for a, b in zip(src.audio, out.audio):
        assert abs(a.seconds - b.seconds) <= 0.05, (a.seconds, b.seconds)
        assert b.rms > 1e-4 and b.rms >= 0.5 * a.rms, (a.rms, b.rms)


def test_sine_tone_audio_is_copied(clips, run_cli, tmp_path: Path) -> None:
    src = clips("tone.mp4", audio="aac", frames=25)
    out = tmp_path / "out.mp4"
    code, stdout, err = run_cli(src, out, "--quiet", "--json")
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["frames"] == 25 and summary["audio"][0]["mode"] == "copy"
    assert summary["device"] == "cpu" and summary["provider"] == "CPUExecutionProvider"
    a, b = probe(src), probe(out)
    assert_same_video(a, b)
    assert_same_audio(a, b)
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]  # no temporary left behind
    # The output gets ordinary new-file permissions, not the temporary file's private 0600.
    umask = os.umask(0o022)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask


def test_audio_the_container_cannot_take_is_reencoded_to_aac(clips, run_cli, tmp_path: Path) -> None:
    src = clips("mulaw.mov", audio="pcm_mulaw", frames=20)
    out = tmp_path / "out.mp4"
    code, stdout, err = run_cli(src, out, "--quiet", "--json")
    assert code == 0, err
    assert json.loads(stdout)["audio"][0]["mode"] == "aac"
    a, b = probe(src), probe(out)
    assert b.audio[0].codec == "aac"
    assert_same_video(a, b)
    assert_same_audio(a, b)


def test_variable_frame_rate_keeps_its_timing(clips, run_cli, tmp_path: Path) -> None:
    src = clips("vfr.mp4", vfr=True, frames=30, audio="aac")
    out = tmp_path / "vfr_out.mp4"
    code, _, err = run_cli(src, out, "--quiet")
    assert code == 0, err
    a, b = probe(src), probe(out)
    steps = np.diff(a.times)
    assert steps.max() > 2 * steps.min()  # the input really is irregular
    assert_same_video(a, b)
    assert_same_audio(a, b)


def test_matroska_output_keeps_intervals(clips, run_cli, tmp_path: Path) -> None:
    # Matroska cannot store the negative timestamp of AAC's priming packet, so FFmpeg's muxer shifts
    # every stream by it (~21 ms, A/V sync kept, as ffmpeg itself does). Intervals must be exact.
    src = clips("vfr.mp4", vfr=True, frames=30, audio="aac")
    out = tmp_path / "vfr_out.mkv"
    code, _, err = run_cli(src, out, "--quiet")
    assert code == 0, err
    a, b = probe(src), probe(out)
    assert b.frames == a.frames
    shift = b.times[0] - a.times[0]
    assert 0 <= shift <= 0.05
    assert max(abs(x + shift - y) for x, y in zip(a.times, b.times)) <= float(b.time_base) + 1e-9
    assert_same_audio(a, b)


def test_odd_size_exact_with_444(clips, run_cli, tmp_path: Path) -> None:
    src = clips("odd.mp4", size=(641, 361), frames=5, pix_fmt="yuv444p")
    out = tmp_path / "odd.mp4"
    code, _, err = run_cli(src, out, "--quiet", "--pix-fmt", "yuv444p")
    assert code == 0, err
    a, b = probe(src, audio=False), probe(out, audio=False)
    assert a.display == (641, 361)
    assert_same_video(a, b)


@pytest.mark.parametrize("size", [(1, 1), (1, 40), (41, 1)])
def test_one_pixel_side_exact_with_444_and_no_warning(clips, run_cli, tmp_path: Path, size: tuple[int, int]) -> None:
    src = clips(f"px{size[0]}x{size[1]}.mkv", size=size, frames=4, pix_fmt="yuv444p")
    out = tmp_path / "o.mp4"
    code, _, err = run_cli(src, out, "--quiet", "--pix-fmt", "yuv444p")
    assert code == 0, err
    assert "warning" not in err
    assert_same_video(probe(src, audio=False), probe(out, audio=False))


@pytest.mark.parametrize("mode", ["flow", "flow-hq"])
@pytest.mark.parametrize("size", [(2000, 16), (1, 1)])
def test_flow_smoothing_on_a_thin_or_tiny_video(clips, run_cli, tmp_path: Path, mode: str, size: tuple[int, int]) -> None:
    src = clips(f"thin{size[0]}x{size[1]}.mkv", size=size, frames=6, pix_fmt="yuv444p")
    out = tmp_path / "o.mkv"
    code, _, err = run_cli(src, out, "--quiet", "--pix-fmt", "yuv444p", "--smooth", mode)
    assert code == 0 and "Traceback" not in err, err
    assert_same_video(probe(src, audio=False), probe(out, audio=False))


def test_odd_size_in_420_is_padded_by_one_with_a_warning(clips, run_cli, tmp_path: Path) -> None:
    # 4:2:0 cannot store an odd side (H.264 crops in 2-pixel steps): we pad one edge row/column and say so
    src = clips("odd.mp4", size=(641, 361), frames=5, pix_fmt="yuv444p")
    out = tmp_path / "odd420.mp4"
    code, _, err = run_cli(src, out, "--quiet", "--strength", "0")
    assert code == 0, err
    assert "odd side" in err and "642x362" in err
    b = probe(out, audio=False)
    assert (b.width, b.height) == (642, 362) and b.frames == 5
    import av

    with av.open(str(src)) as c_in, av.open(str(out)) as c_out:
        fa = next(c_in.decode(video=0)).to_ndarray(format="rgb24").astype(int)
        fb = next(c_out.decode(video=0)).to_ndarray(format="rgb24").astype(int)
    assert np.abs(fb[:361, :641] - fa).mean() < 6  # the picture is where it was (strength 0 = input)
    assert np.abs(fb[:361, 641] - fa[:, 640]).mean() < 8  # the added column repeats the edge


@pytest.mark.parametrize("rotation", [90, -90])
def test_rotation_metadata_is_applied(clips, run_cli, tmp_path: Path, rotation: int) -> None:
    src = clips(f"rot{rotation}.mp4", size=(64, 48), frames=12, rotation=rotation, audio="aac")
    out = tmp_path / "rot.mp4"
    code, _, err = run_cli(src, out, "--quiet", "--strength", "0")
    assert code == 0, err
    a, b = probe(src), probe(out)
    assert a.rotation == rotation % 360 and a.display == (48, 64)
    assert_same_video(a, b)
    assert_same_audio(a, b)
    import av

    with av.open(str(src)) as c_in, av.open(str(out)) as c_out:
        raw = next(c_in.decode(video=0)).to_ndarray(format="rgb24").astype(int)
        got = next(c_out.decode(video=0)).to_ndarray(format="rgb24").astype(int)
    want = np.rot90(raw, k=rotation // 90)  # what a player shows: the display matrix applied
    assert got.shape == want.shape
    assert np.abs(got - want).mean() < 6
    assert np.abs(got - np.rot90(raw, k=-rotation // 90)).mean() > 20  # and not the other way round


def test_audio_as_stream_zero(clips, run_cli, tmp_path: Path) -> None:
    src = clips("afirst.mp4", audio="aac", audio_first=True, frames=20)
    a = probe(src)
    assert a.video_index == 1
    out = tmp_path / "afirst_out.mp4"
    code, _, err = run_cli(src, out, "--quiet")
    assert code == 0, err
    b = probe(out)
    assert_same_video(a, b)
    assert_same_audio(a, b)


def test_start_and_duration_trim_video_and_audio(clips, run_cli, tmp_path: Path) -> None:
    src = clips("long_tone.mp4", audio="aac", frames=50)  # 2 s
    out = tmp_path / "cut.mp4"
    code, stdout, err = run_cli(src, out, "--quiet", "--start", "0.5", "--duration", "1", "--json")
    assert code == 0, err
    a, b = probe(src), probe(out)
    kept = [t for t in a.times if 0.5 - 1e-9 <= t < 1.5 - 1e-9]
    assert b.frames == len(kept) == 25
    assert abs(b.times[0]) < 1e-9  # the cut starts at zero
    assert max(abs((x - kept[0]) - y) for x, y in zip(kept, b.times)) <= float(b.time_base) + 1e-9
    assert abs(b.audio[0].seconds - 1.0) <= 0.05 and b.audio[0].rms > 0.1


def test_max_size_strength_preserve_color(clips, run_cli, tmp_path: Path) -> None:
    src = clips("big.mp4", size=(256, 144), frames=6)
    full = tmp_path / "full.mp4"
    code, stdout, err = run_cli(src, full, "--quiet", "--json", "--max-size", "64", "--crf", "10", "--preset", "ultrafast")
    assert code == 0, err
    s = json.loads(stdout)
    assert (s["width"], s["height"]) == (256, 144) and (s["process_width"], s["process_height"]) == (64, 36)
    assert probe(full, audio=False).display == (256, 144)

    import av

    def first(path: Path) -> np.ndarray:
        with av.open(str(path)) as c:
            return next(c.decode(video=0)).to_ndarray(format="rgb24").astype(int)

    original = first(src)
    none = tmp_path / "none.mp4"
    assert run_cli(src, none, "--quiet", "--strength", "0", "--crf", "10")[0] == 0
    assert np.abs(first(none) - original).mean() < 4  # strength 0: the input comes back
    half = tmp_path / "half.mp4"
    assert run_cli(src, half, "--quiet", "--strength", "0.5", "--crf", "10")[0] == 0
    styled = tmp_path / "styled.mp4"
    assert run_cli(src, styled, "--quiet", "--crf", "10")[0] == 0
    d_half, d_full = np.abs(first(half) - original).mean(), np.abs(first(styled) - original).mean()
    assert d_full > 15 and 0.3 * d_full < d_half < 0.7 * d_full

    import cv2

    kept = tmp_path / "kept.mp4"
    assert run_cli(src, kept, "--quiet", "--preserve-color", "--crf", "10")[0] == 0
    chroma = lambda img: cv2.cvtColor(img.astype(np.uint8), cv2.COLOR_RGB2YCrCb)[..., 1:].astype(int)  # noqa: E731
    assert np.abs(chroma(first(kept)) - chroma(original)).mean() < 0.4 * np.abs(chroma(first(styled)) - chroma(original)).mean()


@pytest.mark.parametrize("mode", ["blend", "flow", "flow-hq"])
def test_smoothing_modes_are_wired(clips, run_cli, tmp_path: Path, mode: str) -> None:
    src = clips("smooth.mp4", size=(96, 64), frames=10)
    out = tmp_path / f"{mode}.mp4"
    code, stdout, err = run_cli(src, out, "--quiet", "--json", "--smooth", mode, "--smooth-strength", "0.7")
    assert code == 0, err
    assert json.loads(stdout)["smooth"] == mode
    assert probe(out, audio=False).frames == 10


def test_smooth_off_does_not_import_temporal(clips, tmp_path: Path) -> None:
    src = clips("tone.mp4", audio="aac", frames=25)
    out = tmp_path / "o.mp4"
    code = (
        "import sys; from realtime.cli import restyle_video_main; "
        f"rc = restyle_video_main([{str(src)!r}, {str(out)!r}, '--quiet']); "
        "assert rc == 0, rc; assert 'realtime.temporal' not in sys.modules, 'temporal imported'"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr


def test_batch_gives_the_same_video(clips, run_cli, tmp_path: Path) -> None:
    src = clips("tone.mp4", audio="aac", frames=25)
    a, b = tmp_path / "b1.mp4", tmp_path / "b4.mp4"
    assert run_cli(src, a, "--quiet", "--batch", "1", "--crf", "0", "--preset", "ultrafast")[0] == 0
    assert run_cli(src, b, "--quiet", "--batch", "4", "--crf", "0", "--preset", "ultrafast")[0] == 0
    pa, pb = probe(a), probe(b)
    assert pa.frames == pb.frames == 25 and pa.times == pb.times

    import av

    with av.open(str(a)) as ca, av.open(str(b)) as cb:
        for fa, fb in zip(ca.decode(video=0), cb.decode(video=0)):
            assert np.abs(fa.to_ndarray().astype(int) - fb.to_ndarray().astype(int)).max() <= 2


def test_lanes_give_the_same_video_in_order(clips, run_cli, tmp_path: Path) -> None:
    # Two frames in the network at once must change nothing: same frames, same order (flow smoothing
    # carries state from frame to frame, so a swap would show), a partial last batch included.
    src = clips("tone.mp4", audio="aac", frames=25)
    a, b = tmp_path / "l1.mp4", tmp_path / "l2.mp4"
    common = ("--quiet", "--batch", "3", "--smooth", "flow", "--crf", "0", "--preset", "ultrafast", "--device", "cpu")
    assert run_cli(src, a, "--lanes", "1", *common)[0] == 0
    assert run_cli(src, b, "--lanes", "2", "--threads", "2", *common)[0] == 0
    pa, pb = probe(a), probe(b)
    assert pa.frames == pb.frames == 25 and pa.times == pb.times

    import av

    with av.open(str(a)) as ca, av.open(str(b)) as cb:
        for fa, fb in zip(ca.decode(video=0), cb.decode(video=0)):
            assert np.array_equal(fa.to_ndarray(), fb.to_ndarray())


def test_progress_goes_to_stderr_and_json_to_stdout(clips, run_cli, tmp_path: Path) -> None:
    src = clips("tone.mp4", audio="aac", frames=25)
    code, stdout, err = run_cli(src, tmp_path / "p.mp4", "--json")
    assert code == 0
    json.loads(stdout)  # stdout is only the JSON
    assert "frames" in err and "fps" in err  # the progress line (plain lines when not a terminal)


def test_console_script_is_declared() -> None:
    import tomllib

    data = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    assert data["project"]["scripts"]["restyle-video"] == "realtime.cli:restyle_video_main"


def test_fraction_time_base_survives() -> None:
    # the frame record keeps exact rational time bases (no float drift over long files)
    from realtime.frames import Frame

    f = Frame(index=0, image=np.zeros((2, 2, 3), np.uint8), pts=3003 * 1000, time_base=Fraction(1, 30000))
    assert f.time == pytest.approx(100.1)
