"""Reading images for training and evaluation: any mode (grey, RGBA, CMYK, palette), EXIF rotation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"}


def open_rgb(path: str | Path) -> Image.Image:
    """Open an image upright (EXIF orientation applied) as 8-bit RGB; RGBA is composited on white."""
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        if im.mode in ("RGBA", "LA") or (im.mode == "P" and "transparency" in im.info):
            im = im.convert("RGBA")
            background = Image.new("RGBA", im.size, (255, 255, 255, 255))
            im = Image.alpha_composite(background, im)
        return im.convert("RGB")


def resize_long_side(im: Image.Image, long_side: int | None) -> Image.Image:
    if not long_side or max(im.size) == long_side:
        return im
    scale = long_side / max(im.size)
    size = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
    return im.resize(size, Image.LANCZOS)


def to_tensor(im: Image.Image, multiple: int = 1) -> torch.Tensor:
    """1×3×H×W float in [0, 1]; H and W cropped down to a multiple of ``multiple``."""
    a = np.asarray(im, dtype=np.float32) / 255.0
    if multiple > 1:
        h, w = (a.shape[0] // multiple) * multiple, (a.shape[1] // multiple) * multiple
        a = a[:h, :w]
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1))).unsqueeze(0)


def to_uint8(t: torch.Tensor) -> np.ndarray:
    """3×H×W (or 1×3×H×W) float in [0, 1] → H×W×3 uint8."""
    if t.dim() == 4:
        t = t[0]
    return (t.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255.0 + 0.5).astype(np.uint8)


def list_images(folder: str | Path) -> list[Path]:
    """Image files below ``folder``, recursively, sorted for reproducibility."""
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
