"""Perceptual losses (Johnson et al. 2016) and the style/content distances used to evaluate models.

Gram matrices are normalised by C·H·W, so the style term does not depend on image size; the same
definitions serve the training loss and the evaluation metrics (see ../shared/DESIGN.md).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
import torch.nn.functional as F

STYLE_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
EVAL_CONTENT_LAYER = "relu3_3"


def gram(features: torch.Tensor) -> torch.Tensor:
    """Gram matrix per sample, normalised by C·H·W; computed in float32 even under autocast."""
    n, c, h, w = features.shape
    f = features.float().reshape(n, c, h * w)
    return torch.bmm(f, f.transpose(1, 2)) / (c * h * w)


def style_loss(
    features: Mapping[str, torch.Tensor],
    target_grams: Mapping[str, torch.Tensor],
    layer_weights: Mapping[str, float],
    sample_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Σ_l w_l · mean((G_l(y) − G_l(style))²); target grams are 1×C×C (broadcast over the batch) or one
    per crop. ``sample_weights`` (one per crop, mean 1 keeps the scale) weighs each crop's term, so a
    multi-style run can push some paintings harder than others."""
    total = torch.zeros((), device=next(iter(features.values())).device)
    for name, weight in layer_weights.items():
        g = gram(features[name]).float()
        per_crop = ((g - target_grams[name].float()) ** 2).mean(dim=(1, 2))
        if sample_weights is not None:
            per_crop = per_crop * sample_weights.to(per_crop)
        total = total + weight * per_crop.mean()
    return total


