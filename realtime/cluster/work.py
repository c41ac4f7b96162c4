"""What a worker does with one segment, without Ray: decode its packets, restyle the frames, encode them.

It runs the single-machine pieces: ``sources.FrameStamps`` turns decoded frames into frame records,
``pipeline.restyle_frames`` stylizes, smooths and finishes them in order, and ``sinks.FileSink``
encodes them, with their own timestamps, into a small file of the output's container in a scratch
folder (that file carries the encoder's stream parameters to the driver, whatever the codec). The
driver copies its packets into the output (join.py).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from ..frames import Frame
from ..pipeline import output_sar, restyle_frames, smoother_for
from ..sinks import EncoderSettings, FileSink
from ..sources import FrameStamps
from ..timestamps import PresentationOrder
from .segments import Segment


@dataclass(frozen=True)
class SegmentSettings:
    """The per-frame choices of a run (the ``RestyleOptions`` a worker needs)."""

    suffix: str  # the output's suffix: segments are written in its container
    encoder: EncoderSettings
    batch: int = 1
    max_size: int | None = None
    stroke: float | None = 1.0  # pipeline.RestyleOptions.stroke
    strength: float = 1.0
    preserve_color: bool = False
    smooth: str = "off"
    smooth_strength: float = 0.8


@dataclass
class SegmentResult:
    """One restyled segment: a small file of the output's container holding its encoded video."""

    input_id: int
    index: int
    data: bytes  # empty when no frame of the segment decoded
    frames: int
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    worker: str = ""
    video_end: float | None = None  # file time (s) where its last decoded frame ends (the end-of-file check)


def decode_segment(segment: Segment, warnings: list[str], ends: list[float] | None = None) -> Iterator[Frame]:
    """The frames of a segment's packets that it owns or warms up on, in presentation order; ``ends``
    gets the file time where each owned frame ends (as FileSource.video_end counts it)."""
    import av

    s = segment.stream
    cc = av.CodecContext.create(s.codec, "r")
    if s.extradata:
        cc.extradata = s.extradata
    cc.width, cc.height = s.width, s.height
    if s.pix_fmt:
        try:
            cc.pix_fmt = s.pix_fmt
        except (ValueError, AttributeError):
            pass
    cc.thread_type = "AUTO"
    stamps = FrameStamps(s.time_base, s.rate, rotation=s.rotation)
    # as FileSource does: a reordering decoder's frames get their presentation times back when the
    # container stored decode times, until the packets show real presentation times
    order: PresentationOrder = PresentationOrder(s.reorders)
    last_packet_pts: int | None = None
    warm_from = None
    if segment.first_pts is not None and segment.warmup:
        warm_from = _warm_start(segment)
    errors = 0

    def frames_of(timed) -> Iterator[Frame]:  # noqa: ANN001 - [(av.VideoFrame, pts | None)]
        for vf, raw in timed:
            pts = stamps.pts(raw)
            if segment.end_pts is not None and pts >= segment.end_pts:
                continue
            if segment.first_pts is not None and pts < (segment.first_pts if warm_from is None else warm_from):
                continue
            if ends is not None:
                step = vf.duration if vf.duration else (stamps.step or 0)
                ends.append(float((pts + step) * s.time_base))
            yield Frame(index=0, image=stamps.image(vf), pts=pts, time_base=s.time_base)

    for data, pts, dts, key in segment.packets:
        if order.active and pts is not None:
            if last_packet_pts is not None and pts < last_packet_pts:
                yield from frames_of(order.stop_reordering())
            last_packet_pts = pts
        pkt = av.Packet(data)
        pkt.pts, pkt.dts, pkt.time_base = pts, dts, s.time_base
        pkt.is_keyframe = key
        try:
            decoded = cc.decode(pkt)
        except av.error.FFmpegError as exc:
            errors += 1  # one damaged packet: skip it, as FileSource does
            if errors <= 3:
                warnings.append(f"skipped undecodable data in segment {segment.index}: {str(exc).splitlines()[0][:200]}")
            continue
        for vf in decoded:
            yield from frames_of(order.push(vf, vf.pts))
    try:
        for vf in cc.decode(None):
            yield from frames_of(order.push(vf, vf.pts))
    except av.error.FFmpegError:
        pass
    yield from frames_of(order.flush())


def _warm_start(segment: Segment) -> int:
    """The timestamp of the first warm-up frame: the ``warmup``-th latest before the segment."""
    assert segment.first_pts is not None
    earlier = sorted(p[1] for p in segment.packets if p[1] is not None and p[1] < segment.first_pts)
    return earlier[-segment.warmup] if len(earlier) >= segment.warmup else (earlier[0] if earlier else segment.first_pts)


def restyle_segment(segment: Segment, stylizer, settings: SegmentSettings) -> SegmentResult:  # noqa: ANN001
    """Restyle one segment with a loaded ``Stylizer`` and return it encoded (see SegmentResult)."""
    import time

    t0 = time.perf_counter()
    warnings: list[str] = []
    ends: list[float] = []
    smoother = smoother_for(settings.smooth, settings.smooth_strength)
    if smoother is not None:
        smoother.reset()
    first = segment.first_pts
    s = segment.stream
    with tempfile.TemporaryDirectory(prefix="restyle-segment-") as scratch:
        path = Path(scratch) / f"segment{settings.suffix}"
        # times from the file's origin, as a single run writes them
        sink = FileSink(path, settings=settings.encoder, rate=s.rate, offset=s.origin, overwrite=True,
                        sample_aspect_ratio=output_sar(s.sample_aspect_ratio, s.rotation),
                        background=stylizer.device == "cpu", warn=warnings.append)
        with sink:
            work = restyle_frames(decode_segment(segment, warnings, ends), stylizer, sink.write, batch=settings.batch,
                                  max_size=settings.max_size, stroke=settings.stroke, preserve_color=settings.preserve_color,
                                  strength=settings.strength, smoother=smoother,
                                  keep=None if first is None else (lambda f: f.pts >= first))
        data = path.read_bytes() if work.frames else b""
    if not work.frames and segment.frames:
        warnings.append(f"none of the {segment.frames} frames of segment {segment.index} could be decoded")
    return SegmentResult(segment.input_id, segment.index, data, work.frames, time.perf_counter() - t0, warnings,
                         video_end=max(ends) if ends else None)
