"""Training data: a folder of photos (recursive), random crops with scale jitter and flips.

Photos are decoded once and kept downscaled in memory (the content sets are small), so the training
loop is not starved by JPEG decoding on two cores.
"""

from __future__ import annotations

import random
import sys
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

from realtime.errors import DataError

from .images import list_images, open_rgb


@dataclass(frozen=True)
class CropPlan:
    """One crop's random choices: which photo (and style), the size it is resized to, the crop's top-left
    corner, and whether it is flipped."""

    image: int
    style: int
    size: tuple[int, int]
    origin: tuple[int, int]
    flip: bool


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

    def plan(self, rng: random.Random, style: int = 0) -> CropPlan:
        """Draw one crop's random choices (photo, scale, place, flip) from ``rng``; nothing is resized yet."""
        i = rng.randrange(len(self.images))
        im = self.images[i]
        s = rng.uniform(*self.scale)
        short = self.crop * s
        f = short / min(im.size)
        w, h = max(self.crop, round(im.width * f)), max(self.crop, round(im.height * f))
        x, y = rng.randrange(w - self.crop + 1), rng.randrange(h - self.crop + 1)
        flip = rng.random() < 0.5
        return CropPlan(i, style, (w, h), (x, y), flip)

    def render(self, plan: CropPlan) -> torch.Tensor:
        """The crop a plan describes, 3×crop×crop in [0, 1]; with a teacher, 6 channels: the photo, then its
        target (in the plan's style, for a teacher of several styles)."""
        im = self.images[plan.image]
        pair = [im] if self.targets is None else [im, self.targets[plan.style][plan.image]]
        (w, h), (x, y) = plan.size, plan.origin
        out = []
        for p in pair:
            a = np.asarray(p.resize((w, h), Image.BILINEAR).crop((x, y, x + self.crop, y + self.crop)), dtype=np.float32) / 255.0
            out.append(a[:, ::-1] if plan.flip else a)
        a = np.concatenate(out, axis=2)
        return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))

    def sample(self, rng: random.Random, style: int = 0) -> torch.Tensor:
        """One crop (``render`` of a fresh ``plan``)."""
        return self.render(self.plan(rng, style))

    def batch(self, rng: random.Random, size: int, styles: list[int] | None = None,
              pool: Executor | None = None) -> torch.Tensor:
        """``size`` crops. Every random choice is drawn here, in order, so ``pool`` (threads: PIL's resize
        releases the GIL) changes only the speed, never the batch: a GPU step is shorter than resizing a
        batch of photos one after another."""
        plans = [self.plan(rng, styles[k] if styles else 0) for k in range(size)]
        crops = list(pool.map(self.render, plans)) if pool is not None and size > 1 else [self.render(p) for p in plans]
        return torch.stack(crops)
