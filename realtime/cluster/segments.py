"""Cutting a video into segments that decode on their own, on the driver, without decoding it.

The driver reads the compressed video packets' timestamps once (``plan``: no decoding, no packet data
kept) and cuts before a keyframe once a segment has at least ``segment_frames`` frames; a second pass
(``read_segments``) hands out each segment with its packets. A segment *owns* the frames whose timestamps lie in
``[first_pts, end_pts)``; the owners of all segments together are every frame of the file, once.

A segment's packets start at a keyframe, so a worker decodes them without the rest of the file. When
the run smooths, they start early enough that the worker also decodes the ``warmup`` frames before
the segment (from the keyframe at or before them) and runs them through the smoother without writing
them: the smoother and its cut detector reach the boundary in the state a single run has there. An
open GOP's leading pictures (after the next keyframe in decoding order, before it in time) belong to
the segment before that keyframe, so its packets run on until they are through.

Only the packets of the segment being handed out are held, so the driver's memory does not grow with
the length of the file.
"""

from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Sequence

from ..errors import InputError
from ..sources import frame_rotation, open_input, probe

Packet = tuple[bytes, int | None, int | None, bool]  # data, pts, dts, keyframe


@dataclass(frozen=True)
class StreamInfo:
    """What a worker needs to decode a stream's packets outside their container."""

    codec: str
    extradata: bytes | None
    width: int
    height: int
    pix_fmt: str | None
    time_base: Fraction
    rate: Fraction | None
    rotation: int  # counter-clockwise degrees, read from the first decoded frame as FileSource does
    sample_aspect_ratio: Fraction | None
    origin: float = 0.0  # seconds: the file's time a player shows as 0 (sources.VideoInfo.origin)
    reorders: bool = False  # the decoder reorders frames: repair stored decode times (timestamps.PresentationOrder)
    video_index: int = 0  # the restyled stream's index in the input (the joiner copies the others)
    declared_end: float | None = None  # seconds (file time) where the header says the video ends, if it says


@dataclass(frozen=True)
class SegmentPlan:
    """Where one segment lies, in packet numbers (decoding order) and timestamps."""

    start: int  # first packet to decode (a keyframe; earlier than the segment when it warms up)
    stop: int  # one past the last packet to decode
    first_pts: int | None  # owns frames with pts >= first_pts (None: from the start)
    end_pts: int | None  # ... and pts < end_pts (None: to the end)
    frames: int  # frames it owns (packets with an owned timestamp)
    warmup: int  # frames decoded before first_pts to warm the smoother up


@dataclass
class Segment:
    """One piece of one input: its packets (from a keyframe) and the frames it owns."""

    input_id: int
    index: int
    stream: StreamInfo
    packets: list[Packet]
    first_pts: int | None  # owns frames with pts >= first_pts (None: from the start)
    end_pts: int | None  # ... and pts < end_pts (None: to the end)
    frames: int  # packets with an owned timestamp: the frames it should yield (for progress)
    warmup: int = 0  # frames decoded before first_pts to warm the smoother up

    def owns(self, pts: int) -> bool:
        return (self.first_pts is None or pts >= self.first_pts) and (self.end_pts is None or pts < self.end_pts)


def stream_info(path: Path) -> StreamInfo:
    """The video stream's decoding parameters; its rotation from the first decoded frame."""
    info = probe(path)
    container = open_input(path)
    try:
        vs = container.streams[info.video_index]
        cc = vs.codec_context
        rotation = info.rotation
        for vf in container.decode(vs):
            rotation = frame_rotation(vf, info.rotation)
            break
        return StreamInfo(codec=cc.name, extradata=cc.extradata, width=cc.width, height=cc.height,
                          pix_fmt=cc.pix_fmt, time_base=info.time_base, rate=info.rate, rotation=rotation,
                          sample_aspect_ratio=info.sample_aspect_ratio, origin=info.origin,
                          reorders=info.reorders, video_index=info.video_index, declared_end=info.declared_end)
    except Exception as exc:  # noqa: BLE001 - any FFmpeg failure here means the file cannot be used
        if isinstance(exc, InputError):
            raise
        raise InputError(f"{path} is not a video file, or it is damaged ({str(exc).splitlines()[0][:200]})") from exc
    finally:
        container.close()


