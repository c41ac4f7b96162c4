"""Helpers for the I/O worker threads (decode, encode, capture) and their bounded queues."""

from __future__ import annotations

import os
import queue
import sys
import threading

# How much nicer than the process an I/O thread becomes when the network runs on the CPU (see below).
BACKGROUND_NICE = 10


def cpu_count() -> int:
    """Cores this process may use (respects affinity / container limits where the OS reports them)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def drain_and_join(thread: threading.Thread | None, q: "queue.Queue[object]", poll: float = 0.05) -> None:
    """Wait for a worker that was told to stop, emptying its queue meanwhile: a worker blocked on a full
    queue (or a consumer that stopped reading) would otherwise never see its stop flag."""
    if thread is None:
        return
    while thread.is_alive():
        try:
            while True:
                q.get_nowait()
        except queue.Empty:
            pass
        thread.join(timeout=poll)


def lower_thread_priority(step: int = BACKGROUND_NICE) -> bool:
    """Make the calling thread (and the codec threads it starts later) yield the CPU to the network.

    When ONNX Runtime runs the network on the CPU, its intra-op workers take every core, and each
    operator waits for its slowest worker: a decode or encode thread that preempts one worker stalls
    the whole operator while the other cores idle. A few steps of nice make the I/O threads fill the
    gaps between operators instead; they still get the CPU whenever the network waits for them (an
    empty queue blocks it). On 2 cores, with the encoder also on one thread, this took restyle-video on
    diver.mov at 640x360 from 20-25 to 28-30 frames/s (tools/bench.py has the current figures).

    Linux only, where nice is per thread; elsewhere, or when refused, nothing changes (returns False).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + step))
        return True
    except (OSError, AttributeError):
        return False
