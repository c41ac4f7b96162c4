"""Still-image files: read upright RGB, write PNG/JPEG/WebP atomically, list a folder's images.

OpenCV only (part of the base install): ``cv2.imdecode`` with ``IMREAD_COLOR`` applies the EXIF
orientation of a JPEG, turns grey, palette, CMYK and 16-bit images into 8-bit 3-channel ones. Images with
an alpha channel (PNG, WebP) are composited on white, as a transparent area is shown by viewers: decoding
those needs ``IMREAD_UNCHANGED``, which ignores EXIF orientation (rare in PNG/WebP; accepted).

Outputs are encoded in memory, written to a temporary file in the output folder and published under
their final name in one step, never replacing a file unless asked (the same scheme as the video sink).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from .errors import InputError, OutputError
from .outputs import partial_file, publish

# Suffixes taken as images when a folder is listed (what OpenCV decodes in its default build).
READ_SUFFIXES = frozenset({".jpg", ".jpeg", ".jpe", ".png", ".webp", ".bmp", ".tif", ".tiff", ".jp2", ".pbm",
                           ".pgm", ".ppm", ".pnm"})
# Formats we write, by suffix (the encoder OpenCV picks from it).
WRITE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def _has_alpha(head: bytes) -> bool:
    """Whether a PNG or WebP header announces transparency (cheap: no decoding)."""
    if head.startswith(b"\x89PNG\r\n\x1a\n") and len(head) > 25:
        # IHDR colour type 4 (grey + alpha) or 6 (RGBA); a tRNS chunk (palette/colour-key transparency)
        # follows IHDR and PLTE, so it sits within the first few kilobytes
        return head[25] in (4, 6) or b"tRNS" in head[:4096]
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        if head[12:16] == b"VP8X":
            return bool(head[20] & 0x10)
        if head[12:16] == b"VP8L" and len(head) > 24:
            return bool(head[24] & 0x10)  # alpha_is_used bit of the lossless header
    return False


def _to_rgb8(image: np.ndarray) -> np.ndarray:
    """Any decoded array (grey, grey+alpha, BGR, BGRA; 8 or 16 bit) → H×W×3 uint8 RGB, alpha over white."""
    if image.dtype == np.uint16:
        image = (image.astype(np.float32) * (255.0 / 65535.0) + 0.5).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = np.clip(image.astype(np.float32) * (255.0 if image.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    channels = image.shape[2]
    if channels == 2:  # grey + alpha
        bgr, alpha = cv2.cvtColor(np.ascontiguousarray(image[..., 0]), cv2.COLOR_GRAY2BGR), image[..., 1]
    elif channels == 4:
        bgr, alpha = image[..., :3], image[..., 3]
    else:
        return cv2.cvtColor(image[..., :3], cv2.COLOR_BGR2RGB)
    a = alpha.astype(np.float32)[..., None] * (1.0 / 255.0)
    over_white = bgr.astype(np.float32) * a + 255.0 * (1.0 - a)
    return cv2.cvtColor(np.rint(over_white).astype(np.uint8), cv2.COLOR_BGR2RGB)


def _quiet_opencv() -> int | None:
    """Silence OpenCV's own log lines (e.g. "[ERROR:0@0.2] ... IHDR chunk shall be first") while decoding:
    a bad file gets our one-line message instead. Returns the level to restore."""
    log = getattr(getattr(cv2, "utils", None), "logging", None)
    if log is None:
        return None
    level = log.getLogLevel()
    log.setLogLevel(log.LOG_LEVEL_SILENT)
    return level


@contextlib.contextmanager
def _native_stderr(captured: list[str]) -> Iterator[None]:
    """Catch what native code writes straight to file descriptor 2 meanwhile: the codec libraries print
    their own complaints there ("libpng error: IHDR: CRC error", "Corrupt JPEG data: ..."), outside
    OpenCV's log. The text is appended to ``captured``; the caller decides what to show."""
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all: nothing to catch
        yield
        return
    try:
        with tempfile.TemporaryFile() as sink:
            sys.stderr.flush()
            os.dup2(sink.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
                sink.seek(0)
                captured.append(sink.read().decode("utf-8", "replace"))
    finally:
        os.close(saved)


def _restore_opencv(level: int | None) -> None:
    if level is not None:
        cv2.utils.logging.setLogLevel(level)


def decode_image(data: bytes | np.ndarray, name: str = "image") -> np.ndarray:
    """Encoded image bytes → H×W×3 uint8 RGB, upright; InputError when they are not an image."""
    buf = np.frombuffer(data, np.uint8) if isinstance(data, (bytes, bytearray, memoryview)) else data
    if buf.size == 0:
        raise InputError(f"{name} is empty")
    flags = cv2.IMREAD_UNCHANGED if _has_alpha(bytes(buf[:4096])) else cv2.IMREAD_COLOR
    level = _quiet_opencv()
    printed: list[str] = []
    try:
        with _native_stderr(printed):
            image = cv2.imdecode(buf, flags)
    except cv2.error as exc:  # some decoders raise instead of returning None (e.g. over the pixel limit)
        raise InputError(f"{name} cannot be decoded as an image ({str(exc).strip().splitlines()[-1][:120]})") from None
    finally:
        _restore_opencv(level)
    lines = [ln.strip() for ln in "".join(printed).splitlines() if ln.strip()]
    if image is None or image.size == 0:
        # the decoder's own words, when it printed any, say what is wrong ("libpng error: IHDR: CRC error")
        why = lines[-1][:120] if lines else "corrupt, or not PNG/JPEG/WebP/BMP/TIFF"
        raise InputError(f"{name} is not an image OpenCV can read ({why})")
    if lines:  # decoded despite a complaint (e.g. a damaged JPEG): the complaint is shown, as before
        os.write(2, ("\n".join(lines) + "\n").encode())
    return _to_rgb8(image)


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file as H×W×3 uint8 RGB, EXIF orientation applied; InputError (one line) otherwise."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"input {p} does not exist")
    if p.is_dir():
        raise InputError(f"input {p} is a folder")
    try:
        # np.fromfile + imdecode rather than imread: it reports why a file cannot be opened (imread just
        # returns None) and takes any path the OS takes
        data = np.fromfile(str(p), np.uint8)
    except OSError as exc:
        raise InputError(f"cannot read {p}: {exc.strerror or exc}") from None
    return decode_image(data, str(p))


def output_suffix(path: str | os.PathLike[str]) -> str:
    """The normalised suffix of an output name (``.jpeg`` stays as given); OutputError for formats we do not write."""
    suffix = Path(path).suffix.lower()
    if suffix not in WRITE_SUFFIXES:
        shown = suffix or "(none)"
        raise OutputError(f"cannot write {shown} images ({Path(path).name}); use .png, .jpg or .webp")
    return suffix


def encode_image(image: np.ndarray, suffix: str, quality: int = 95) -> bytes:
    """H×W×3 uint8 RGB → the bytes of a PNG, JPEG or WebP file (``quality`` for JPEG/WebP, 1..100)."""
    suffix = suffix.lower()
    params: list[int] = []
    if suffix in (".jpg", ".jpeg"):
        params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    elif suffix == ".webp":
        params = [cv2.IMWRITE_WEBP_QUALITY, int(quality)]
    elif suffix == ".png":
        params = [cv2.IMWRITE_PNG_COMPRESSION, 3]  # fast; level 9 takes several times longer for ~5 % less
    else:
        raise OutputError(f"cannot write {suffix} images; use .png, .jpg or .webp")
    ok, buf = cv2.imencode(suffix, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise OutputError(f"OpenCV could not encode a {image.shape[1]}x{image.shape[0]} {suffix} image")
    return buf.tobytes()


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes, overwrite: bool = False) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder: on any failure (disk full,
    Ctrl+C) nothing appears under ``path`` and the temporary file is removed."""
    final = Path(path)
    fd, tmp = partial_file(final)
    try:
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
        except OSError as exc:
            raise OutputError(f"cannot write {final}: {exc.strerror or exc}") from None
        publish(tmp, final, overwrite)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_image(path: str | os.PathLike[str], image: np.ndarray, *, overwrite: bool = False, quality: int = 95) -> None:
    """Encode (format from the suffix) and write atomically; OutputError on failure."""
    write_bytes_atomic(path, encode_image(image, output_suffix(path), quality), overwrite)


def list_folder(folder: str | os.PathLike[str]) -> tuple[list[Path], list[Path]]:
    """(image files, other files) directly inside ``folder``, sorted by name; hidden files are ignored
    (they include our own temporary files)."""
    images, others = [], []
    for p in sorted(Path(folder).iterdir()):
        if p.name.startswith(".") or not p.is_file():
            continue
        (images if p.suffix.lower() in READ_SUFFIXES else others).append(p)
    return images, others
