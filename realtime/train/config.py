"""Training settings: one dataclass, saved in every checkpoint, the training record and the ONNX file.

A per-style config file (``conf/<style>.json``) holds the settings that differ from these defaults;
command-line options override the file.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from realtime.errors import DataError

from .losses import STYLE_LAYERS


@dataclass
class TrainConfig:
    name: str = ""  # style name; defaults to the style image's stem
    style_image: str = ""
    data: str = ""  # folder of content photos (recursive)
    val: str = ""  # folder of photos for previews and the contact sheet (optional)
    out: str = "runs"  # the run folder is out/name
    # network
    arch: str = "full"  # full (Johnson et al.) | fast (the CPU real-time tier; see model.FastTransformNet)
    width: int = 32
    depth: int = 5
    residual_norm: bool = True  # fast arch: instance norm inside each residual block (false: none there)
    # optimisation
    iterations: int = 2000
    batch: int = 4
    crop: int = 256
    scale_min: float = 1.0
    scale_max: float = 2.0
    lr: float = 1e-3
    seed: int = 0
    precision: str = "auto"  # auto | fp32 | bf16 | amp (auto: AMP fp16 on CUDA, bf16 on CPUs that have it)
    # loss
    style_size: int = 384  # long side of the style image in pixels: sets the stroke scale
    loss_net: str = "vgg16"  # vgg16 | vgg19 (the layers below are named in it)
    content_weight: float = 1e5
    style_weight: float = 1e10
    tv_weight: float = 1e1
    content_layers: list[str] = field(default_factory=lambda: ["relu2_2"])
    style_layer_weights: dict[str, float] = field(default_factory=lambda: {n: 1.0 for n in STYLE_LAYERS})
    temporal_weight: float = 0.0  # > 0 enables the flow-warp consistency loss (Wang et al. 2020)
    # distillation: an ONNX model (usually the full tier of the same style) whose output on each
    # training photo the network must reproduce (L1 on pixels and on image gradients)
    teacher: str = ""
    distill_weight: float = 0.0
    # start from the network weights of another run's checkpoint (e.g. a distillation stage); unlike
    # --resume this is a new run with its own settings, iteration count and optimizer state
    init: str = ""
    vgg_weights: str = ""
    # bookkeeping
    checkpoint_every: int = 200
    preview_every: int = 200
    log_every: int = 10

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise DataError(f"unknown training setting(s): {', '.join(unknown)}")
        return cls(**values)

    @classmethod
    def from_file(cls, path: str | Path) -> "TrainConfig":
        try:
            values = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise DataError(f"cannot read config {path}: {exc}") from None
        values.pop("_comment", None)
        # Paths in a config file are relative to the file's folder's parent (the repository root).
        return cls.from_dict(values)

    def validate(self) -> None:
        if not self.style_image or not Path(self.style_image).is_file():
            raise DataError(f"style image not found: {self.style_image or '(none given)'}")
        if not self.data:
            raise DataError("no training data folder given (--data)")
        if self.crop % 4 or self.crop < 16:
            raise DataError(f"crop must be a multiple of 4 and at least 16, got {self.crop}")
        from .model import ARCHS

        if self.arch not in ARCHS:
            raise DataError(f"arch must be one of {', '.join(ARCHS)}, got {self.arch!r}")
        if not self.residual_norm and self.arch != "fast":
            raise DataError(f"residual_norm false is a setting of the fast arch, not {self.arch!r}")
        if self.distill_weight > 0 and not (self.teacher and Path(self.teacher).is_file()):
            raise DataError(f"distillation needs a teacher model file (--teacher), got {self.teacher or '(none)'}")
        if self.init and not Path(self.init).is_file():
            raise DataError(f"--init checkpoint not found: {self.init}")
        if self.precision not in ("auto", "fp32", "bf16", "amp"):
            raise DataError(f"precision must be auto, fp32, bf16 or amp, got {self.precision}")
        from .vgg import check_layers

        check_layers([*self.content_layers, *self.style_layer_weights], self.loss_net)
        if not self.name:
            self.name = Path(self.style_image).stem
