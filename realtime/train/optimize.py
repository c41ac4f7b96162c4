"""Gatys et al.'s method: stylize one image by optimising its pixels (needs torch).

Start from the photo (or noise) and change the pixels until the VGG Gram matrices match the painting's
and the features still match the photo's: slow (hundreds of network passes per image) but needs no
training, takes any painting, and, with the same loss network, layers and weights as the trainer, it is
the optimum the fast networks only approximate: the quality reference ``tools/evaluate.py`` prints.

``PRESETS`` hold other objectives in one word: ``gatys2016`` is the method as its authors run it (see
``preset_values``).

The image is optimised in pixel space and clamped to [0, 1] after every step (a sigmoid
parametrisation would keep the bounds too, but its gradient vanishes at saturated pixels, which photos
have plenty of). L-BFGS (the classic choice: it converges in a few hundred iterations) or Adam (cheaper
per iteration, steadier with noise init); one iteration is one forward and backward pass through VGG.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Mapping

import cv2
import numpy as np
import torch

from realtime.errors import DeviceError, RealtimeError

from .losses import STYLE_LAYERS, content_loss, style_loss, target_grams, total_variation
from .vgg import LOSS_NETS, VGGFeatures, check_layers, load_vgg

OPTIMIZERS = ("lbfgs", "adam")
PRESET_NAMES = ("gatys2016",)
INITS = ("content", "noise")
DEFAULT_LR = {"lbfgs": 1.0, "adam": 0.02}
LOSS_SCALE = 100.0  # what the optimiser sees as the starting loss (see optimize_image)
RESTART_FACTOR = 2.0  # a loss this many times the best so far counts as diverging
MAX_RESTARTS = 20

# (iteration, losses, current image as H×W×3 uint8 on demand) → None
IterationFn = Callable[[int, Mapping[str, float], Callable[[], np.ndarray]], None]


@dataclass
class OptimizeSettings:
    """The objective (the trainer's defaults, so results compare with trained models) and the optimiser."""

    iterations: int = 300
    loss_net: str = "vgg16"  # vgg16 | vgg19
    optimizer: str = "lbfgs"
    lr: float | None = None  # None: 1.0 for L-BFGS, 0.02 for Adam (pixels are in [0, 1])
    content_weight: float = 1e5
    style_weight: float = 1e10
    tv_weight: float = 1e1
    content_layers: tuple[str, ...] = ("relu2_2",)
    style_layer_weights: dict[str, float] = field(default_factory=lambda: {n: 1.0 for n in STYLE_LAYERS})
    init: str = "content"
    style_size: int | None = None  # long side of the painting in pixels; None: the content's long side
    seed: int = 0

    def validate(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise RealtimeError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.init not in INITS:
            raise RealtimeError(f"init must be one of {', '.join(INITS)}, got {self.init!r}")
        if self.iterations < 1:
            raise RealtimeError("iterations must be at least 1")
        if self.loss_net not in LOSS_NETS:
            raise RealtimeError(f"loss network must be one of {', '.join(LOSS_NETS)}, got {self.loss_net!r}")
        if not self.style_layer_weights:
            raise RealtimeError("no style layers given")
        check_layers([*self.content_layers, *self.style_layer_weights], self.loss_net)
        if min(self.content_weight, self.style_weight, self.tv_weight) < 0:
            raise RealtimeError("loss weights must not be negative")

    @classmethod
    def from_training(cls, settings: Mapping[str, Any], **overrides: Any) -> "OptimizeSettings":
        """The objective a style model was trained with (its record's ``settings``), so the optimisation
        result is the reference for exactly that model."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in settings.items() if k in known and k not in ("iterations", "lr", "seed")}
        if "content_layers" in values:
            values["content_layers"] = tuple(values["content_layers"])
        values.update(overrides)
        return cls(**values)


def preset_values(name: str, input_norm: str = "caffe") -> dict[str, Any]:
    """The settings a preset sets (``OptimizeSettings`` fields); the options given beside it win.

    ``gatys2016``: Gatys, Ecker and Bethge, "Image Style Transfer Using Convolutional Neural Networks"
    (CVPR 2016) as their own PyTorch code (leongatys/PytorchNeuralStyleTransfer) runs it: VGG19, content
    at relu4_2 (the paper's "conv4_2": in Caffe the ReLU overwrites the convolution's output in place, so
    the paper's layer names mean the rectified outputs, as their code's r42 and Johnson's neural-style's
    relu4_2 do), style at relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 with equal weights, L-BFGS from the
    photo, no TV term, 500 iterations, max pooling. Their Gram loss is 1e3/C² · MSE of F·Fᵀ/(H·W), which
    is 1e3 · our per-layer loss (Gram / (C·H·W)); their content loss is MSE with weight 1. So: content
    weight 1, style weight 5e3 with 0.2 per layer. These are for the original weights (0..255 input);
    torchvision's VGG19 sees ImageNet-normalised input, whose features are ~58× smaller (style terms
    ∝ scale⁴, content ∝ scale²): there the style weight is 1000× higher (per layer the 1e6 of the
    PyTorch tutorial, which uses torchvision's weights).
    """
    if name != "gatys2016":
        raise RealtimeError(f"unknown preset {name!r}; choose from {', '.join(PRESET_NAMES)}")
    return {
        "loss_net": "vgg19",
        "content_layers": ("relu4_2",),
        "style_layer_weights": {n: 0.2 for n in ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")},
        "content_weight": 1.0,
        "style_weight": 5e3 if input_norm == "caffe" else 5e6,
        "tv_weight": 0.0,
        "init": "content",
        "optimizer": "lbfgs",
        "iterations": 500,
    }


def resolve_settings(preset: str | None, given: Mapping[str, Any], input_norm: str = "caffe") -> OptimizeSettings:
    """Our defaults, overridden by the preset's values (for weights that take ``input_norm``), overridden
    by the options ``given`` (None: not given)."""
    values = dict(preset_values(preset, input_norm)) if preset else {}
    values.update({k: v for k, v in given.items() if v is not None})
    if "content_layers" in values:
        values["content_layers"] = tuple(values["content_layers"])
    return OptimizeSettings(**values)


@dataclass
class OptimizeResult:
    image: np.ndarray  # H×W×3 uint8 RGB, the size of the content image
    history: list[dict[str, float]]  # weighted losses before each iteration; the last entry is the result's
    seconds: float
    device: str
    restarts: int = 0  # times L-BFGS went back to the best image after overshooting


def pick_device(device: str) -> torch.device:
    """``auto``: CUDA when torch can use it; ``cuda`` or ``cuda:N``: an error when it cannot. TensorRT is
    ONNX Runtime's: it does not apply to the optimisation, which runs on PyTorch."""
    kind, _, index = device.partition(":")
    if kind not in ("auto", "cpu", "cuda") or (index and (kind != "cuda" or not index.isdigit())):
        raise DeviceError(f"device {device!r} does not apply here (PyTorch); choose auto, cpu, cuda or cuda:N")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"--device {device}: this PyTorch cannot use a CUDA GPU (CPU build, or no GPU); use --device cpu")
        if index and int(index) >= torch.cuda.device_count():
            raise DeviceError(f"--device {device}: there is no GPU {index} ({torch.cuda.device_count()} found)")
        return torch.device(device)
    return torch.device("cuda" if kind == "auto" and torch.cuda.is_available() else "cpu")


def _tensor(image: np.ndarray, device: torch.device) -> torch.Tensor:
    """H×W×3 uint8 → 1×3×H×W float in [0, 1]."""
    t = torch.from_numpy(np.ascontiguousarray(image)).to(device)
    return t.permute(2, 0, 1).unsqueeze(0).float().div_(255.0).contiguous()  # L-BFGS views the gradient flat


def _image(x: torch.Tensor) -> np.ndarray:
    return (x.detach()[0].clamp(0, 1).permute(1, 2, 0).mul(255.0).add_(0.5).to(torch.uint8).cpu().numpy())


def resize_array_long_side(image: np.ndarray, long_side: int) -> np.ndarray:
    """H×W×3 uint8 scaled so its long side is ``long_side`` (area when shrinking, cubic when enlarging)."""
    h, w = image.shape[:2]
    if max(h, w) == long_side:
        return image
    scale = long_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)