def plan(path: Path, segment_frames: int, warmup: int) -> list[SegmentPlan]:
    """The segments of ``path``: cut before a keyframe once a segment owns ``segment_frames`` frames;
    each but the first starts decoding ``warmup`` frames early (0 when the run does not smooth). A stream
    whose packets lack timestamps cannot be cut by time: it is one segment."""
    import av

    container = open_input(path)
    meta: list[tuple[int | None, bool]] = []  # (pts, keyframe) per packet, decoding order
    try:
        vs = container.streams[probe(path).video_index]
        try:
            for pkt in container.demux(vs):
                if pkt.size:  # size 0: the demuxer's flush packet
                    meta.append((pkt.pts, bool(pkt.is_keyframe)))
        except av.error.FFmpegError:
            pass  # a damaged end: the workers decode what there is, as a single run does
    finally:
        container.close()
    return plan_packets(meta, segment_frames, warmup)


def plan_packets(meta: Sequence[tuple[int | None, bool]], segment_frames: int, warmup: int) -> list[SegmentPlan]:
    """``plan`` on the (pts, keyframe) list of a stream's packets in decoding order."""
    n = len(meta)
    if n == 0:
        return []
    if any(pts is None for pts, _ in meta):
        return [SegmentPlan(0, n, None, None, n, 0)]
    times = sorted(pts for pts, _ in meta)  # type: ignore[misc]
    keyframes = [i for i, (_, key) in enumerate(meta) if key]
    # boundaries: keyframes that every earlier packet precedes in time, segment_frames apart or more
    boundaries = [0]
    latest = None  # the largest pts so far
    for i, (pts, key) in enumerate(meta):
        if key and i and i - boundaries[-1] >= segment_frames and latest is not None and pts > latest:
            boundaries.append(i)
        latest = pts if latest is None else max(latest, pts)
    plans = []
    for j, b in enumerate(boundaries):
        first = meta[b][0] if j else None
        if j + 1 < len(boundaries):
            nxt = boundaries[j + 1]
            end = meta[nxt][0]
            stop = nxt
            # leading pictures of the next keyframe (open GOP) are shown before it: they are ours
            lead = nxt + 1
            while lead < n and meta[lead][0] < end:  # type: ignore[operator]
                lead += 1
            if lead > nxt + 1:
                stop = lead
        else:
            end, stop = None, n
        lo = 0 if first is None else bisect.bisect_left(times, first)
        hi = len(times) if end is None else bisect.bisect_left(times, end)
        start, warm = b, 0
        if first is not None and warmup:
            warm = min(warmup, lo)
            warm_pts = times[lo - warm]
            start = max((k for k in keyframes if k <= b and meta[k][0] <= warm_pts), default=0)  # type: ignore[operator]
        plans.append(SegmentPlan(start, stop, first, end, hi - lo, warm))
    return plans


def read_segments(path: Path, input_id: int, plans: Sequence[SegmentPlan], stream: StreamInfo) -> Iterator[Segment]:
    """The planned segments of ``path`` in order, each with its packets, read in one pass. Segments
    overlap where they warm up; only the packets from the current segment's start on are held."""
    import av

    container = open_input(path)
    try:
        vs = container.streams[probe(path).video_index]
        held: deque[Packet] = deque()
        first = 0  # the packet number of held[0]
        demuxed = (p for p in container.demux(vs) if p.size)
        exhausted = False
        for index, sp in enumerate(plans):
            while held and first < sp.start:
                held.popleft()
                first += 1
            while not exhausted and first + len(held) < sp.stop:
                try:
                    pkt = next(demuxed)
                except (StopIteration, av.error.FFmpegError):
                    exhausted = True
                    break
                if first + len(held) < sp.start:
                    first += 1  # before this segment: not needed
                    continue
                held.append((bytes(pkt), pkt.pts, pkt.dts, bool(pkt.is_keyframe)))
            packets = list(held)[: sp.stop - first]
            yield Segment(input_id, index, stream, packets, sp.first_pts, sp.end_pts, sp.frames, sp.warmup)
    finally:
        container.close()
