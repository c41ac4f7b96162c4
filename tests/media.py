"""Synthetic media for tests, made with PyAV, and a probe that reads back what a player would see."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def _picture(i: int, w: int, h: int) -> np.ndarray:
    """A moving gradient with a bright square: every frame differs, encoders have something to code."""
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.empty((h, w, 3), np.uint8)
    img[..., 0] = (xx * 255 // max(1, w - 1) + 5 * i) % 256
    img[..., 1] = (yy * 255 // max(1, h - 1)) % 256
    img[..., 2] = (128 + 40 * np.sin((xx + yy + 3 * i) / 6.0)).astype(np.uint8)
    s = max(2, min(w, h) // 5)
    x0 = (3 * i) % max(1, w - s)
    img[: s, x0 : x0 + s] = 255
    return img


def make_video(
    path: Path,
    *,
    size: tuple[int, int] = (64, 48),
    frames: int = 20,
    fps: int = 25,
    vfr: bool = False,
    rotation: int | None = None,
    audio: str | None = None,
    audio_first: bool = False,
    audio_rate: int = 48000,
    audio_layout: str = "stereo",
    tone_hz: float = 440.0,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    gop: int | None = None,
    start: float = 0.0,
    bframes: int = 0,
    pts_from_dts: bool = False,
) -> list[float]:
    """Write a clip; returns the presentation time (s) of each video frame as written.

    ``vfr``: irregular frame intervals in a 1/1000 time base (like phone video). ``rotation``: display
    matrix rotation in counter-clockwise degrees (``VideoFrame.rotation`` convention). ``gop``: a
    keyframe every this many frames (the encoder's default otherwise: one for the whole clip). ``audio``: codec
    of a sine-tone track ("aac", "mp2", "pcm_s16le", "pcm_mulaw", ...), as long as the video.
    ``start``: every stream starts at this time (seconds; like a broadcast recording or a cut). The
    returned times include it. ``bframes``: x264 B-frames (presentation order differs from decode
    order). ``pts_from_dts``: store each video packet's decode time as its presentation time too, as
    some recorders do; the returned times are still the true presentation times.
    """
    w, h = size
    out = av.open(str(path), mode="w")
    a_stream = None

    def add_audio():
        s = out.add_stream(audio, rate=audio_rate)
        s.layout = audio_layout
        return s

    if audio and audio_first:
        a_stream = add_audio()
    v = out.add_stream(codec, rate=fps)
    v.width, v.height = w, h
    v.pix_fmt = pix_fmt
    if codec == "libx264":
        v.options = {"preset": "ultrafast"}
        if bframes:
            # ultrafast turns B-frames off; a pyramid of them reorders frames by up to `bframes`
            v.options = {"preset": "veryfast", "bf": str(bframes), "x264-params": "b-pyramid=normal:scenecut=0"}
    if gop:
        v.codec_context.gop_size = gop
    if vfr:
        v.time_base = Fraction(1, 1000)
        v.codec_context.time_base = Fraction(1, 1000)
    if rotation:
        v.set_display_rotation(rotation)
    if audio and not audio_first:
        a_stream = add_audio()

    def mux_video(packets) -> None:  # noqa: ANN001
        for p in packets:
            if pts_from_dts and p.dts is not None:
                p.pts = p.dts
            out.mux(p)

    steps = [40, 33, 70, 20, 55, 40, 100, 25]
    times: list[float] = []
    t_ms = int(round(start * 1000))
    for i in range(frames):
        img = _picture(i, w, h)
        vf = av.VideoFrame.from_ndarray(img, format="rgb24")
        if vfr:
            vf.pts = t_ms
            vf.time_base = Fraction(1, 1000)
            times.append(t_ms / 1000)
            t_ms += steps[i % len(steps)]
        else:
            vf.pts = i + int(round(start * fps))
            vf.time_base = Fraction(1, fps)
            times.append(vf.pts / fps)
        mux_video(v.encode(vf))
    mux_video(v.encode(None))

    if a_stream is not None:
        last = times[-1] - start + (steps[(frames - 1) % len(steps)] / 1000 if vfr else 1 / fps)
        n_total = int(round(last * audio_rate))
        first = int(round(start * audio_rate))
        chunk = 1024
        channels = av.AudioLayout(audio_layout).nb_channels
        pos = 0
        while pos < n_total:
            n = min(chunk, n_total - pos)
            t = (np.arange(pos, pos + n) / audio_rate).astype(np.float64)
            tone = (0.5 * np.sin(2 * np.pi * tone_hz * t)).astype(np.float32)
            data = np.tile(tone, (channels, 1))
            af = av.AudioFrame.from_ndarray(data, format="fltp", layout=audio_layout)
            af.sample_rate = audio_rate
            af.pts = first + pos
            af.time_base = Fraction(1, audio_rate)
            out.mux(a_stream.encode(af))
            pos += n
        out.mux(a_stream.encode(None))
    out.close()
    return times


# a minimal ASS header: FFmpeg's text subtitle encoders need one
_ASS_HEADER = (
    b"[Script Info]\nScriptType: v4.00+\n\n[V4+ Styles]\nFormat: Name, Fontname, Fontsize\nStyle: Default,Arial,20\n\n"
    b"[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
)
FONT_BYTES = b"\x00\x01\x00\x00 not really a font " * 8


def _subtitle_packet(stream, text: str, start_ms: int, length_ms: int) -> av.Packet:  # noqa: ANN001
    codec = stream.codec_context.name
    if codec == "mov_text":
        data = len(text.encode()).to_bytes(2, "big") + text.encode()  # 16-bit length, then the text
    elif codec in ("ass", "ssa"):
        data = f"0,0,Default,,0,0,0,,{text}".encode()  # Matroska's ASS block: ReadOrder,Layer,...,Text
    else:
        data = text.encode()
    p = av.Packet(data)
    p.stream = stream
    p.time_base = Fraction(1, 1000)
    p.pts = p.dts = start_ms
    p.duration = length_ms
    return p


def make_clip_with_streams(
    path: Path,
    *,
    frames: int = 25,
    fps: int = 25,
    subtitles: tuple[str, ...] = (),
    font: bool = False,
    second_video: bool = False,
    data: bool = False,
) -> list[tuple[float, str]]:
    """A clip with AAC audio and other streams beside the video: ``subtitles`` (codecs such as
    "subrip", "ass", "mov_text"; a line every 10 frames, 0.3 s long, language "fra"), a font
    attachment (Matroska), a second smaller video stream, a KLV data stream (MPEG-TS). Returns the
    subtitle lines as (start seconds, text)."""
    out = av.open(str(path), mode="w")
    v = out.add_stream("libx264", rate=fps)
    v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
    v.options = {"preset": "ultrafast"}
    a = out.add_stream("aac", rate=48000)
    a.layout = "stereo"
    subs = []
    for codec in subtitles:
        s = out.add_stream(codec)
        s.codec_context.subtitle_header = _ASS_HEADER
        s.metadata["language"] = "fra"
        subs.append(s)
    v2 = None
    if second_video:
        v2 = out.add_stream("libx264", rate=fps)
        v2.width, v2.height, v2.pix_fmt = 32, 24, "yuv420p"
        v2.options = {"preset": "ultrafast"}
    if font:
        out.add_attachment("font.ttf", "font/ttf", FONT_BYTES)
    d = out.add_data_stream("klv") if data else None
    lines: list[tuple[float, str]] = []
    for i in range(frames):
        for stream, w, h in ((v, 64, 48), (v2, 32, 24)):
            if stream is not None:
                vf = av.VideoFrame.from_ndarray(_picture(i, w, h), format="rgb24")
                vf.pts, vf.time_base = i, Fraction(1, fps)
                out.mux(stream.encode(vf))
        if i % 10 == 0:
            ms = i * 1000 // fps
            lines.append((ms / 1000, f"line {i}"))
            for s in subs:
                out.mux(_subtitle_packet(s, f"line {i}", ms, 300))
            if d is not None:
                p = av.Packet(b"\x06\x0e\x2b\x34 klv")
                p.stream, p.time_base = d, Fraction(1, 1000)
                p.pts = p.dts = ms
                out.mux(p)
    for stream in (v, v2):
        if stream is not None:
            out.mux(stream.encode(None))
    n = int(round(frames / fps * 48000))
    for pos in range(0, n, 1024):
        t = np.arange(pos, pos + 1024) / 48000
        tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        af = av.AudioFrame.from_ndarray(np.tile(tone, (2, 1)), format="fltp", layout="stereo")
        af.sample_rate, af.pts, af.time_base = 48000, pos, Fraction(1, 48000)
        out.mux(a.encode(af))
    out.mux(a.encode(None))
    out.close()
    return lines


def subtitle_lines(path: Path) -> list[list[tuple[float, float, str]]]:
    """The subtitle streams of a file as a player would show them: per stream, (start s, end s, text)
    of every line with text (formatting and ASS fields stripped)."""
    result = []
    with av.open(str(path)) as c:
        for s in c.streams.subtitles:
            shown = []
            with av.open(str(path)) as c2:
                s2 = c2.streams[s.index]
                for pkt in c2.demux(s2):
                    if not pkt.size or pkt.pts is None:
                        continue
                    for sub in s2.codec_context.decode2(pkt) or []:
                        text = (sub.ass or sub.text or b"").decode()
                        text = text.split(",", 8)[-1] if sub.ass else text  # ASS: Text is the 9th field
                        if text:
                            start = float(pkt.pts * pkt.time_base)
                            shown.append((round(start, 3), round(start + float(pkt.duration * pkt.time_base), 3), text))
            result.append(shown)
    return result


@dataclass
class AudioProbe:
    codec: str
    seconds: float  # decoded samples / rate
    rms: float


@dataclass
class VideoProbe:
    frames: int
    times: list[float]
    time_base: Fraction
    width: int
    height: int
    display: tuple[int, int]  # what a player shows: rotation and sample aspect ratio applied
    rotation: int
    codec: str
    video_index: int
    audio: list[AudioProbe] = field(default_factory=list)
    decode_errors: int = 0


def probe(path: Path, audio: bool = True) -> VideoProbe:
    """Decode the whole file (video and audio) the way a player would."""
    c = av.open(str(path))
    vs = c.streams.video[0]
    times: list[float] = []
    w = h = rot = 0
    errors = 0
    n = 0
    try:
        for pkt in c.demux(vs):
            try:
                for f in pkt.decode():
                    if n == 0:
                        w, h, rot = f.width, f.height, int(round(f.rotation)) % 360
                    n += 1
                    times.append(float(f.pts * f.time_base) if f.pts is not None else float("nan"))
            except av.error.FFmpegError:
                errors += 1
    finally:
        tb = Fraction(vs.time_base)
        codec = vs.codec_context.name
        sar = vs.sample_aspect_ratio
        vidx = vs.index
        c.close()
    dw, dh = (h, w) if rot % 180 else (w, h)
    if sar and sar != 1 and sar > 0:
        dw = int(round(dw * sar)) if not rot % 180 else dw
    result = VideoProbe(n, times, tb, w, h, (dw, dh), rot, codec, vidx, decode_errors=errors)
    if audio:
        c = av.open(str(path))
        try:
            for s in c.streams.audio:
                samples = 0
                sq = 0.0
                count = 0
                rate = s.codec_context.sample_rate
                for f in c.decode(s):
                    arr = f.to_ndarray().astype(np.float64)
                    if f.format.name.startswith("s16"):
                        arr /= 32768.0
                    elif f.format.name.startswith("s32"):
                        arr /= 2**31
                    elif f.format.name.startswith("u8"):
                        arr = (arr - 128) / 128
                    samples += f.samples
                    sq += float(np.sum(arr**2))
                    count += arr.size
                result.audio.append(AudioProbe(s.codec_context.name, samples / rate, (sq / max(1, count)) ** 0.5))
                c.seek(0)
        finally:
            c.close()
    return result