class Objective:
    """Weighted content + style + TV loss of an image against fixed targets (computed once)."""

    def __init__(self, vgg: VGGFeatures, content: torch.Tensor, style: torch.Tensor, s: OptimizeSettings) -> None:
        self.vgg, self.s = vgg, s
        self.layers = sorted({*s.content_layers, *s.style_layer_weights}, key=vgg.layer_index.__getitem__)
        with torch.no_grad():
            feats = vgg(content, s.content_layers)
            self.content_targets = {n: feats[n].detach() for n in s.content_layers}
            self.grams = target_grams(vgg, style, tuple(s.style_layer_weights))

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        s = self.s
        feats = self.vgg(x, self.layers)
        lc = s.content_weight * content_loss(feats, self.content_targets, s.content_layers) if s.content_layers else x.new_zeros(())
        ls = s.style_weight * style_loss(feats, self.grams, s.style_layer_weights)
        lt = s.tv_weight * total_variation(x)
        total = lc + ls + lt
        parts = {"total": total, "content": lc, "style": ls, "tv": lt}
        return total, {k: float(v.detach()) for k, v in parts.items()}


def optimize_image(content: np.ndarray, style: np.ndarray, settings: OptimizeSettings | None = None, *,
                   vgg: VGGFeatures | None = None, vgg_weights: str | None = None, device: str = "auto",
                   on_iteration: IterationFn | None = None) -> OptimizeResult:
    """Stylize ``content`` (H×W×3 uint8 RGB) with the painting ``style`` by optimisation.

    ``on_iteration(i, losses, image)`` is called after iteration ``i`` (1-based) with the losses measured
    in it (those of the image it started from) and a function returning the current image as uint8 (for
    progress and intermediate saves); an exception it raises (e.g. KeyboardInterrupt) ends the run.
    """
    s = settings or OptimizeSettings()
    s.validate()
    dev = pick_device(device)
    if vgg is None:
        vgg = load_vgg(vgg_weights, arch=s.loss_net)
    if vgg.arch != s.loss_net:
        raise RealtimeError(f"the settings ask for {s.loss_net} but the loss network given is {vgg.arch}")
    vgg = vgg.to(dev)
    t0 = time.perf_counter()
    c = _tensor(content, dev)
    style_side = s.style_size or max(content.shape[:2])
    p = _tensor(resize_array_long_side(style, style_side), dev)
    objective = Objective(vgg, c, p, s)

    generator = torch.Generator().manual_seed(s.seed)
    if s.init == "content":
        x = c.clone()
    else:
        x = torch.rand(c.shape, generator=generator).to(dev)
    x.requires_grad_(True)
    with torch.no_grad():
        start_loss, _ = objective(x)
    # The optimiser sees the loss scaled to LOSS_SCALE at the start. Adam does not care; L-BFGS does (its
    # first step and its curvature test use absolute values): unscaled losses of ~1e8, as the trainer's
    # weights give, made it diverge on some images, scaled ones of 1..1e6 converged alike (measured).
    scale = LOSS_SCALE / float(start_loss) if float(start_loss) > 0 else 1.0
    lr = s.lr if s.lr is not None else DEFAULT_LR[s.optimizer]

    def make_optimizer() -> torch.optim.Optimizer:
        if s.optimizer == "lbfgs":
            # One L-BFGS iteration per step() (max_iter=1) so that clamping, progress and saving happen
            # between iterations; the curvature history lives in the optimiser across calls. No
            # tolerances: the caller asked for a number of iterations.
            return torch.optim.LBFGS([x], lr=lr, max_iter=1, history_size=50, tolerance_grad=0.0, tolerance_change=0.0)
        return torch.optim.Adam([x], lr=lr)

    opt = make_optimizer()
    history: list[dict[str, float]] = []
    best = {"total": float("inf"), "x": x.detach().clone()}
    restarts = 0

    def closure() -> torch.Tensor:
        opt.zero_grad(set_to_none=False)
        loss, parts = objective(x)
        (loss * scale).backward()
        history.append(parts)
        if parts["total"] < best["total"]:
            best["total"], best["x"] = parts["total"], x.detach().clone()
        return loss * scale

    for i in range(1, s.iterations + 1):
        opt.step(closure)
        with torch.no_grad():
            x.clamp_(0.0, 1.0)
        measured = history[-1]["total"]
        if not np.isfinite(measured) or measured > RESTART_FACTOR * best["total"]:
            # L-BFGS without a line search can overshoot (clamping also makes its curvature pairs
            # inexact): go back to the best image and start a fresh history instead of diverging
            if restarts >= MAX_RESTARTS:
                raise RealtimeError(f"the optimisation diverged at iteration {i} (loss {measured:.4g}); "
                                    "lower the learning rate (--lr) or try --optimizer adam")
            restarts += 1
            with torch.no_grad():
                x.copy_(best["x"])
            opt = make_optimizer()
        if on_iteration is not None:
            on_iteration(i, history[-1], lambda: _image(x))
    with torch.no_grad():
        _, final = objective(x)
        if final["total"] > best["total"]:  # the last step went uphill: the best image seen is the result
            x.copy_(best["x"])
            _, final = objective(x)
    history.append(final)
    return OptimizeResult(image=_image(x), history=history, seconds=time.perf_counter() - t0, device=dev.type,
                          restarts=restarts)
