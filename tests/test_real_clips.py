"""restyle-video on the real clips in ../shared/data/videos (skipped where that folder is absent)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import real_clip
from media import probe
from test_restyle_synthetic import assert_same_audio, assert_same_video

# (clip, extra arguments). Stylizing happens at --max-size 160 to keep CI quick (the output is still
# written at the native size); realshort.mp4 runs at its native size end to end.
CASES = [
    ("realshort.mp4", []),
    ("cup.mp4", ["--max-size", "160"]),  # phone VFR, audio is stream 0
    ("diver.mov", ["--max-size", "160"]),  # MJPEG 4:2:2 + MP2 audio
    ("bikes.mp4", ["--max-size", "160"]),  # scene cuts, no audio
]


@pytest.mark.slow
@pytest.mark.parametrize("name,extra", CASES, ids=[c[0] for c in CASES])
def test_real_clip_whole(run_cli, tmp_path: Path, name: str, extra: list[str]) -> None:
    src = real_clip(name)
    out = tmp_path / (Path(name).stem + "_styled.mp4")
    code, stdout, err = run_cli(src, out, "--quiet", "--json", "--preset", "ultrafast", *extra)
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["warnings"] == []
    a, b = probe(src), probe(out)
    assert_same_video(a, b)
    if a.audio:
        assert_same_audio(a, b)
    else:
        assert b.audio == []


@pytest.mark.slow
def test_real_clip_part_with_smoothing(run_cli, tmp_path: Path) -> None:
    """vtest.avi (MS-MPEG4 in AVI, no audio): 20 s from 10 s on, with flow smoothing."""
    src = real_clip("vtest.avi")
    out = tmp_path / "vtest_part.mp4"
    code, _, err = run_cli(src, out, "--quiet", "--preset", "ultrafast", "--max-size", "160",
                           "--start", "10", "--duration", "20", "--smooth", "flow")
    assert code == 0, err
    a, b = probe(src), probe(out)
    kept = [t for t in a.times if 10 - 1e-9 <= t < 30 - 1e-9]
    assert b.frames == len(kept) == 200
    assert max(abs((x - kept[0]) - y) for x, y in zip(kept, b.times)) <= float(b.time_base) + 1e-9
    assert b.display == a.display and b.decode_errors == 0


@pytest.mark.slow
def test_real_clip_part_keeps_audio(run_cli, tmp_path: Path) -> None:
    src = real_clip("diver.mov")
    out = tmp_path / "diver_part.mkv"
    code, _, err = run_cli(src, out, "--quiet", "--preset", "ultrafast", "--max-size", "160",
                           "--start", "3", "--duration", "4")
    assert code == 0, err
    b = probe(out)
    assert b.frames == 100
    assert abs(b.audio[0].seconds - 4.0) <= 0.05 and b.audio[0].rms > 0.01
