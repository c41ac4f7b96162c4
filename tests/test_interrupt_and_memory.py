"""Ctrl+C on a real restyle-video process, and memory that does not grow with the length of the video."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import REPO, cli_command, snapshot
from media import make_video


@pytest.mark.slow
def test_sigint_stops_cleanly(tmp_path: Path) -> None:
    src_dir, out_dir = tmp_path / "in", tmp_path / "out"
    src_dir.mkdir()
    out_dir.mkdir()
    clip = src_dir / "long.mp4"
    make_video(clip, size=(160, 120), frames=750, audio="aac")  # 30 s: far longer than we let it run
    before_in, before_out = snapshot(src_dir), snapshot(out_dir)
    proc = subprocess.Popen(cli_command() + [str(clip), str(out_dir / "o.mp4"), "--threads", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(REPO), env=dict(os.environ))
    try:
        # wait until it is really writing (its temporary file exists), then press Ctrl+C
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if any(p.name.endswith(".partial.mp4") for p in out_dir.iterdir()):
                break
            time.sleep(0.02)
        assert proc.poll() is None, "finished before it could be interrupted"
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "restyle-video: error: interrupted" in err
    assert "Traceback" not in err
    assert snapshot(out_dir) == before_out  # no output, no temporary file
    assert snapshot(src_dir) == before_in


def _peak_rss_kib(argv: list[str]) -> int:
    """Run a child and return its peak resident set (ru_maxrss, KiB on Linux) from wait4()."""
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=str(REPO), env=dict(os.environ))
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    proc.stderr.close()
    assert proc.returncode == 0, err
    return usage.ru_maxrss


@pytest.mark.slow
def test_memory_does_not_grow_with_length(tmp_path: Path) -> None:
    short, long = tmp_path / "5s.mp4", tmp_path / "60s.mp4"
    make_video(short, size=(96, 64), frames=125, audio="aac")
    make_video(long, size=(96, 64), frames=1500, audio="aac")
    base = cli_command() + ["--quiet", "--preset", "ultrafast"]
    rss_short = _peak_rss_kib(base + [str(short), str(tmp_path / "o5.mp4")])
    rss_long = _peak_rss_kib(base + [str(long), str(tmp_path / "o60.mp4")])
    assert rss_long <= 1.10 * rss_short, f"peak RSS {rss_short} KiB for 5 s, {rss_long} KiB for 60 s"
