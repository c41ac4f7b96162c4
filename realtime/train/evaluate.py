"""Style and content distances (definitions in ../shared/DESIGN.md) of a stylization over a folder of photos."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .images import list_images, open_rgb, resize_long_side, to_tensor
from .losses import content_distance, style_distance, target_grams

EVAL_LONG_SIDE = 512


def load_style_grams(vgg: torch.nn.Module, style_image: str | Path, style_size: int) -> dict[str, torch.Tensor]:
    return target_grams(vgg, to_tensor(resize_long_side(open_rgb(style_image), style_size)))


def evaluate_folder(vgg: torch.nn.Module, stylize: Callable[[torch.Tensor], torch.Tensor], photos: str | Path,
                    style_grams: dict[str, torch.Tensor], long_side: int = EVAL_LONG_SIDE) -> dict[str, float]:
    """Mean style distance (to the style image) and content distance (to the input) of ``stylize(x)``
    over the photos, each resized to ``long_side`` and cropped to a multiple of 4."""
    styles, contents = [], []
    for path in list_images(photos):
        x = to_tensor(resize_long_side(open_rgb(path), long_side), multiple=4)
        y = stylize(x).float().clamp(0, 1)
        styles.append(style_distance(vgg, y, style_grams))
        contents.append(content_distance(vgg, y, x))
    return {"style_distance": float(np.mean(styles)), "content_distance": float(np.mean(contents)), "photos": len(styles)}
