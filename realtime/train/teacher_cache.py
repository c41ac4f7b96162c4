"""A disk memo of distillation targets, so a resumed or a next-stage run does not stylize every training
photo with the teacher again.

The teacher's targets are computed before the first step. For a multi-style teacher of the full tier on
the 2-core build machine that is every photo × every style (63 × 12 at short side 512): it took 28
minutes there (sharing the machine with one other job), paid again on each ``--resume`` and by each
stage of a staged build. Here each target is kept as
a lossless PNG under ``$REALTIME_TEACHER_CACHE`` (default ``<cache>/teacher_targets``, the cache of
``vgg.cache_dir``), keyed by the teacher file's SHA-256, the style and the exact pixels of the photo
the teacher saw, so a target read back is byte for byte the one computed, and any change of teacher,
style, photo or crop scale (which changes the cached photo's size) misses and computes afresh.
A cache that cannot be written only costs the time: training goes on.
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from .fetch import write_atomically
from .vgg import cache_dir

ENV_DIR = "REALTIME_TEACHER_CACHE"


def teacher_cache_dir() -> Path:
    return Path(os.environ.get(ENV_DIR) or cache_dir() / "teacher_targets")


class CachedTeacher:
    """``teacher(image) -> target`` with its results kept on disk; ``hits`` and ``misses`` count calls."""

    def __init__(self, teacher: Callable[[np.ndarray], np.ndarray], teacher_sha256: str, style: str,
                 folder: Path | None = None):
        self.teacher = teacher
        key = hashlib.sha256(f"{teacher_sha256}\0{style}".encode()).hexdigest()[:32]
        self.folder = (folder or teacher_cache_dir()) / key
        self.hits = self.misses = 0
        self._write_failed = False

    def _path(self, image: np.ndarray) -> Path:
        h = hashlib.sha256(repr((image.shape, str(image.dtype))).encode())
        h.update(np.ascontiguousarray(image).tobytes())
        return self.folder / f"{h.hexdigest()[:40]}.png"

    def __call__(self, image: np.ndarray) -> np.ndarray:
        path = self._path(image)
        if path.is_file():
            try:
                with Image.open(path) as im:
                    target = np.asarray(im.convert("RGB"))
                if target.shape == image.shape:
                    self.hits += 1
                    return target
            except Exception:  # a damaged file (PIL raises many kinds): compute it again
                pass
        target = self.teacher(image)
        self.misses += 1
        if not self._write_failed:
            buf = io.BytesIO()
            Image.fromarray(np.ascontiguousarray(target, dtype=np.uint8)).save(buf, format="PNG", compress_level=1)
            try:
                write_atomically(path, buf.getvalue())
            except OSError as exc:
                self._write_failed = True
                print(f"warning: cannot keep distillation targets in {self.folder} ({exc.strerror or exc}); "
                      f"a resumed run will compute them again", file=sys.stderr)
        return target
