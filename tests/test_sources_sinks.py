"""The file source and sink on their own: bounded queues, no frame dropped, clean stop, size lock."""

from __future__ import annotations

import os
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from media import probe
from realtime.errors import InputError, RealtimeError
from realtime.frames import Frame
from realtime.sinks import EncoderSettings, FileSink, beside_cpu_network
from realtime.sources import FileSource
from realtime.workers import BACKGROUND_NICE, lower_thread_priority


def test_source_fails_before_the_first_frame(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        FileSource(tmp_path / "missing.mp4")


def test_slow_consumer_gets_every_frame_in_order(clips) -> None:
    src = clips("tone.mp4", audio="aac", frames=25)
    got = []
    with FileSource(src, queue_size=2) as source:
        for f in source:
            time.sleep(0.01)  # slower than the decoder: the decoder must wait, not drop
            got.append(f)
    assert [f.index for f in got] == list(range(25))
    assert [f.pts for f in got] == sorted(f.pts for f in got) and len({f.pts for f in got}) == 25
    assert got[0].image.shape == (48, 64, 3) and got[0].image.dtype == np.uint8
    assert source.decode_errors == 0 and source.warnings == []


def test_stopping_early_ends_the_decoder(clips) -> None:
    src = clips("tone.mp4", audio="aac", frames=25)
    source = FileSource(src, queue_size=1)
    with source:
        for f in source:
            if f.index == 2:
                break
    assert source._thread is not None and not source._thread.is_alive()


def _frame(i: int, w: int = 32, h: int = 24) -> Frame:
    img = np.full((h, w, 3), (i * 10) % 256, np.uint8)
    return Frame(index=i, image=img, pts=i, time_base=Fraction(1, 25))


def test_sink_writes_under_a_temporary_name_and_renames(tmp_path: Path) -> None:
    out = tmp_path / "o.mp4"
    with FileSink(out, rate=Fraction(25)) as sink:
        for i in range(10):
            sink.write(_frame(i))
        assert not out.exists()  # not before it is complete
        assert sink.tmp_path is not None and sink.tmp_path.parent == tmp_path
    assert [p.name for p in tmp_path.iterdir()] == ["o.mp4"]
    p = probe(out, audio=False)
    assert p.frames == 10 and p.display == (32, 24)
    assert p.times == pytest.approx([i / 25 for i in range(10)])


def test_sink_error_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "o.mp4"
    with pytest.raises(RealtimeError, match="opened at 32x24"):
        with FileSink(out, rate=Fraction(25)) as sink:
            for i in range(5):
                sink.write(_frame(i))
            sink.write(_frame(5, w=40))  # the size is locked by the first frame
    assert list(tmp_path.iterdir()) == []


def test_sink_repairs_repeated_timestamps(tmp_path: Path) -> None:
    out = tmp_path / "o.mp4"
    with FileSink(out, rate=Fraction(25)) as sink:
        for i, pts in enumerate([0, 1, 1, 2, 4]):  # damaged input can repeat a timestamp
            sink.write(Frame(index=i, image=_frame(i).image, pts=pts, time_base=Fraction(1, 25)))
    p = probe(out, audio=False)
    assert p.frames == 5 and all(b > a for a, b in zip(p.times, p.times[1:]))


# ---------------------------------------------------------------- I/O threads beside a CPU network

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux-only")


def _nice(tid: int) -> int:
    return os.getpriority(os.PRIO_PROCESS, tid)


@linux_only
def test_lower_thread_priority_changes_only_the_calling_thread() -> None:
    main_before = _nice(threading.get_native_id())
    seen: dict[str, int] = {}

    def worker() -> None:
        before = _nice(threading.get_native_id())
        seen["ok"] = lower_thread_priority(5)
        seen["delta"] = _nice(threading.get_native_id()) - before
        seen["expected"] = min(19, before + 5) - before

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert seen["ok"] and seen["delta"] == seen["expected"]
    assert _nice(threading.get_native_id()) == main_before


@linux_only
def test_background_source_decodes_below_the_callers_priority(clips) -> None:
    src = clips("tone.mp4", audio="aac", frames=25)
    base = _nice(threading.get_native_id())
    with FileSource(src, queue_size=1, background=True) as source:
        frames = iter(source)
        next(frames)
        time.sleep(0.2)  # the decoder is now blocked on the full one-frame queue, still alive
        assert source._thread is not None and source._thread.is_alive()
        assert _nice(source._thread.native_id) == min(19, base + BACKGROUND_NICE)
        rest = list(frames)
    assert len(rest) == 24  # and it still delivers every frame


def test_encoder_beside_a_cpu_network_gets_few_threads() -> None:
    x264 = EncoderSettings()
    assert beside_cpu_network(x264, 2).threads == 1
    assert beside_cpu_network(x264, 16).threads == 4
    assert beside_cpu_network(EncoderSettings(threads=3), 2).threads == 3  # an explicit choice stays
    assert beside_cpu_network(EncoderSettings(codec="mpeg4"), 2).threads == 0  # only x264/x265 are limited
    assert beside_cpu_network(x264, 2).options() == x264.options()
