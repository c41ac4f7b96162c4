"""The input's other streams: subtitles and attachments kept where the output container holds them,
and one warning line for each stream that is not kept."""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from media import FONT_BYTES, make_clip_with_streams, probe, subtitle_lines


def warnings_in(err: str) -> list[str]:
    return [ln for ln in err.splitlines() if "warning:" in ln]


def stream_kinds(path: Path) -> list[tuple[str, str]]:
    with av.open(str(path)) as c:
        return [(s.type, s.codec_context.name if s.codec_context else s.metadata.get("filename", "")) for s in c.streams]


def languages(path: Path) -> list[str | None]:
    with av.open(str(path)) as c:
        return [s.metadata.get("language") for s in c.streams.subtitles]


def test_matroska_keeps_subtitles_and_fonts(run_cli, tmp_path: Path) -> None:
    src = tmp_path / "rich.mkv"
    lines = make_clip_with_streams(src, subtitles=("subrip", "ass"), font=True, second_video=True)
    out = tmp_path / "out.mkv"
    code, _, err = run_cli(src, out, "--quiet")
    assert code == 0, err
    # the one stream Matroska could hold but we do not write: the second video, named in one line
    warned = warnings_in(err)
    assert len(warned) == 1 and "stream 4 (video" in warned[0] and "not kept" in warned[0], err
    want = [(t, round(t + 0.3, 3), text) for t, text in lines]
    assert subtitle_lines(out) == [want, want]
    assert [k for k in stream_kinds(out) if k[0] == "subtitle"] == [("subtitle", "srt"), ("subtitle", "ssa")]
    assert languages(out) == ["fra", "fra"]
    with av.open(str(out)) as c:
        fonts = [(s.name, s.mimetype, bytes(s.data)) for s in c.streams.attachments]
    assert fonts == [("font.ttf", "font/ttf", FONT_BYTES)]
    assert probe(out).frames == 25


def test_mp4_gets_text_subtitles_as_mov_text(run_cli, tmp_path: Path) -> None:
    src = tmp_path / "rich.mkv"
    lines = make_clip_with_streams(src, subtitles=("subrip", "ass"), font=True)
    out = tmp_path / "out.mp4"
    code, _, err = run_cli(src, out, "--quiet")
    assert code == 0, err
    warned = warnings_in(err)
    assert len(warned) == 1 and "font.ttf" in warned[0] and "attachments" in warned[0], err
    want = [(t, round(t + 0.3, 3), text) for t, text in lines]
    assert subtitle_lines(out) == [want, want]
    assert [k for k in stream_kinds(out) if k[0] == "subtitle"] == [("subtitle", "mov_text")] * 2
    assert languages(out) == ["fra", "fra"]


@pytest.mark.parametrize("suffix", [".mp4", ".mov", ".mkv"])
def test_mov_text_is_kept(run_cli, tmp_path: Path, suffix: str) -> None:
    src = tmp_path / "phone.mp4"
    lines = make_clip_with_streams(src, subtitles=("mov_text",))
    out = tmp_path / f"out{suffix}"
    code, _, err = run_cli(src, out, "--quiet")
    assert code == 0, err
    assert warnings_in(err) == []
    got = subtitle_lines(out)
    # Matroska shifts every stream by AAC's priming time (~21 ms, see test_matroska_output_keeps_intervals)
    shift = got[0][0][0] if suffix == ".mkv" else 0.0
    assert 0 <= shift <= 0.05
    assert got == [[(round(t + shift, 3), round(t + shift + 0.3, 3), text) for t, text in lines]]


def test_a_cut_keeps_the_subtitles_of_its_range(run_cli, tmp_path: Path) -> None:
    src = tmp_path / "rich.mkv"
    make_clip_with_streams(src, subtitles=("subrip",))  # lines at 0.0, 0.4 and 0.8 s
    out = tmp_path / "cut.mkv"
    code, _, err = run_cli(src, out, "--quiet", "--start", "0.4", "--duration", "0.3")
    assert code == 0, err
    assert subtitle_lines(out) == [[(0.0, 0.3, "line 10")]]  # moved with the video, the others left out


@pytest.mark.parametrize(
    "name,kwargs,out_suffix,expect",
    [
        ("rich.mkv", dict(subtitles=("subrip",), font=True), ".avi", ["stream 2 (subtitle, ", "stream 3 (attachment, font.ttf"]),
        ("klv.ts", dict(data=True), ".mp4", ["stream 2 (data, klv"]),
        ("two.mkv", dict(second_video=True), ".mp4", ["stream 2 (video, h264"]),
    ],
)
def test_each_stream_left_out_is_named_once(run_cli, tmp_path: Path, name: str, kwargs: dict, out_suffix: str,
                                            expect: list[str]) -> None:
    src = tmp_path / name
    make_clip_with_streams(src, **kwargs)
    out = tmp_path / f"out{out_suffix}"
    code, _, err = run_cli(src, out, "--quiet")
    assert code == 0, err
    warned = warnings_in(err)
    assert len(warned) == len(expect), err
    for line, part in zip(warned, expect):
        assert part in line and "not kept" in line, line
    assert "Traceback" not in err
    b = probe(out)
    assert b.frames == 25 and len(b.audio) == 1  # the video and audio are all there
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_no_audio_still_keeps_subtitles(run_cli, tmp_path: Path) -> None:
    src = tmp_path / "rich.mkv"
    lines = make_clip_with_streams(src, subtitles=("subrip",))
    out = tmp_path / "out.mkv"
    code, _, err = run_cli(src, out, "--quiet", "--no-audio")
    assert code == 0, err
    assert warnings_in(err) == []  # audio left out on request is not a surprise
    assert [k[0] for k in stream_kinds(out)] == ["video", "subtitle"]
    assert [text for _, _, text in subtitle_lines(out)[0]] == [text for _, text in lines]
