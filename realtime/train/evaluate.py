"""Style and content distances (definitions in ../shared/DESIGN.md) of a stylization over a folder of photos.

A stylization is any callable from a 1×3×H×W tensor in [0, 1] to one of the same size: a trained network,
an exported model through the runtime stylizer, the identity (the input reference row) or the
optimisation method (``optimization_method``, the quality reference row).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from .images import list_images, open_rgb, resize_long_side, to_tensor, to_uint8
from .losses import EVAL_CONTENT_LAYER, STYLE_LAYERS, gram, lattice_share, target_grams

EVAL_LONG_SIDE = 512

Method = Callable[[torch.Tensor], torch.Tensor]


def _device(vgg: torch.nn.Module) -> torch.device:
    return next(vgg.parameters()).device


def load_style_grams(vgg: torch.nn.Module, style_image: str | Path, style_size: int) -> dict[str, torch.Tensor]:
    return target_grams(vgg, to_tensor(resize_long_side(open_rgb(style_image), style_size)).to(_device(vgg)))


def photo_tensor(path: str | Path, long_side: int = EVAL_LONG_SIDE) -> torch.Tensor:
    """A photo as evaluated: long side ``long_side``, cropped to a multiple of 4, 1×3×H×W in [0, 1]."""
    return to_tensor(resize_long_side(open_rgb(path), long_side), multiple=4)


def _distances(feats_y: dict[str, torch.Tensor], feats_x: dict[str, torch.Tensor],
               style_grams: dict[str, torch.Tensor]) -> tuple[float, float, list[float]]:
    """Style and content distances (losses.style_distance / content_distance) from features already
    computed: one VGG pass per image serves both, as relu3_3 is a style layer too. Also the style
    distance's terms, one per layer of STYLE_LAYERS (tools/style_layers.py)."""
    import torch.nn.functional as F

    terms = [F.mse_loss(gram(feats_y[n]), style_grams[n].expand(feats_y[n].shape[0], -1, -1)) for n in STYLE_LAYERS]
    content = float(F.mse_loss(feats_y[EVAL_CONTENT_LAYER], feats_x[EVAL_CONTENT_LAYER]))
    return float(sum(terms)), content, [float(t) for t in terms]


def stylizer_method(stylizer: Any) -> Method:
    """A runtime ``Stylizer`` (an exported model, as users run it) as a method: the photo through uint8
    and back, exactly what users get."""
    def run(x: torch.Tensor) -> torch.Tensor:
        out = stylizer.stylize([to_uint8(x)])[0]
        return torch.from_numpy(out.astype(np.float32) / 255.0).permute(2, 0, 1).unsqueeze(0).to(x.device)
    return run


@torch.no_grad()
def evaluate_photos(vgg: torch.nn.Module, stylize: Method, photos: Sequence[str | Path],
                    style_grams: dict[str, torch.Tensor], long_side: int = EVAL_LONG_SIDE) -> list[dict[str, float | str]]:
    """Per photo: style distance of ``stylize(x)`` to the style image, content distance to ``x``, its
    grid share (losses.lattice_share: how much of it is a 4-pixel pattern locked to the pixel grid) and
    the seconds ``stylize`` took."""
    return evaluate_styles(vgg, {"": (stylize, style_grams)}, photos, long_side)[""]


