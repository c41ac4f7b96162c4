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
) -> list[float]:
    """Write a clip; returns the presentation time (s) of each video frame as written.

    ``vfr``: irregular frame intervals in a 1/1000 time base (like phone video). ``rotation``: display
    matrix rotation in counter-clockwise degrees (``VideoFrame.rotation`` convention). ``gop``: a
    keyframe every this many frames (the encoder's default otherwise: one for the whole clip). ``audio``: codec
    of a sine-tone track ("aac", "mp2", "pcm_s16le", "pcm_mulaw", ...), as long as the video.
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
    if gop:
        v.codec_context.gop_size = gop
    if vfr:
        v.time_base = Fraction(1, 1000)
        v.codec_context.time_base = Fraction(1, 1000)
    if rotation:
        v.set_display_rotation(rotation)
    if audio and not audio_first:
        a_stream = add_audio()

    steps = [40, 33, 70, 20, 55, 40, 100, 25]
    times: list[float] = []
    t_ms = 0
    for i in range(frames):
        img = _picture(i, w, h)
        vf = av.VideoFrame.from_ndarray(img, format="rgb24")
        if vfr:
            vf.pts = t_ms
            vf.time_base = Fraction(1, 1000)
            times.append(t_ms / 1000)
            t_ms += steps[i % len(steps)]
        else:
            vf.pts = i
            vf.time_base = Fraction(1, fps)
            times.append(i / fps)
        out.mux(v.encode(vf))
    out.mux(v.encode(None))

    if a_stream is not None:
        last = times[-1] + (steps[(frames - 1) % len(steps)] / 1000 if vfr else 1 / fps)
        n_total = int(round(last * audio_rate))
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
            af.pts = pos
            af.time_base = Fraction(1, audio_rate)
            out.mux(a_stream.encode(af))
            pos += n
        out.mux(a_stream.encode(None))
    out.close()
    return times


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
