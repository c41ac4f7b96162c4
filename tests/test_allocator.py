"""realtime.allocator: with glibc's thresholds raised, a frame's buffers are reused instead of being
page-faulted in anew on every frame (the cause of ~8 ms a frame at 640×480 on the build machine)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FAST_MODEL = sorted((ROOT / "trained" / "fast").glob("*.onnx"))[0]  # a shipped fast-tier model

# In a fresh process (the setting is process-wide and cannot be undone): minor page faults per
# stylized 640×480 frame, after warm-up. PyAV is imported as the commands import it.
SCRIPT = """
import resource, sys
import av, numpy as np
from realtime.allocator import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
from realtime.stylizer import Stylizer
s = Stylizer(sys.argv[2], device="cpu", threads=1)
frame = av.VideoFrame.from_ndarray(np.full((480, 640, 3), 90, np.uint8), format="rgb24").to_ndarray(format="rgb24")
for _ in range(3):
    s.stylize([frame])
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(4):
    s.stylize([frame])
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 4)
"""


def faults_per_frame(mode: str) -> float:
    res = subprocess.run([sys.executable, "-c", SCRIPT, mode, str(FAST_MODEL)], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert res.returncode == 0, res.stderr[-800:]
    return float(res.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the setting is glibc's (Linux)")
def test_frame_buffers_are_reused_not_page_faulted_in_again() -> None:
    from realtime.allocator import keep_freed_memory

    if not keep_freed_memory():
        pytest.skip("not glibc: mallopt is not available")
    kept = faults_per_frame("keep")
    as_is = faults_per_frame("as-is")
    # The network's input and output alone are 2 x 4 MB (2048 pages) a frame at this size.
    assert kept < 50, f"{kept} page faults a frame with freed memory kept"
    if as_is > 500:  # glibc's default behaviour here; elsewhere it may already reuse them
        assert kept < as_is / 10


def test_commands_keep_freed_memory() -> None:
    """Every command goes through run_entry_point, which sets it (the test runs one in-process)."""
    import realtime.allocator as allocator
    from realtime.cli import run_entry_point

    allocator._applied = None  # as in a fresh process
    assert run_entry_point("t", lambda argv: 0, ["x"]) == 0
    assert allocator._applied is not None
