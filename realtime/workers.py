"""Helpers for the I/O worker threads (decode, encode, capture) and their bounded queues."""

from __future__ import annotations

import queue
import threading


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
