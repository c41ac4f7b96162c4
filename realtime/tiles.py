"""Stylize an image too large for one network call in overlapping tiles, blended without seams.

Why it is needed: the network's activations grow with the pixel count (the full TransformNet holds
several 32..128-channel float maps of the image: gigabytes at 8000×6000), so peak memory is bounded by
running at most ``tile × tile`` pixels at a time; the image itself and one band of tiles are all that is
kept at full width.

Why seams stay invisible:
- tiles overlap by at least ``overlap`` pixels and are blended with raised-cosine weights that sum to one
  everywhere (a partition of unity), so there is no step anywhere, only a gradual hand-over;
- the weight is ~0 in the outer quarter of each overlap, where a tile's output is disturbed by its own
  border (padding instead of the real neighbours);
- tiles start on multiples of the model's ``size_multiple``, so a strided network samples the same grid
  as it would on the whole image;
- what cannot be made identical is instance normalisation: each tile is normalised with its own
  statistics. Large tiles (the default is 1024 px) make those close to the whole image's; the feathering
  turns what difference remains into a slow gradient rather than an edge.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

StylizeFn = Callable[[np.ndarray], np.ndarray]


def tile_spans(length: int, tile: int, overlap: int, multiple: int = 1) -> list[tuple[int, int]]:
    """(start, stop) spans that cover ``[0, length)``: each at most ``tile`` long (rounded down to a multiple
    of ``multiple``), starts on multiples of ``multiple``, neighbours overlapping by ``overlap`` or more,
    spread evenly. One span when the length fits in a tile."""
    multiple = max(1, multiple)
    size = (tile // multiple) * multiple
    if length <= size:
        return [(0, length)]
    # room for rounding the starts to the multiple without losing overlap
    step = size - overlap - 2 * multiple
    if step < multiple or overlap < 0:
        raise ValueError(f"tile {tile} is too small for overlap {overlap} (need tile ≥ overlap + {3 * multiple})")
    n = 1 + math.ceil((length - size) / step)
    last = math.ceil((length - size) / multiple) * multiple  # the last tile ends at the edge, at most `size` long
    starts = [int(round(i * (length - size) / (n - 1) / multiple)) * multiple for i in range(n - 1)] + [last]
    starts = sorted(set(starts))
    return [(s, min(s + size, length)) for s in starts]


def _ramp(n: int, margin: int) -> np.ndarray:
    """Rising weights over an overlap of ``n`` pixels: ~0 over the first ``margin``, a raised cosine to ~1
    in the middle, ~1 over the last ``margin``. Never exactly 0, so every pixel has some weight."""
    x = np.arange(n, dtype=np.float64) + 0.5
    width = max(n - 2 * margin, 1)
    t = np.clip((x - margin) / width, 1e-3, 1.0)
    return 0.5 - 0.5 * np.cos(np.pi * t)


def axis_weights(length: int, spans: list[tuple[int, int]]) -> list[np.ndarray]:
    """Blend weights of each span along one axis; at every position they sum to 1."""
    weights = []
    for i, (a, b) in enumerate(spans):
        w = np.ones(b - a, np.float64)
        if i > 0:  # hand-over from the previous tile over [a, previous stop)
            n = spans[i - 1][1] - a
            w[:n] *= _ramp(n, n // 4)
        if i + 1 < len(spans):  # hand-over to the next tile over [next start, b)
            n = b - spans[i + 1][0]
            w[b - a - n:] *= _ramp(n, n // 4)[::-1]
        weights.append(w)
    total = np.zeros(length, np.float64)
    for (a, b), w in zip(spans, weights):
        total[a:b] += w
    # exactly 1 already where two tiles meet (the ramps are complementary); this also covers three
    # tiles overlapping, which short images with large overlaps can produce
    return [(w / total[a:b]).astype(np.float32) for (a, b), w in zip(spans, weights)]


def tile_count(height: int, width: int, tile: int, overlap: int, multiple: int = 1) -> int:
    return len(tile_spans(height, tile, overlap, multiple)) * len(tile_spans(width, tile, overlap, multiple))


def _to_uint8(x: np.ndarray) -> np.ndarray:
    """Round and clip in place (``x`` is a finished part of the band, not used again), then convert."""
    np.rint(x, out=x)
    np.clip(x, 0, 255, out=x)
    return x.astype(np.uint8)


def stylize_tiled(image: np.ndarray, stylize: StylizeFn, tile: int, overlap: int, multiple: int = 1,
                  on_tile: Callable[[int, int], None] | None = None) -> np.ndarray:
    """``stylize`` (H×W×3 uint8 → same) applied to ``image`` in tiles of at most ``tile``×``tile`` pixels.

    The output is accumulated one band of tiles at a time: rows above the current band's start are
    final (no later tile reaches them) and are written out, so the float buffer is one band high.
    ``on_tile(done, total)`` is called after each tile (progress). An image that fits in one tile is
    stylized in one call.
    """
    h, w = image.shape[:2]
    ys = tile_spans(h, tile, overlap, multiple)
    xs = tile_spans(w, tile, overlap, multiple)
    total = len(ys) * len(xs)
    if total == 1:
        out = stylize(image)
        if on_tile is not None:
            on_tile(1, 1)
        return out
    wy, wx = axis_weights(h, ys), axis_weights(w, xs)
    out = np.empty((h, w, 3), np.uint8)
    band: np.ndarray | None = None
    band_start = band_stop = 0
    done = 0
    for (y0, y1), wrow in zip(ys, wy):
        new = np.zeros((y1 - y0, w, 3), np.float32)
        if band is not None:
            out[band_start:y0] = _to_uint8(band[: y0 - band_start])
            new[: band_stop - y0] = band[y0 - band_start:]
        for (x0, x1), wcol in zip(xs, wx):
            styled = stylize(np.ascontiguousarray(image[y0:y1, x0:x1]))
            new[:, x0:x1] += styled * np.outer(wrow, wcol)[:, :, None]  # one float temporary per tile
            done += 1
            if on_tile is not None:
                on_tile(done, total)
        band, band_start, band_stop = new, y0, y1
    assert band is not None
    out[band_start:] = _to_uint8(band)
    return out
