"""Keep freed memory in the process between frames (glibc's malloc), set once by each command.

Every frame allocates and frees the same few large buffers: the network's float input and output
(4 MB each at 640×480 with the margin), OpenCV's temporaries, the output picture. glibc serves a
block above its mmap threshold with fresh pages from the kernel and, once it is freed, unmaps it (or
trims the top of the heap), so the next frame page-faults through the same amount of zeroed memory
again. glibc is meant to raise the mmap threshold after such a free; here that did not stop the
faults, nor did raising only one of the two thresholds (below).
Measured on the 2-core build machine, the fast the_scream at 640×480, 30 frames × 3 rounds of
``Stylizer.stylize`` in a plain loop (ms a frame, preprocess / inference / postprocess): 5.8–6.9 /
53.5–55.4 / 3.1–7.7 as is, or with only one of the two thresholds raised; 0.93 / 45.2 / 1.44 with
both; 2236 minor page faults a frame against none (tests/test_allocator.py). Peak memory stayed the
same (maxrss 147–148 MB): the buffers are reused, not added, since every queue of the pipeline is
bounded; memory is simply not handed back between frames. How often the commands themselves hit it
depends on what else the process allocates: whole ``restyle-video`` runs on a 201-frame 640×360
clip faulted 32.7–34.5 k times in all (start-up included) without it and 29.5–29.6 k with it, so
they mostly reused the memory already; a plain loop of stylize calls (``tools/bench.py``'s
model-only figure, a library user's loop) faults on every frame. Setting it costs nothing where the
allocator already reuses the memory.

Other C libraries (macOS, Windows, musl) manage memory differently; there this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

# mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

# Blocks up to this size come from the heap (a batch of 1080p frames is ~25 MB a frame in float);
# glibc refuses values above its own maximum (32 MB on some versions), hence the fallback.
MMAP_THRESHOLDS = (256 << 20, 32 << 20)

_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds so freed frame buffers are reused (see the module);
    True where that applied. Safe to call more than once; does nothing outside glibc."""
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # glibc only: musl has mallopt as a stub  # noqa: B018
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    for threshold in MMAP_THRESHOLDS:
        if mallopt(_M_MMAP_THRESHOLD, threshold) == 1:
            _applied = mallopt(_M_TRIM_THRESHOLD, 2 * threshold) == 1
            break
    return _applied


def child_environment() -> dict[str, str]:
    """The same setting for a child process through glibc's environment variables (for a program
    that does not call keep_freed_memory itself, such as the peer in tools/bench.py)."""
    threshold = MMAP_THRESHOLDS[-1]  # the value every glibc accepts
    return {"MALLOC_MMAP_THRESHOLD_": str(threshold), "MALLOC_TRIM_THRESHOLD_": str(2 * threshold)}
