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
    name: str = ""  # style name (the model's name for several styles); defaults to the style image's stem
    style_image: str = ""
    # several paintings: one network of conditional instance norms holds them all (each step draws a
    # style per crop); the styles are named by the files' stems, in this order
    styles: list[str] = field(default_factory=list)
    # an exported model (.onnx) to which ``style_image`` is added as one more style: only its rows of
    # the conditional norms are learnt, every shared weight and the other styles stay as they are
    add_to: str = ""
    # with add_to: the model already has this painting's style (by the file's name); its rows learn on
    # from where they are instead of a new row from the mean (the other styles stay as they are)
    refine: bool = False
    data: str = ""  # folder of content photos (recursive)
    val: str = ""  # folder of photos for previews and the contact sheet (optional)
    out: str = "runs"  # the run folder is out/name
    # network
    arch: str = "full"  # full (Johnson et al.) | fast (the CPU real-time tier; see model.FastTransformNet)
    width: int = 32
    depth: int = 5
    residual_norm: bool = True  # fast arch: instance norm inside each residual block (false: none there)
    # fast arch: the decoder's channels at half resolution (0: width // 8, at least 4; the shipped tier's 8)
    decoder_width: int = 0
    # fast arch: the encoder's channels at half resolution, after its first convolution (0: as the decoder's default)
    encoder_width: int = 0
    # > 0: every instance norm's variance floor (epsilon) is set, at the start of a run whose network has
    # none yet, to this × the median variance of its input on training crops (model.calibrate_norm_floor):
    # faint features (a storm sky, haze) stay faint instead of being stretched to full strength
    norm_floor: float = 0.0
    # the floors are measured again every this many iterations (0: only at the start): a network left
    # with fixed floors learns to outgrow them (scales its weights up) and their effect fades
    norm_floor_every: int = 100
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
    # a multi-style run's style weight per painting, as a factor on style_weight (by name; unnamed: 1):
    # one style weight cannot suit twelve paintings, some stay far from theirs while others are close.
    # The temporal term of the painting's crops takes the same factor, so stronger strokes stay as steady
    # (style_emphasis_temporal false: the style term alone, as the shipped models' first such stages ran).
    style_emphasis: dict[str, float] = field(default_factory=dict)
    style_emphasis_temporal: bool = True
    # the same for the content weight: a painting whose strokes come out right but cover too much of the
    # photo keeps more of it under a factor above 1, without touching the other paintings' balance
    content_emphasis: dict[str, float] = field(default_factory=dict)
    temporal_weight: float = 0.0  # > 0 enables the flow-warp consistency loss (Wang et al. 2020)
    # > 0 penalises the 4-pixel grid locked to the network's stride (losses.lattice_loss)
    lattice_weight: float = 0.0
    # distillation: an ONNX model (usually the full tier of the same style) whose output on each
    # training photo the network must reproduce (L1 on pixels and on image gradients)
    teacher: str = ""
    distill_weight: float = 0.0
    # start from the network weights of another run's checkpoint (e.g. a distillation stage); unlike
    # --resume this is a new run with its own settings, iteration count and optimizer state; a deeper network
    # than the saved one starts as it (model.load_into_deeper)
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

    def style_paths(self) -> list[str]:
        """The paintings this run learns, in style order (the one added by ``add_to``)."""
        return list(self.styles) or [self.style_image]

    def style_names(self) -> list[str]:
        """The names of the styles this run learns (a single style is named by ``name``)."""
        if self.styles:
            return [Path(p).stem for p in self.styles]
        return [Path(self.style_image).stem] if self.add_to else [self.name]

    def validate(self) -> None:
        if self.styles and self.style_image:
            raise DataError("give either one --style-image or several --styles, not both")
        if self.styles and self.add_to:
            raise DataError("--add-style takes one painting")
        for path in self.style_paths():
            if not path or not Path(path).is_file():
                raise DataError(f"style image not found: {path or '(none given)'}")
        stems = [Path(p).stem for p in self.styles]
        if len(set(stems)) != len(stems):
            raise DataError(f"two paintings share a name: {', '.join(sorted({s for s in stems if stems.count(s) > 1}))}")
        if self.refine and not self.add_to:
            raise DataError("--refine goes with --add-style PAINTING --to MODEL.onnx")
        if self.add_to and not Path(self.add_to).is_file():
            raise DataError(f"model to add a style to not found: {self.add_to}")
        if not self.data:
            raise DataError("no training data folder given (--data)")
        if self.crop % 4 or self.crop < 16:
            raise DataError(f"crop must be a multiple of 4 and at least 16, got {self.crop}")
        from .model import ARCHS

        if self.arch not in ARCHS:
            raise DataError(f"arch must be one of {', '.join(ARCHS)}, got {self.arch!r}")
        if not self.residual_norm and self.arch != "fast":
            raise DataError(f"residual_norm false is a setting of the fast arch, not {self.arch!r}")
        if self.decoder_width and self.arch != "fast":
            raise DataError(f"decoder_width is a setting of the fast arch, not {self.arch!r}")
        if self.decoder_width < 0:
            raise DataError(f"decoder_width must be 0 (the default) or more, got {self.decoder_width}")
        if self.encoder_width and self.arch != "fast":
            raise DataError(f"encoder_width is a setting of the fast arch, not {self.arch!r}")
        if self.encoder_width < 0:
            raise DataError(f"encoder_width must be 0 (the default) or more, got {self.encoder_width}")
        if self.distill_weight > 0 and not (self.teacher and Path(self.teacher).is_file()):
            raise DataError(f"distillation needs a teacher model file (--teacher), got {self.teacher or '(none)'}")
        for key, factors in (("style_emphasis", self.style_emphasis), ("content_emphasis", self.content_emphasis)):
            unknown_styles = sorted(set(factors) - set(self.style_names()))
            if unknown_styles:
                raise DataError(f"{key} names a style this run does not learn: {', '.join(unknown_styles)}")
            if any(not (v > 0) for v in factors.values()):
                raise DataError(f"{key} factors must be positive")
        if self.init and not Path(self.init).is_file():
            raise DataError(f"--init checkpoint not found: {self.init}")
        if self.precision not in ("auto", "fp32", "bf16", "amp"):
            raise DataError(f"precision must be auto, fp32, bf16 or amp, got {self.precision}")
        from .vgg import check_layers

        check_layers([*self.content_layers, *self.style_layer_weights], self.loss_net)
        if not self.name:
            if self.add_to:
                self.name = f"{Path(self.add_to).stem}+{Path(self.style_image).stem}"
            else:
                self.name = "styles" if self.styles else Path(self.style_image).stem
