"""Copying the audio of an input into an output container, interleaved with the video as it is written.

Every audio stream of the input is kept: remuxed when the output container takes its codec, otherwise
re-encoded to AAC. The copier reads the input a second time with its own demuxer, so whoever writes the
video (``sinks.FileSink`` frame by frame, the cluster driver packet by packet) only says how far the
video has got (``pump``) and finishes with ``finish``; memory stays bounded however long the file is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

WarnFn = Callable[[str], None]

# Codecs a container lists as supported but that its muxer refuses: vorbis/truehd need "-strict
# experimental" in MP4/MOV, and raw PCM in MP4 fails when the trailer is written (found by testing).
_NO_COPY = {"mp4": ("vorbis", "truehd", "pcm_"), "mov": ("vorbis", "truehd")}


@dataclass
class AudioReport:
    """What happened to one input audio stream."""

    input_index: int
    codec: str
    mode: str  # "copy" or "aac"
    packets: int = 0


def _aac_layout(layout) -> str:  # noqa: ANN001
    """A channel layout the AAC encoder takes: the input's, or the default order for its channel count
    when the input's order is unspecified ("2 channels" from Matroska PCM), stereo when unusual."""
    n = layout.nb_channels if layout is not None else 2
    if not 1 <= n <= 8:
        return "stereo"
    name = layout.name
    if "channels" in name:
        name = {1: "mono", 2: "stereo", 3: "3.0", 4: "4.0", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}[n]
    return name


def _header_accepts(fmt: str, stream) -> bool:  # noqa: ANN001
    """Whether the muxer really takes this stream as-is. ``supported_codecs`` only says a codec tag
    exists (mp4 lists pcm_s16le but refuses it), so write a header into memory and see."""
    import io

    import av

    try:
        with av.open(io.BytesIO(), mode="w", format=fmt) as probe:
            probe.add_stream_from_template(stream)
            probe.start_encoding()
        return True
    except Exception:  # noqa: BLE001 - any refusal means "re-encode"
        return False


class AudioCopier:
    """Reads the audio streams of the input a second time (own demuxer) and writes them into the output,
    trimmed to [start, end) and shifted by ``offset`` seconds, interleaved as video progresses."""

    def __init__(self, src: Path, out, fmt: str, start: float, end: float | None, offset: float, warn: WarnFn | None) -> None:  # noqa: ANN001
        import av

        self._av = av
        self.inp = av.open(str(src), mode="r")
        self.start, self.end, self.offset = start, end, offset
        self._warn = warn
        self.tracks: dict[int, tuple[object, object, AudioReport]] = {}
        supported = out.supported_codecs
        in_streams = list(self.inp.streams.audio)
        for s in in_streams:
            name = s.codec_context.name
            copy = name in supported and not name.startswith(_NO_COPY.get(fmt, ())) and _header_accepts(fmt, s)
            if copy:
                o = out.add_stream_from_template(s)
                mode = "copy"
            else:
                cc = s.codec_context
                o = out.add_stream("aac", rate=cc.sample_rate or 48000)
                o.layout = _aac_layout(cc.layout)
                mode = "aac"
            lang = s.metadata.get("language")
            if lang:
                o.metadata["language"] = lang
            self.tracks[s.index] = (s, o, AudioReport(s.index, name, mode))
        if start > 0 and in_streams:
            try:
                self.inp.seek(int(start * 1_000_000), backward=True, any_frame=False)
            except av.error.FFmpegError:
                pass  # unseekable: read from the top and drop what lies before start
        self._packets = self.inp.demux(in_streams) if in_streams else iter(())
        self._pending = None
        self._done = not in_streams
        self._last_dts: dict[int, int] = {}
        self.errors = 0

    @property
    def reports(self) -> list[AudioReport]:
        return [t[2] for t in self.tracks.values()]

    def pump(self, out, until: float | None) -> None:  # noqa: ANN001
        """Write audio up to output time ``until`` seconds (everything when None)."""
        av = self._av
        while not self._done:
            pkt = self._pending
            self._pending = None
            if pkt is None:
                try:
                    pkt = next(self._packets)
                except StopIteration:
                    self._done = True
                    break
                except av.error.FFmpegError as exc:
                    self._done = True
                    if self._warn:
                        self._warn(f"audio: stopped reading at a damaged part: {_short(exc)}")
                    break
            if pkt.size == 0 or pkt.pts is None or pkt.time_base is None:
                continue  # demuxer flush packets; decoders are flushed in finish()
            t_in = float(pkt.pts * pkt.time_base)
            if self.end is not None and t_in >= self.end:
                continue  # past the selected range (other streams may still be behind)
            if until is not None and t_in - self.offset > until:
                self._pending = pkt
                return
            self._write(out, pkt, t_in)

    def _write(self, out, pkt, t_in: float) -> None:  # noqa: ANN001
        s, o, rep = self.tracks[pkt.stream.index]
        if rep.mode == "copy":
            # keep whole packets that start inside the range (audio packets are ~20 ms)
            if self.start > 0 and t_in < self.start - 1e-6:
                return
            # Decode each copied packet too (audio decodes at hundreds of times real time): a damaged
            # packet is dropped instead of being carried into an output that then fails to decode.
            if not self._decodes(s, pkt):
                return
            shift = int(round(self.offset / pkt.time_base))
            pkt.pts -= shift
            if pkt.dts is not None:
                pkt.dts -= shift
                last = self._last_dts.get(s.index)
                if last is not None and pkt.dts <= last:
                    self._damaged("audio: dropped a packet with a repeated timestamp")
                    return  # muxers refuse non-increasing dts; damaged files repeat them
                self._last_dts[s.index] = pkt.dts
            pkt.stream = o
            out.mux(pkt)
            rep.packets += 1
            return
        try:
            frames = pkt.decode()
        except self._av.error.FFmpegError as exc:
            self._damaged(f"audio: skipped undecodable data: {_short(exc)}")
            return
        self._encode(out, o, rep, frames)

    def _decodes(self, s, pkt) -> bool:  # noqa: ANN001
        try:
            s.codec_context.decode(pkt)
            return True
        except self._av.error.FFmpegError as exc:
            self._damaged(f"audio: dropped an undecodable packet at {float(pkt.pts * pkt.time_base):.2f}s: {_short(exc)}")
            return False

    def _damaged(self, message: str) -> None:
        self.errors += 1
        if self._warn is not None:
            if self.errors <= 3:
                self._warn(message)
            elif self.errors == 4:
                self._warn("audio: more damaged packets follow; counting them quietly")

    def _encode(self, out, o, rep: AudioReport, frames) -> None:  # noqa: ANN001
        for af in frames:
            if af.pts is not None and af.time_base is not None:
                t = float(af.pts * af.time_base)
                if t < self.start - 1e-6 or (self.end is not None and t >= self.end):
                    continue
                af.pts -= int(round(self.offset / af.time_base))
            for p in o.encode(af):
                out.mux(p)
                rep.packets += 1

    def finish(self, out) -> None:  # noqa: ANN001
        self.pump(out, None)
        for s, o, rep in self.tracks.values():
            if rep.mode != "aac":
                continue
            try:
                self._encode(out, o, rep, s.codec_context.decode(None))
            except self._av.error.FFmpegError:
                pass
            for p in o.encode(None):
                out.mux(p)
                rep.packets += 1

    def close(self) -> None:
        try:
            self.inp.close()
        except Exception:  # noqa: BLE001
            pass


def _short(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]
