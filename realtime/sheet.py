"""Contact sheets: labelled image tiles on a grid, for training records and ``--sheet`` outputs."""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np


def _fit(image: np.ndarray, height: int) -> np.ndarray:
    h, w = image.shape[:2]
    return cv2.resize(image, (max(1, round(w * height / h)), height), interpolation=cv2.INTER_AREA)


def contact_sheet(rows: Sequence[Sequence[tuple[str, np.ndarray]]], tile_height: int = 192, pad: int = 6) -> np.ndarray:
    """Lay out rows of (label, H×W×3 uint8 RGB) tiles, each scaled to ``tile_height``, labels on top."""
    label_h = 22
    rendered: list[np.ndarray] = []
    for row in rows:
        tiles = []
        for label, image in row:
            tile = _fit(image, tile_height)
            canvas = np.full((tile_height + label_h, tile.shape[1], 3), 255, np.uint8)
            canvas[label_h:] = tile
            cv2.putText(canvas, label[:40], (3, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
            tiles.append(canvas)
            tiles.append(np.full((canvas.shape[0], pad, 3), 255, np.uint8))
        rendered.append(np.concatenate(tiles[:-1], axis=1) if tiles else np.zeros((1, 1, 3), np.uint8))
    width = max(r.shape[1] for r in rendered)
    out = []
    for r in rendered:
        out.append(np.pad(r, ((0, pad), (0, width - r.shape[1]), (0, 0)), constant_values=255))
    return np.concatenate(out, axis=0)


def save_image(path: str, image: np.ndarray) -> None:
    """Write an RGB uint8 image in the format its suffix names; raises OSError when it cannot be written."""
    if not cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise OSError(f"cannot write {path}")
