"""The driver's side of the output: the workers' encoded segments joined, in order, into one file, with
the input's other streams (audio, subtitles, attachments) copied once.

Each segment arrives as a small file of the output's container (work.py). The first one's video stream
is the template of the output's (codec parameters, colour tags, aspect ratio); the packets of every
segment are copied over with their timestamps (already counted from the input's origin), and the
other streams are interleaved as the video advances (``remux.StreamCopier``, the same copier a
single-machine run uses). The output is written under a
temporary name and renamed when complete (outputs.py); ``abort`` removes it.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Callable

from ..errors import RealtimeError
from ..outputs import discard, partial_file, publish
from ..remux import AudioReport, StreamCopier
from ..sinks import container_format

WarnFn = Callable[[str], None]


class SegmentJoiner:
    """``joiner.add(segment_file_bytes)`` in order, then ``close()`` (publishes) or ``abort()``."""

    def __init__(self, output: Path, *, streams_from: Path | None, overwrite: bool, warn: WarnFn | None = None,
                 video_index: int | None = None, copy_audio: bool = True, origin: float = 0.0) -> None:
        """``streams_from``: the input whose streams other than ``video_index`` are copied (audio only
        when ``copy_audio``); ``origin``: its time that the output's 0 stands for (seconds)."""
        self.output = Path(output)
        self.format = container_format(self.output)
        self.streams_from = streams_from
        self.video_index, self.copy_audio, self.origin = video_index, copy_audio, origin
        self.overwrite = overwrite
        self._warn = warn
        self.tmp_path: Path | None = None
        self._out = None
        self._video = None
        self._extradata: bytes | None = None
        self._audio: StreamCopier | None = None
        self._last_dts: int | None = None
        self.audio: list[AudioReport] = []
        self.packets = 0

    def _open(self, template) -> None:  # noqa: ANN001 - the first segment's video stream
        import av

        fd, self.tmp_path = partial_file(self.output)
        os.close(fd)  # FFmpeg opens it by name
        self._out = av.open(str(self.tmp_path), mode="w", format=self.format)
        self._video = self._out.add_stream_from_template(template)
        self._extradata = template.codec_context.extradata
        if self.streams_from is not None:
            self._audio = StreamCopier(self.streams_from, self._out, self.format, 0.0, None, self.origin, self._warn,
                                       video_index=self.video_index, audio=self.copy_audio)
            self.audio = self._audio.reports

    def add(self, data: bytes) -> None:
        """Append one segment (a file of the output's container; empty: nothing decoded there)."""
        import av

        if not data:
            return
        with av.open(io.BytesIO(data), mode="r") as seg:
            vs = seg.streams.video[0]
            if self._out is None:
                self._open(vs)
            elif vs.codec_context.extradata != self._extradata:
                # every worker runs the same encoder settings on the same frame size: a different
                # stream header would make a file that decodes wrongly after the boundary
                raise RealtimeError("a segment was encoded with other stream parameters than the first; cannot join")
            for pkt in seg.demux(vs):
                if pkt.size == 0:
                    continue
                pkt.stream = self._video
                self._out.mux(pkt)
                self.packets += 1
                if self._audio is not None and pkt.pts is not None:
                    self._audio.pump(self._out, float(pkt.pts * pkt.time_base))

    def close(self) -> None:
        """Finish the audio, write the trailer and give the file its name."""
        if self._out is None:
            raise RealtimeError("no frames to write")
        try:
            if self._audio is not None:
                self._audio.finish(self._out)
                self._audio.close()
                self._audio = None
            self._out.close()
            self._out = None
            assert self.tmp_path is not None
            publish(self.tmp_path, self.output, self.overwrite)
            self.tmp_path = None
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Stop; the temporary file is removed and the output name left untouched."""
        if self._audio is not None:
            self._audio.close()
            self._audio = None
        if self._out is not None:
            try:
                self._out.close()
            except Exception:  # noqa: BLE001 - closing a half-written file must not mask the real error
                pass
            self._out = None
        discard(self.tmp_path)
        self.tmp_path = None
