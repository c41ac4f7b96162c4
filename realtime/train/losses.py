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


def content_loss(features: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor], layers: Sequence[str]) -> torch.Tensor:
    return sum(F.mse_loss(features[n].float(), targets[n].float()) for n in layers)  # type: ignore[return-value]


def total_variation(images: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between neighbouring pixels (anisotropic TV), in [0, 1] pixel units."""
    dh = (images[:, :, 1:, :] - images[:, :, :-1, :]).abs().mean()
    dw = (images[:, :, :, 1:] - images[:, :, :, :-1]).abs().mean()
    return dh + dw


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