@torch.no_grad()
def evaluate_styles(vgg: torch.nn.Module, methods: dict[Any, tuple[Method, dict[str, torch.Tensor]]],
                    photos: Sequence[str | Path], long_side: int = EVAL_LONG_SIDE) -> dict[Any, list[dict[str, float | str]]]:
    """``evaluate_photos`` for several (stylize, style grams) pairs at once, by name: each photo is read
    and passed through VGG once for all of them (a 12-style model's evaluation did it 6 times a style)."""
    layers = list(dict.fromkeys([*STYLE_LAYERS, EVAL_CONTENT_LAYER]))
    rows: dict[str, list[dict[str, float | str]]] = {name: [] for name in methods}
    for path in photos:
        x = photo_tensor(path, long_side).to(_device(vgg))
        feats_x = vgg(x, layers)
        for name, (stylize, grams) in methods.items():
            t = time.perf_counter()
            out = stylize(x)
            seconds = time.perf_counter() - t
            feats_y = feats_x if out is x else vgg(out.float().clamp(0, 1), layers)  # the input row: x itself
            style, content, terms = _distances(feats_y, feats_x, grams)
            rows[name].append({"photo": Path(path).name, "style_distance": style, "content_distance": content,
                               "style_terms": terms,
                               "grid": lattice_share(out.float().clamp(0, 1)), "seconds": seconds})
    return rows


def summarise(rows: Sequence[dict[str, float | str]]) -> dict[str, float]:
    """Means over photos of ``evaluate_photos`` rows (NaN when there are none)."""
    if not rows:
        return {"style_distance": float("nan"), "content_distance": float("nan"), "grid": float("nan"),
                "seconds": float("nan"), "photos": 0}
    mean = lambda key: float(np.mean([float(r[key]) for r in rows]))  # noqa: E731
    # a photo under a grid tile (lattice_share's NaN) leaves the others' mean; NaN only when none has one
    grids = [float(r.get("grid", float("nan"))) for r in rows]
    grid = float(np.nanmean(grids)) if not all(np.isnan(grids)) else float("nan")
    return {"style_distance": mean("style_distance"), "content_distance": mean("content_distance"), "grid": grid,
            "seconds": mean("seconds"), "photos": len(rows)}


def evaluate_folder(vgg: torch.nn.Module, stylize: Method, photos: str | Path,
                    style_grams: dict[str, torch.Tensor], long_side: int = EVAL_LONG_SIDE) -> dict[str, float]:
    """Mean style distance (to the style image) and content distance (to the input) of ``stylize(x)``
    over the photos, each resized to ``long_side`` and cropped to a multiple of 4."""
    s = summarise(evaluate_photos(vgg, stylize, list_images(photos), style_grams, long_side))
    return {"style_distance": s["style_distance"], "content_distance": s["content_distance"], "photos": s["photos"]}


def evaluate_folder_styles(vgg: torch.nn.Module, methods: dict[Any, tuple[Method, dict[str, torch.Tensor]]],
                           photos: str | Path, long_side: int = EVAL_LONG_SIDE) -> dict[Any, dict[str, float]]:
    """``evaluate_folder`` for several (stylize, style grams) pairs, by name (``evaluate_styles``)."""
    rows = evaluate_styles(vgg, methods, list_images(photos), long_side)
    return {name: {k: v for k, v in summarise(r).items() if k != "seconds"} for name, r in rows.items()}


def optimization_method(vgg: torch.nn.Module, painting: np.ndarray, settings, size: int | None = None,  # noqa: ANN001
                        device: str = "auto", on_iteration=None) -> Method:  # noqa: ANN001
    """Gatys et al.'s optimisation as a method: each photo optimised at long side ``size`` (None: as
    given) against ``painting`` (H×W×3 uint8) with ``settings`` (``OptimizeSettings``), the result scaled
    back to the photo's size."""
    import cv2

    from .optimize import optimize_image, resize_array_long_side

    def run(x: torch.Tensor) -> torch.Tensor:
        photo = to_uint8(x)
        h, w = photo.shape[:2]
        if size:
            photo = resize_array_long_side(photo, size)
        out = optimize_image(photo, painting, settings, vgg=vgg, device=device, on_iteration=on_iteration).image
        if out.shape[:2] != (h, w):
            out = cv2.resize(out, (w, h), interpolation=cv2.INTER_CUBIC)
        return torch.from_numpy(out.astype(np.float32) / 255.0).permute(2, 0, 1).unsqueeze(0).to(x.device)

    return run
