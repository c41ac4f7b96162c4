"""Training data: a folder of photos (recursive), random crops with scale jitter and flips.

Photos are decoded once and kept downscaled in memory (the content sets are small), so the training
loop is not starved by JPEG decoding on two cores.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

from realtime.errors import DataError

from .images import list_images, open_rgb


class CropDataset:
    """Random ``crop``×``crop`` patches. The source image is first resized so its short side is
    ``crop × s`` with s drawn uniformly from ``scale`` (scale jitter: the network sees objects at several
    sizes), then cropped at a random place and flipped left-right half of the time."""

    def __init__(self, folder: str | Path, crop: int, scale: tuple[float, float] = (1.0, 2.0), cache_short_side: int = 512,
                 teacher: Callable[[np.ndarray], np.ndarray] | None = None,
                 teachers: list[Callable[[np.ndarray], np.ndarray]] | None = None):
        """``teacher``: distillation targets of one style; ``teachers``: one per style of a multi-style
        network (the same teacher model with each style's vector), drawn by ``sample(style=k)``."""
        folder = Path(folder)
        if not folder.is_dir():
            raise DataError(f"training data folder not found: {folder}")
        self.crop, self.scale = crop, scale
        self.images: list[Image.Image] = []
        skipped = 0
        for path in list_images(folder):
            try:
                im = open_rgb(path)
                im.load()
            except Exception as exc:  # PIL raises many kinds for a damaged file
                print(f"warning: skipping unreadable image {path}: {exc.__class__.__name__}", file=sys.stderr)
                skipped += 1
                continue
            short = min(im.size)
            # Keep enough resolution for the largest jittered crop, no more.
            keep = max(crop, int(crop * scale[1]), min(short, cache_short_side))
            if short > keep:
                f = keep / short
                im = im.resize((max(crop, round(im.width * f)), max(crop, round(im.height * f))), Image.LANCZOS)
            self.images.append(im)
        if not self.images:
            raise DataError(f"no readable images in {folder}" + (f" ({skipped} unreadable skipped)" if skipped else ""))
        # Distillation targets: the teacher's stylization of each cached photo, computed once, cropped
        # and flipped together with the photo.
        self.targets: list[list[Image.Image]] | None = None
        teachers = teachers or ([teacher] if teacher is not None else [])
        if teachers:
            self.targets = [[Image.fromarray(t(np.asarray(im))) for im in self.images] for t in teachers]

    def __len__(self) -> int:
        return len(self.images)

    def sample(self, rng: random.Random, style: int = 0) -> torch.Tensor:
        """One crop, 3×crop×crop in [0, 1]; with a teacher, 6 channels: the photo, then its target (in
        ``style``, for a teacher of several styles)."""
        i = rng.randrange(len(self.images))
        im = self.images[i]
        pair = [im] if self.targets is None else [im, self.targets[style][i]]
        s = rng.uniform(*self.scale)
        short = self.crop * s
        f = short / min(im.size)
        w, h = max(self.crop, round(im.width * f)), max(self.crop, round(im.height * f))
        x, y = rng.randrange(w - self.crop + 1), rng.randrange(h - self.crop + 1)
        flip = rng.random() < 0.5
        out = []
        for p in pair:
            a = np.asarray(p.resize((w, h), Image.BILINEAR).crop((x, y, x + self.crop, y + self.crop)), dtype=np.float32) / 255.0
            out.append(a[:, ::-1] if flip else a)
        a = np.concatenate(out, axis=2)
        return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))

    def batch(self, rng: random.Random, size: int, styles: list[int] | None = None) -> torch.Tensor:
        return torch.stack([self.sample(rng, styles[k] if styles else 0) for k in range(size)])