def content_loss(
    features: Mapping[str, torch.Tensor],
    targets: Mapping[str, torch.Tensor],
    layers: Sequence[str],
    sample_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Σ_l mean((φ_l(y) − φ_l(x))²); ``sample_weights`` (one per crop, as in style_loss) weighs each crop's
    term, so a multi-style run can keep more of the photo under some paintings than others."""
    if sample_weights is None:
        return sum(F.mse_loss(features[n].float(), targets[n].float()) for n in layers)  # type: ignore[return-value]
    total = torch.zeros((), device=next(iter(features.values())).device)
    for n in layers:
        per_crop = ((features[n].float() - targets[n].float()) ** 2).mean(dim=(1, 2, 3))
        total = total + (per_crop * sample_weights.to(per_crop)).mean()
    return total


def total_variation(images: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between neighbouring pixels (anisotropic TV), in [0, 1] pixel units."""
    dh = (images[:, :, 1:, :] - images[:, :, :-1, :]).abs().mean()
    dw = (images[:, :, :, 1:] - images[:, :, :, :-1]).abs().mean()
    return dh + dw


# Both tiers downsample twice by 2, so their output can carry a pattern that repeats every 4 pixels,
# locked to the network's grid rather than to the picture: the spectral images of the quarter-resolution
# features that nearest upsampling lets through. The Gram style loss rewards it (it is high-frequency
# energy the paintings have), and on flat or dark areas it shows as a fine diamond hatch, coarser once
# the runtime upscales the output (measured in the README: "Grid").
LATTICE_PERIOD = 4
# Measured per 64×64 tile: the pattern's strength varies across a picture, and a tile of 16×16 periods
# keeps a photo's own fine detail out of the measure (on 2 validation photos at 384 px the share is
# 0.013-0.019 per 16-px tile, 0.0002-0.0005 per 64-px tile; the great_wave outputs of both tiers
# 0.037-0.050 and 0.013-0.018, the_scream's fast 0.004-0.005 and 0.0002-0.0003).
LATTICE_TILE = 64


def stride_lattice(images: torch.Tensor, period: int = LATTICE_PERIOD, tile: int = LATTICE_TILE) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image: the mean energy of the part of each tile that repeats every ``period`` pixels (the mean
    over the tile of each of the period×period pixel phases, less the tile's mean), and the tiles' own
    variance, both per pixel and channel. Their ratio is the share of the picture's local variation that
    is a grid locked to the pixel phase: 1 for a pure 4-pixel pattern, 1/256 for white noise (a tile has
    256 pixels of each phase), below 0.001 for a photo. The image is cut to whole tiles from its top-left
    corner, where the network's grid starts."""
    n, c, h, w = images.shape
    if h < tile or w < tile or tile % period:
        raise ValueError(f"stride_lattice needs at least one {tile}x{tile} tile of whole {period}-pixel periods (got {h}x{w})")
    k, rows, cols = tile // period, h // tile, w // tile
    x = images.float()
    # A smooth ramp across a tile also differs from phase to phase (column 3 lies right of column 0), so
    # the phases are compared in the picture less its local mean over [1 2 2 2 1]/8 in each direction:
    # that filter passes straight ramps and has zeros at every multiple of 1/4 cycle a pixel, so the
    # difference keeps the whole period-4 pattern and drops the ramps.
    with torch.autocast(x.device.type, enabled=False):  # in float32 under a bf16/fp16 run too, as evaluated
        detail = x - F.conv2d(F.pad(x, (2, 2, 2, 2), mode="replicate"), _quarter_mean(c, x), groups=c)

    def tiles(t: torch.Tensor) -> torch.Tensor:
        return t[:, :, :rows * tile, :cols * tile].reshape(n, c, rows, k, period, cols, k, period)

    phase = tiles(detail).mean(dim=(3, 6))  # n, c, tile row, phase row, tile column, phase column
    lattice = ((phase - phase.mean(dim=(3, 5), keepdim=True)) ** 2).mean(dim=(1, 2, 3, 4, 5))
    y = tiles(x)
    variance = ((y - y.mean(dim=(3, 4, 6, 7), keepdim=True)) ** 2).mean(dim=(1, 2, 3, 4, 5, 6, 7))
    return lattice, variance


def _quarter_mean(channels: int, like: torch.Tensor) -> torch.Tensor:
    taps = torch.tensor([1.0, 2.0, 2.0, 2.0, 1.0], dtype=like.dtype, device=like.device) / 8
    return torch.outer(taps, taps).expand(channels, 1, 5, 5)


def lattice_loss(images: torch.Tensor) -> torch.Tensor:
    """The training penalty on that grid: its energy (``stride_lattice``), mean over the batch, in [0, 1]
    pixel units squared. Absolute, not the share: a share could be lowered by painting more texture.
    The tile is the largest one of at most LATTICE_TILE that divides the crop, so all of it counts (a
    96-px crop: 48)."""
    h, w = images.shape[-2:]
    tile = next((t for t in range(min(LATTICE_TILE, h, w) // LATTICE_PERIOD * LATTICE_PERIOD, 0, -LATTICE_PERIOD)
                 if h % t == 0 and w % t == 0), LATTICE_PERIOD)
    return stride_lattice(images, tile=tile)[0].mean()


def lattice_share(image: torch.Tensor) -> float:
    """The evaluation measure: the grid's energy ÷ the local variance, over the whole batch (NaN for a
    picture smaller than a tile)."""
    if min(image.shape[-2:]) < LATTICE_TILE:
        return float("nan")
    lattice, variance = stride_lattice(image)
    return float(lattice.sum() / variance.sum().clamp_min(1e-12))


@torch.no_grad()
def style_distance(vgg: torch.nn.Module, image: torch.Tensor, style_grams: Mapping[str, torch.Tensor]) -> float:
    """DESIGN.md's style distance for one image: Σ over relu1_2..relu4_3 of mean squared Gram difference."""
    feats = vgg(image, STYLE_LAYERS)
    return float(sum(F.mse_loss(gram(feats[n]), style_grams[n].expand(image.shape[0], -1, -1)) for n in STYLE_LAYERS))


@torch.no_grad()
def content_distance(vgg: torch.nn.Module, image: torch.Tensor, reference: torch.Tensor) -> float:
    """DESIGN.md's content distance: mean squared difference of relu3_3 features of image and reference."""
    a = vgg(image, [EVAL_CONTENT_LAYER])[EVAL_CONTENT_LAYER]
    b = vgg(reference, [EVAL_CONTENT_LAYER])[EVAL_CONTENT_LAYER]
    return float(F.mse_loss(a, b))


@torch.no_grad()
def target_grams(vgg: torch.nn.Module, style: torch.Tensor, layers: Sequence[str] = STYLE_LAYERS) -> dict[str, torch.Tensor]:
    feats = vgg(style, layers)
    return {n: gram(feats[n]) for n in layers}


def random_smooth_flow(n: int, h: int, w: int, magnitude: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """A random, smooth displacement field (N×2×H×W, in pixels): Gaussian values on a coarse 4×4 grid,
    upsampled bicubically, so neighbouring pixels move together as they would under camera motion."""
    coarse = torch.randn(n, 2, 4, 4, generator=generator) * magnitude
    return F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=True)


def warp(images: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Backward-warp ``images`` by ``flow`` (pixels): out(x) = images(x + flow(x)), borders replicated."""
    n, _, h, w = images.shape
    ys, xs = torch.meshgrid(torch.arange(h, device=images.device), torch.arange(w, device=images.device), indexing="ij")
    gx = (xs + flow[:, 0].to(images.device)) * (2.0 / max(w - 1, 1)) - 1.0
    gy = (ys + flow[:, 1].to(images.device)) * (2.0 / max(h - 1, 1)) - 1.0
    grid = torch.stack([gx, gy], dim=-1).to(images.dtype)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=True)


def distill_loss(y: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 to the teacher's output on pixels and on horizontal/vertical differences: the gradient term
    keeps the student's strokes as sharp as the teacher's (pixel L1 alone settles for a blur)."""
    def grads(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return t[..., :, 1:] - t[..., :, :-1], t[..., 1:, :] - t[..., :-1, :]

    (yx, yy), (tx, ty) = grads(y), grads(target)
    return F.l1_loss(y, target) + F.l1_loss(yx, tx) + F.l1_loss(yy, ty)
