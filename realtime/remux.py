"""The input's other streams, carried into the output beside the restyled video.

``StreamCopier`` reads the input a second time (its own demuxer) and writes, trimmed to [start, end)
and shifted by ``offset`` seconds, interleaved with the video as it is written (memory stays bounded):

- every audio stream: remuxed when the output container takes its codec, otherwise re-encoded to AAC;
- every subtitle stream: copied when the container takes it as it is (Matroska takes nearly all, MP4 and
  MOV take mov_text), text subtitles otherwise converted to the container's own text format
  (SubRip or ASS into MP4 become mov_text, as ffmpeg does);
- attachments (fonts for styled subtitles) into Matroska, the only container we write that holds them.

Every other stream (a second video, cover art, data such as timecode or GPS, an attachment or subtitle
the container cannot hold) is named in one warning line each: nothing vanishes without a word.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable

from .timestamps import declared_end, declares_durations

WarnFn = Callable[[str], None]

# Codecs a container lists as supported but that its muxer refuses: vorbis/truehd need "-strict
# experimental" in MP4/MOV, and raw PCM in MP4 fails when the trailer is written (found by testing).
_NO_COPY = {"mp4": ("vorbis", "truehd", "pcm_"), "mov": ("vorbis", "truehd")}

# what the containers we write call themselves in a message
_CONTAINER_NAMES = {"mp4": "MP4", "mov": "MOV", "matroska": "Matroska", "avi": "AVI"}

# the text subtitle format of each container we write (FFmpeg's muxers do not say so for MP4 and MOV)
_TEXT_FORMAT = {"mp4": "mov_text", "mov": "mov_text", "matroska": "ass"}

_TEXT_SUBTITLES = 1 << 17  # AV_CODEC_PROP_TEXT_SUB: the codec carries text (SubRip, ASS, WebVTT, mov_text)


@dataclass
class AudioReport:
    """What happened to one input audio stream."""

    input_index: int
    codec: str
    mode: str  # "copy" or "aac"
    packets: int = 0
    end: float | None = None  # where the packets read end (seconds, the input's timeline)
    declared_end: float | None = None  # where the input's header says the stream ends, when it says
    longest_packet: float = 0.0  # seconds: a header's end may differ from the packets' by one of them


@dataclass
class _Track:
    """One input stream being written: ``mode`` is "copy", "aac" (audio re-encoded) or "text"
    (subtitles converted to the output's text format); ``report`` is set for audio."""

    source: object  # av input stream
    target: object  # av output stream
    mode: str
    report: AudioReport | None = None
    packets: int = 0


def _short(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]


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
    import av

    try:
        with av.open(io.BytesIO(), mode="w", format=fmt) as probe:
            probe.add_stream_from_template(stream)
            probe.start_encoding()
        return True
    except Exception:  # noqa: BLE001 - any refusal means "re-encode"
        return False


def _describe(stream) -> str:  # noqa: ANN001
    """'stream 3 (subtitle, subrip, fra)': how a warning names an input stream."""
    parts = [stream.type]
    if stream.type == "attachment":
        parts.append(getattr(stream, "name", None) or stream.metadata.get("filename", "unnamed"))
    else:
        cc = stream.codec_context
        name = cc.codec.name if cc is not None else getattr(stream, "name", None)  # data streams have no codec context
        if name:
            parts.append(name)
    lang = stream.metadata.get("language")
    if lang and lang != "und":
        parts.append(lang)
    return f"stream {stream.index} ({', '.join(parts)})"


class StreamCopier:
    """Carries the input's audio, subtitle and attachment streams into ``out`` (see the module text).
    ``video`` is the input stream being restyled; ``audio=False`` leaves the audio out (``--no-audio``)."""

    def __init__(self, src: Path, out, fmt: str, start: float, end: float | None, offset: float,  # noqa: ANN001
                 warn: WarnFn | None, *, video_index: int | None = None, audio: bool = True) -> None:
        import av

        self._av = av
        self.inp = av.open(str(src), mode="r")
        self.start, self.end, self.offset = start, end, offset
        self._warn = warn
        self.fmt = fmt
        self.tracks: dict[int, _Track] = {}
        self.dropped: list[str] = []
        try:
            self._add_streams(out, video_index, audio)
        except BaseException:
            self.inp.close()
            raise
        in_streams = [t.source for t in self.tracks.values()]
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

    # ------------------------------------------------------------------ choosing

    def _add_streams(self, out, video_index: int | None, audio: bool) -> None:  # noqa: ANN001
        declares = declares_durations(self.inp)
        for s in self.inp.streams:
            if s.type == "audio":
                if audio:
                    self._add_audio(out, s, declares)
            elif s.type == "subtitle":
                self._add_subtitle(out, s)
            elif s.type == "attachment":
                self._add_attachment(out, s)
            elif s.type == "video" and s.index == video_index:
                continue
            elif s.type == "video" and s.disposition & s.disposition.__class__.attached_pic:
                self._drop(s, "cover pictures are not copied")
            elif s.type == "video":
                self._drop(s, "the output holds the one restyled video stream")
            else:
                self._drop(s, f"{s.type} streams are not copied")

    def _drop(self, stream, reason: str) -> None:  # noqa: ANN001
        message = f"input {_describe(stream)} not kept: {reason}"
        self.dropped.append(message)
        if self._warn is not None:
            self._warn(message)

    def _add_audio(self, out, s, declares: bool) -> None:  # noqa: ANN001
        name = s.codec_context.name
        copy = name in out.supported_codecs and not name.startswith(_NO_COPY.get(self.fmt, ())) and _header_accepts(self.fmt, s)
        if copy:
            o = out.add_stream_from_template(s)
            mode = "copy"
        else:
            cc = s.codec_context
            o = out.add_stream("aac", rate=cc.sample_rate or 48000)
            o.layout = _aac_layout(cc.layout)
            mode = "aac"
        self._keep_language(s, o)
        report = AudioReport(s.index, name, mode, declared_end=declared_end(s) if declares else None)
        self.tracks[s.index] = _Track(s, o, mode, report)

    def _add_subtitle(self, out, s) -> None:  # noqa: ANN001
        if _header_accepts(self.fmt, s):
            o = out.add_stream_from_template(s)
            mode = "copy"
        else:
            target = self._text_format(s)
            if target is None:
                self._drop(s, f"{_CONTAINER_NAMES.get(self.fmt, self.fmt)} cannot hold these subtitles (an .mkv output can)")
                return
            cc = s.codec_context
            try:
                cc.open()  # a text decoder opens with the ASS header it will produce
            except self._av.error.FFmpegError as exc:
                self._drop(s, f"its subtitles cannot be read ({_short(exc)})")
                return
            o = out.add_stream(target)
            o.codec_context.subtitle_header = cc.subtitle_header
            o.codec_context.time_base = Fraction(1, 1000)
            mode = "text"
        self._keep_language(s, o)
        self.tracks[s.index] = _Track(s, o, mode)

    def _text_format(self, s) -> str | None:  # noqa: ANN001
        """The output's own text subtitle format when ``s`` is text it can be converted from."""
        cc = s.codec_context
        if cc is None or not cc.codec.properties & _TEXT_SUBTITLES:
            return None
        target = _TEXT_FORMAT.get(self.fmt)
        if target is None:
            return None
        try:
            self._av.Codec(target, "w")
        except Exception:  # noqa: BLE001 - this FFmpeg build lacks the encoder
            return None
        return target

    def _add_attachment(self, out, s) -> None:  # noqa: ANN001
        if self.fmt != "matroska":
            self._drop(s, f"{_CONTAINER_NAMES.get(self.fmt, self.fmt)} cannot hold attachments (an .mkv output can)")
            return
        name = getattr(s, "name", None) or s.metadata.get("filename") or f"attachment{s.index}"
        mimetype = getattr(s, "mimetype", None) or s.metadata.get("mimetype") or "application/octet-stream"
        out.add_attachment(name, mimetype, bytes(s.data))

    @staticmethod
    def _keep_language(s, o) -> None:  # noqa: ANN001
        lang = s.metadata.get("language")
        if lang:
            o.metadata["language"] = lang

    # ------------------------------------------------------------------ writing

    @property
    def reports(self) -> list[AudioReport]:
        return [t.report for t in self.tracks.values() if t.report is not None]

    @property
    def subtitles_kept(self) -> int:
        return sum(1 for t in self.tracks.values() if t.source.type == "subtitle")

    def pump(self, out, until: float | None) -> None:  # noqa: ANN001
        """Write packets up to output time ``until`` seconds (everything when None)."""
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
            track = self.tracks[pkt.stream.index]
            if track.report is not None:
                rep = track.report
                length = float((pkt.duration or 0) * pkt.time_base)
                rep.end = t_in + length if rep.end is None else max(rep.end, t_in + length)
                rep.longest_packet = max(rep.longest_packet, length)
            if self.end is not None and t_in >= self.end:
                continue  # past the selected range (other streams may still be behind)
            if until is not None and t_in - self.offset > until:
                self._pending = pkt
                return
            self._write(out, track, pkt, t_in)

    def _write(self, out, track: _Track, pkt, t_in: float) -> None:  # noqa: ANN001
        if track.mode == "aac":
            try:
                frames = pkt.decode()
            except self._av.error.FFmpegError as exc:
                self._damaged(f"audio: skipped undecodable data: {_short(exc)}")
                return
            self._encode(out, track, frames)
            return
        # keep whole packets that start inside the range (audio packets are ~20 ms; a subtitle that
        # started before the range is left out)
        if self.start > 0 and t_in < self.start - 1e-6:
            return
        if track.mode == "text":
            self._convert(out, track, pkt)
            return
        # Decode each copied audio packet too (audio decodes at hundreds of times real time): a damaged
        # packet is dropped instead of being carried into an output that then fails to decode.
        if track.report is not None and not self._decodes(track.source, pkt):
            return
        shift = int(round(self.offset / pkt.time_base))
        pkt.pts -= shift
        if pkt.dts is not None:
            pkt.dts -= shift
            last = self._last_dts.get(track.source.index)
            if last is not None and pkt.dts <= last:
                self._damaged("audio: dropped a packet with a repeated timestamp")
                return  # muxers refuse non-increasing dts; damaged files repeat them
            self._last_dts[track.source.index] = pkt.dts
        pkt.stream = track.target
        out.mux(pkt)
        track.packets += 1
        if track.report is not None:
            track.report.packets += 1

    def _convert(self, out, track: _Track, pkt) -> None:  # noqa: ANN001
        """One text subtitle into the output's text format, at the input packet's time."""
        try:
            subs = track.source.codec_context.decode2(pkt)
            if subs is None or not len(subs.rects):
                return  # an empty packet (mov_text ends a line with one)
            new = track.target.codec_context.encode_subtitle(subs)
        except self._av.error.FFmpegError:
            return  # a damaged subtitle line is left out; the video and the other lines are not worth failing
        new.time_base = pkt.time_base
        new.pts = new.dts = pkt.pts - int(round(self.offset / pkt.time_base))
        new.duration = pkt.duration
        new.stream = track.target
        out.mux(new)
        track.packets += 1

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

    def _encode(self, out, track: _Track, frames) -> None:  # noqa: ANN001
        for af in frames:
            if af.pts is not None and af.time_base is not None:
                t = float(af.pts * af.time_base)
                if t < self.start - 1e-6 or (self.end is not None and t >= self.end):
                    continue
                af.pts -= int(round(self.offset / af.time_base))
            for p in track.target.encode(af):
                out.mux(p)
                track.report.packets += 1

    def finish(self, out) -> None:  # noqa: ANN001
        self.pump(out, None)
        for track in self.tracks.values():
            if track.mode != "aac":
                continue
            try:
                self._encode(out, track, track.source.codec_context.decode(None))
            except self._av.error.FFmpegError:
                pass
            for p in track.target.encode(None):
                out.mux(p)
                track.report.packets += 1

    def close(self) -> None:
        try:
            self.inp.close()
        except Exception:  # noqa: BLE001
            pass
