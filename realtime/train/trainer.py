"""The training loop: perceptual losses on random crops, checkpoints that carry their own settings,
resume, Ctrl+C, loss curves (CSV and PNG), previews, and DistributedDataParallel under torchrun."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import platform
import pickle
import random
import re
import subprocess
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from realtime import modelmeta as mm
from realtime.errors import DataError, Interrupted
from realtime.sheet import contact_sheet, save_image

from . import TRAINER_VERSION
from .config import TrainConfig
from .data import CropDataset
from .images import list_images, open_rgb, resize_long_side, to_tensor, to_uint8
from .logs import TrainingLog
from .losses import content_loss, distill_loss, lattice_loss, random_smooth_flow, style_loss, target_grams, total_variation, warp
from .model import build_model, calibrate_norm_floor, forward_with_border, has_norm_floor
from .teacher_cache import CachedTeacher, teacher_cache_dir
from .vgg import VGG16Features, load_vgg

CHECKPOINT_NAME = "checkpoint.pt"


@dataclass
class TrainResult:
    run_dir: Path
    model: nn.Module
    iterations: int
    seconds: float
    final_losses: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)


def load_checkpoint(path: str | Path, option: str) -> dict[str, Any]:
    """A checkpoint read with ``weights_only=True``: tensors, numbers, strings and plain containers (all a
    checkpoint of ours holds, RNG states included). Checkpoints are shared, and a full unpickle runs
    whatever code a crafted one carries: anything else is refused with one line (DataError)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. on the pickle protocol of a file that is not ours
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        named = re.search(r"GLOBAL ([\w.]+)", str(exc))
        if named:  # a function or class to call while loading: how a crafted pickle runs code
            raise DataError(f"{option} {path}: refused, loading it would call {named.group(1)} (a restyle-train "
                            "checkpoint holds only tensors and settings; a full load could run any code)") from None
        raise DataError(f"{option} {path} is not a checkpoint that can be read (not a PyTorch checkpoint, or an "
                        "old-format pickle that only a full load, which can run code, would read)") from None
    except Exception as exc:  # noqa: BLE001 - a damaged or foreign file fails in many ways (zip, unpickler)
        why = "not a PyTorch file"
        if isinstance(exc, (OSError, RuntimeError)):  # the file system's or the zip reader's own words
            why = (str(exc).strip().splitlines() or [why])[0].split(". ")[0][:120]
        raise DataError(f"{option} {path} is not a checkpoint that can be read ({why})") from None
    if not isinstance(state, dict) or "model" not in state:
        raise DataError(f"{option} {path} is not a restyle-train checkpoint")
    return state


def pick_precision(requested: str, device: torch.device) -> str:
    """``auto``: AMP (fp16) on CUDA; bf16 autocast on a CPU with native bf16 (AVX512-BF16/AMX); else fp32."""
    if requested != "auto":
        return requested
    if device.type == "cuda":
        return "amp"
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        flags = ""
    return "bf16" if ("avx512_bf16" in flags or "amx_bf16" in flags) else "fp32"


def _autocast(precision: str, device: torch.device):
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if precision == "amp" and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return nullcontext()


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def git_commit() -> str:
    try:
        root = Path(__file__).resolve().parents[2]
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "realtime/train"], capture_output=True, text=True, timeout=5)
        return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "") if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def hardware() -> str:
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} ×{torch.cuda.device_count()}"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {torch.get_num_threads()} threads"


class Trainer:
    """One training run. ``run()`` trains to ``config.iterations`` and returns the result; a checkpoint
    in the run folder (or ``resume``) is continued from where it stopped."""

    def __init__(self, config: TrainConfig, resume: str | Path | None = None, vgg: VGG16Features | None = None,
                 progress: Callable[[str], None] | None = None):
        self.distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
        self.rank = 0
        if self.distributed:
            backend = "nccl" if torch.cuda.is_available() else "gloo"
            dist.init_process_group(backend)
            self.rank = dist.get_rank()
        self.is_main = self.rank == 0
        self.device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu")
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
            torch.backends.cudnn.benchmark = True  # every step has the same crop size: pick each conv's fastest kernel once

        checkpoint: dict[str, Any] | None = None
        if resume is not None:
            path = Path(resume)
            if not path.is_file():
                raise DataError(f"checkpoint not found: {path}")
            checkpoint = load_checkpoint(path, "--resume")
            saved = TrainConfig.from_dict(checkpoint["config"])
            # The run continues with its own settings but three, which a non-zero value in ``config`` sets
            # anew: the iteration target (at or below the checkpoint's own iteration the run stops at once
            # and is exported as it stands), the step size, and the norms' variance floor (which takes
            # effect only where the network has none yet).
            if config.iterations:
                saved.iterations = max(config.iterations, int(checkpoint["iteration"]))
            if config.lr:  # a new step size for the rest of the run (a decay), recorded as the run's
                saved.lr = config.lr
            if config.norm_floor:
                saved.norm_floor = config.norm_floor
            config = saved
        config.validate()
        self.config = config
        self.precision = pick_precision(config.precision, self.device)
        self.run_dir = Path(config.out) / config.name
        self.progress = progress or (lambda line: print(line, file=sys.stderr, flush=True))
        self.progress_bar = progress is None  # a tqdm bar may stand in for our own lines (see logs.py)

        torch.manual_seed(config.seed + self.rank)
        self.rng = random.Random(config.seed + self.rank)
        teachers = None
        if config.distill_weight > 0:
            from realtime.stylizer import Stylizer

            teacher_model = Stylizer(config.teacher, device="cuda" if self.device.type == "cuda" else "cpu")
            names = config.style_names()
            if len(names) > 1 or len(teacher_model.info.style_names) > 1:
                # each style is learnt from the teacher's style of the same name: a multi-style student's
                # every style, and one style added to (or refined in) a model from a teacher of several,
                # which would otherwise be taught the teacher's first style
                missing = [n for n in names if n not in teacher_model.info.style_names]
                if missing:
                    raise DataError(f"the teacher {Path(config.teacher).name} has no style {missing[0]!r} "
                                    f"(it has {', '.join(teacher_model.info.style_names)})")
                teachers = [_teacher_in_style(teacher_model, n) for n in names]
            else:
                names = [""]  # the teacher's one style
                teachers = [lambda image: teacher_model.stylize([image])[0]]
            # kept on disk: a resumed run, or the next stage of a build, reads them back instead
            sha = file_sha256(config.teacher)
            teachers = [CachedTeacher(t, sha, n) for t, n in zip(teachers, names)]
            self.progress(f"[{config.name}] computing the teacher's targets ({Path(config.teacher).name}) on the training photos "
                          f"(or reading them from {teacher_cache_dir()})")
        # With a teacher the photos are cached at the largest crop scale, so the targets are the
        # teacher's output at the resolution the crops come from.
        cache = int(config.crop * config.scale_max) if teachers else 512
        self.data = CropDataset(config.data, config.crop, (config.scale_min, config.scale_max), cache_short_side=cache,
                                teachers=teachers)
        if teachers:
            hits = sum(t.hits for t in teachers)
            self.progress(f"[{config.name}] teacher's targets: {hits} read back, {sum(t.misses for t in teachers)} computed")
        # On a GPU a step is shorter than resizing a batch's photos one after another, so the crops of a
        # batch are rendered in threads (the same crops: the random choices are drawn in order first).
        self.crop_pool = ThreadPoolExecutor(min(config.batch, os.cpu_count() or 1), thread_name_prefix="crops") \
            if self.device.type == "cuda" and config.batch > 1 else None
        self.vgg = (vgg or load_vgg(config.vgg_weights or None, arch=config.loss_net)).to(self.device)
        # One Gram target per style this run learns (one, or several for a multi-style network).
        self.style_sha256s = [file_sha256(p) for p in config.style_paths()]
        self.style_sha256 = self.style_sha256s[0]
        self.style_grams_all = [
            target_grams(self.vgg, to_tensor(resize_long_side(open_rgb(p), config.style_size)).to(self.device),
                         list(config.style_layer_weights))
            for p in config.style_paths()]
        self.style_grams = self.style_grams_all[0]

        # The styles of the network: those it had (``add_to``: read back from the model file), then this run's.
        self.base_metadata: dict[str, str] = {}
        if config.add_to:
            from .export import load_network
            from .model import add_style_rows, move_style_row

            self.model, self.base_metadata = load_network(config.add_to)
            base = self.base_metadata
            # the network is the model's: its shape settings go into the new file's settings too
            shape = json.loads(base.get(mm.SETTINGS, "{}"))
            for key in ("arch", "width", "depth", "residual_norm", "decoder_width", "encoder_width"):
                if key in shape:
                    setattr(config, key, shape[key])
            self.base_styles = json.loads(base[mm.STYLE_NAMES]) if mm.STYLE_NAMES in base else [base.get(mm.STYLE_NAME) or Path(config.add_to).stem]
            new_name = config.style_names()[0]
            if config.refine:
                # the style's rows learn on from where they are: moved to the end (the row an added style
                # trains), and back to their place when the model is written (finish.finish_run)
                if new_name not in self.base_styles:
                    raise DataError(f"{Path(config.add_to).name} has no style named {new_name!r} to refine "
                                    f"(it has {', '.join(self.base_styles)})")
                self.refined_index = self.base_styles.index(new_name)
                self.base_styles.remove(new_name)
                move_style_row(self.model, self.refined_index, len(self.base_styles))
                self.first_style = len(self.base_styles)
            elif new_name in self.base_styles:
                raise DataError(f"{Path(config.add_to).name} already has a style named {new_name!r} "
                                f"(--refine trains it further)")
            else:
                self.first_style = add_style_rows(self.model)  # the new style starts as the mean of the others
            self._freeze_all_but_new_style()
        else:
            self.base_styles = []
            self.model = build_model(config.arch, config.width, config.depth, config.residual_norm,
                                     styles=len(config.style_paths()), decoder_width=config.decoder_width,
                                     encoder_width=config.encoder_width)
            self.first_style = 0
        self.model = self.model.to(self.device)
        self.style_names = self.base_styles + config.style_names()
        self.optimizer = torch.optim.Adam([p for p in self.model.parameters() if p.requires_grad], lr=config.lr)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.precision == "amp" and self.device.type == "cuda")
        self.iteration = 0
        self.seconds = 0.0
        self.history: list[dict[str, float]] = []
        if checkpoint is None and config.init:
            self._load_init(config)
        if checkpoint is not None:
            self.model.load_state_dict(checkpoint["model"])
            if "optimizer" in checkpoint:
                self.optimizer.load_state_dict(checkpoint["optimizer"])
                for group in self.optimizer.param_groups:  # the saved state carries the old step size
                    group["lr"] = config.lr
            else:  # a model-only file (stages/, tools/device_train.py): the weights, the iteration, the settings
                self.progress(f"[{config.name}] {path.name} holds no optimizer state: Adam starts afresh at iteration "
                              f"{checkpoint['iteration']}")
            self.iteration = checkpoint["iteration"]
            self.seconds = checkpoint.get("seconds", 0.0)
            self.history = checkpoint.get("history", [])
            if "python_rng" in checkpoint:
                self.rng.setstate(checkpoint["python_rng"])
                torch.set_rng_state(checkpoint["torch_rng"])
        self._floor_crops: torch.Tensor | None = None
        if config.norm_floor > 0 and not config.add_to:  # an added style must not change the shared floors
            self._floor_crops = self._norm_floor_crops(config)
            if not has_norm_floor(self.model):
                self._calibrate_norm_floor()
        self.net: nn.Module = self.model
        if self.distributed:
            self.net = nn.parallel.DistributedDataParallel(self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.val_images = self._load_val()
        # each of this run's styles' factors on the style and the content weight, looked up per crop
        # (config.style_emphasis, config.content_emphasis)
        self._emphasis_factors = self._per_style_factors(self.config.style_emphasis)
        self._content_factors = self._per_style_factors(self.config.content_emphasis)

    # ------------------------------------------------------------------------------------------------
    def _load_init(self, config: TrainConfig) -> None:
        """Start from another run's network: a checkpoint, or an exported model file. A single-style
        network starts every style of a multi-style run (each style's rows a copy of its one)."""
        from .model import (fast_half_width, load_into_deeper, resize_styles, style_count, widen_decoder_state,
                            widen_encoder_state)

        if Path(config.init).suffix.lower() == ".onnx":
            from .export import load_network

            start_net, meta = load_network(config.init)
            saved = json.loads(meta.get(mm.SETTINGS, "{}"))
            state = start_net.state_dict()
        else:
            start = load_checkpoint(config.init, "--init")
            saved, state = start.get("config", {}), start["model"]
        shape = lambda c: (c.get("arch", "full"), c.get("width"), c.get("residual_norm", True))  # noqa: E731
        saved_depth = saved.get("depth")
        # the decoder's and the encoder's channels at half resolution, as the fast network resolves its default (0)
        half = lambda c, key: fast_half_width(int(c.get("width") or 0), int(c.get(key) or 0))  # noqa: E731
        saved_decoder, run_decoder = half(saved, "decoder_width"), half(config.to_dict(), "decoder_width")
        saved_encoder, run_encoder = half(saved, "encoder_width"), half(config.to_dict(), "encoder_width")
        # A deeper or wider network may start from a smaller one of the same shape otherwise (more capacity
        # for the styles the smaller one could not reach): its extra blocks start as the identity, its
        # extra decoder or encoder channels unread, so it computes what the saved one did.
        deeper = isinstance(saved_depth, int) and saved_depth < config.depth
        wider = config.arch == "fast" and saved_decoder < run_decoder
        wider_encoder = config.arch == "fast" and saved_encoder < run_encoder
        if (shape(saved) != shape(config.to_dict()) or not (deeper or saved_depth == config.depth)
                or not (wider or saved_decoder == run_decoder) or not (wider_encoder or saved_encoder == run_encoder)):
            raise DataError(f"--init {config.init} holds a {saved.get('arch', 'full')} network of width {saved.get('width')}, "
                            f"depth {saved_depth}, residual norm {saved.get('residual_norm', True)}"
                            + (f", decoder width {saved_decoder}, encoder width {saved_encoder}" if config.arch == "fast" else "")
                            + f"; this run builds {config.arch} {config.width}/{config.depth}, residual norm {config.residual_norm}"
                            + (f", decoder width {run_decoder}, encoder width {run_encoder}" if config.arch == "fast" else ""))

        def load(weights: dict[str, torch.Tensor]) -> None:
            if wider:
                weights = widen_decoder_state(weights, self.model)
                self.progress(f"[{config.name}] --init {config.init}: decoder widened from {saved_decoder} to "
                              f"{run_decoder} channels, the new ones starting unread")
            if wider_encoder:
                weights = widen_encoder_state(weights, self.model)
                self.progress(f"[{config.name}] --init {config.init}: encoder widened from {saved_encoder} to "
                              f"{run_encoder} channels, the new ones starting unread")
            if not deeper:
                self.model.load_state_dict(weights)
                return
            added = load_into_deeper(self.model, weights, saved_depth)
            self.progress(f"[{config.name}] --init {config.init}: {saved_depth} residual blocks, {added} more added "
                          "after them, each starting as the identity")
        styles = style_count(self.model)
        rows = next((v.shape[0] for k, v in state.items() if k.endswith(".weight") and v.dim() == 2), 1)
        if rows != styles:
            if rows != 1:
                raise DataError(f"--init {config.init} holds {rows} styles; this run trains {styles}")
            resize_styles(self.model, 1)
            load(state)
            resize_styles(self.model, styles)
            self.model.to(self.device)
            self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr)
        else:
            load(state)

    def _norm_floor_crops(self, config: TrainConfig) -> torch.Tensor:
        """The crops the norms' variance floors are measured on, always the same ones (a random stream of
        their own: the run's crops stay those it would draw without a floor): two per style, at least 16."""
        calibration = random.Random(config.seed + 1)
        count = 2 * max(len(self.style_names), 8)
        return torch.stack([self.data.sample(calibration)[:3] for _ in range(count)]).to(self.device)

    def _calibrate_norm_floor(self) -> None:
        assert self._floor_crops is not None
        floors = calibrate_norm_floor(self.model, self._floor_crops, self.config.norm_floor)
        self.progress(f"[{self.config.name}] instance-norm variance floors ({self.config.norm_floor:g} × the median on "
                      f"{len(self._floor_crops)} crops): " + ", ".join(f"{f:.3g}" for f in floors))

    def _freeze_all_but_new_style(self) -> None:
        """``add_to``: only the new (last) row of every conditional norm learns. The rows share a tensor,
        so the older rows' gradients are zeroed (Adam then leaves them exactly as they were) and they are
        also restored from this copy before anything is saved, so the other styles stay bit-exact."""
        from .model import style_norms

        for p in self.model.parameters():
            p.requires_grad_(False)
        self._kept_rows: list[tuple[torch.Tensor, torch.Tensor]] = []
        for m in style_norms(self.model):
            for table in (m.weight, m.bias):
                table.requires_grad_(True)
                self._kept_rows.append((table, table.detach()[:-1].clone()))
                table.register_hook(_zero_all_but_last_row)

    def restore_kept_rows(self) -> None:
        with torch.no_grad():
            for table, kept in getattr(self, "_kept_rows", []):
                table[:-1].copy_(kept.to(table.device))

    def _style_batch(self, size: int) -> tuple[torch.Tensor | None, dict[str, torch.Tensor], list[int] | None]:
        """A style per crop: the one-hot vectors (None for a single-style network), the Gram targets and
        the picks (index among this run's styles)."""
        learnt = len(self.style_grams_all)
        total = len(self.style_names)
        if total == 1:
            return None, self.style_grams, None
        picks = [self.rng.randrange(learnt) for _ in range(size)]
        onehot = torch.zeros(size, total, device=self.device)
        onehot[torch.arange(size), torch.tensor(picks) + self.first_style] = 1.0
        targets = {k: torch.cat([self.style_grams_all[i][k] for i in picks]) for k in self.style_grams}
        return onehot, targets, picks

    def _per_style_factors(self, factors: dict[str, float]) -> torch.Tensor | None:
        """One factor per style this run learns, in pick order (unnamed: 1); None when none is named."""
        if not factors:
            return None
        return torch.tensor([factors.get(n, 1.0) for n in self.config.style_names()], device=self.device)

    def _emphasis(self, picks: list[int] | None, *, content: bool = False) -> torch.Tensor | None:
        """Each crop's factor on the style weight (config.style_emphasis), or on the content weight
        (``content``: config.content_emphasis); None when the run sets none or learns one style (no picks)."""
        table = self._content_factors if content else self._emphasis_factors
        if picks is None or table is None:
            return None
        return table[torch.tensor(picks, device=self.device)]

    def _load_val(self) -> list[tuple[str, torch.Tensor]]:
        if not self.config.val or not Path(self.config.val).is_dir():
            return []
        out = []
        for path in list_images(self.config.val)[:8]:
            try:
                out.append((path.stem, to_tensor(resize_long_side(open_rgb(path), 256), multiple=4)))
            except Exception:
                continue
        return out

    def step(self) -> dict[str, torch.Tensor]:
        """One optimizer step; the losses come back as detached tensors, still on the device: reading them
        (``float``) waits for the device, so the run reads them once per log window, not every step."""
        c = self.config
        style, grams, picks = self._style_batch(c.batch)
        xt = self.data.batch(self.rng, c.batch, picks, self.crop_pool).to(self.device, non_blocking=True)
        x, target = xt[:, :3], xt[:, 3:]
        zero = torch.zeros((), device=self.device)
        emphasis = self._emphasis(picks)
        content_emphasis = self._emphasis(picks, content=True)
        with _autocast(self.precision, self.device):
            y = self.net(x, style)
            l_content, l_style, l_distill = zero, zero, zero
            if c.content_weight > 0 or c.style_weight > 0:  # a pure distillation run needs no VGG pass
                layers = sorted(set(c.content_layers) | set(c.style_layer_weights))
                fy = self.vgg(y, layers)
                with torch.no_grad():
                    fx = self.vgg(x, c.content_layers)
                l_content = c.content_weight * content_loss(fy, fx, c.content_layers, content_emphasis)
                l_style = c.style_weight * style_loss(fy, grams, c.style_layer_weights, emphasis)
            l_tv = c.tv_weight * total_variation(y.float())
            l_lattice = c.lattice_weight * lattice_loss(y.float()) if c.lattice_weight > 0 else zero
            if c.distill_weight > 0:
                l_distill = c.distill_weight * distill_loss(y.float(), target)
            total = l_content + l_style + l_tv + l_lattice + l_distill
            l_temporal = torch.zeros((), device=self.device)
            if c.temporal_weight > 0:
                # Wang et al. 2020: a still crop warped by a random smooth flow (plus a little noise)
                # must stylize to the warped stylization of the crop, so no video data is needed.
                flow = random_smooth_flow(x.shape[0], x.shape[2], x.shape[3], magnitude=2.0).to(self.device)
                xw = (warp(x, flow) + 0.01 * torch.randn_like(x)).clamp(0, 1)
                yw = self.net(xw, style)
                # an emphasised painting's crops weigh as much more here as in the style term: its
                # stronger strokes must stay as steady (the balance is taken from content alone)
                per_crop = ((yw.float() - warp(y.float(), flow).detach()) ** 2).mean(dim=(1, 2, 3))
                if emphasis is not None and c.style_emphasis_temporal:
                    per_crop = per_crop * emphasis
                l_temporal = c.temporal_weight * per_crop.mean()
                total = total + l_temporal
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        values = {"total": total, "content": l_content, "style": l_style, "tv": l_tv, "temporal": l_temporal, "distill": l_distill}
        if c.lattice_weight > 0:  # only then: a resumed run's loss table keeps its columns
            values["lattice"] = l_lattice
        return {k: v.detach() for k, v in values.items()}

    def save_checkpoint(self, path: Path | None = None) -> Path:
        self.restore_kept_rows()
        path = path or self.run_dir / CHECKPOINT_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(), "iteration": self.iteration,
            "seconds": self.seconds, "history": self.history, "config": self.config.to_dict(),
            "python_rng": self.rng.getstate(), "torch_rng": torch.get_rng_state(), "trainer_version": TRAINER_VERSION,
        }
        tmp = path.with_suffix(".tmp")
        torch.save(state, tmp)
        os.replace(tmp, path)  # a checkpoint is never half-written
        return path

    @torch.no_grad()
    def stylize(self, x: torch.Tensor, style: int | None = None) -> torch.Tensor:
        """``x`` in style ``style`` (default: this run's first), as the runtime will show it."""
        self.model.eval()
        try:
            index = self.first_style if style is None else style
            vector = torch.eye(len(self.style_names), device=self.device)[index] if len(self.style_names) > 1 else None
            border = self.model.runtime_border
            return forward_with_border(self.model, x.to(self.device), border, vector).float().clamp(0, 1).cpu()
        finally:
            self.model.train()

    def save_preview(self) -> Path | None:
        if not self.val_images:
            return None
        # a multi-style run shows its styles in turn, one per photo, so every preview shows several
        learnt = len(self.style_grams_all)
        rows = []
        for i, (name, x) in enumerate(self.val_images[:4]):
            k = self.first_style + (i + self.iteration // max(self.config.preview_every, 1)) % learnt
            rows.append([(name[:24], to_uint8(x[0])), (self.style_names[k][:24], to_uint8(self.stylize(x, k)[0]))])
        path = self.run_dir / "previews" / f"iter_{self.iteration:06d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        save_image(str(path), contact_sheet(rows, tile_height=160))
        return path

    def save_curves(self) -> None:
        if not self.history:
            return
        keys = list(self.history[0])
        with open(self.run_dir / "losses.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=keys)
            w.writeheader()
            w.writerows(self.history)
        from .plots import plot_curves

        try:
            picture = plot_curves(self.history, title=self.config.name)
        except ImportError:  # matplotlib is in the [train] extra; a run must not fail for want of a picture
            return
        save_image(str(self.run_dir / "losses.png"), picture)

    def run(self) -> TrainResult:
        c = self.config
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.model.train()
        last: dict[str, float] = {}
        window: list[dict[str, torch.Tensor]] = []
        started = time.perf_counter()
        base_seconds = self.seconds
        mark_t, mark_i = started, self.iteration
        log = TrainingLog(self.run_dir, c.name, c.iterations, self.iteration, self.progress, enabled=self.is_main,
                          bar=self.progress_bar)
        try:
            while self.iteration < c.iterations:
                losses = self.step()
                self.iteration += 1
                if self._floor_crops is not None and c.norm_floor_every and self.iteration % c.norm_floor_every == 0:
                    self._calibrate_norm_floor()
                log.step()
                self.seconds = base_seconds + time.perf_counter() - started
                window.append(losses)
                if self.iteration % c.log_every == 0 or self.iteration == c.iterations:
                    mean = {k: float(torch.stack([w[k].double() for w in window]).mean()) for k in window[0]}
                    window.clear()
                    last = mean
                    self.history.append({"iteration": self.iteration, "seconds": round(self.seconds, 2), **mean})
                    now = time.perf_counter()
                    rate = (self.iteration - mark_i) / max(now - mark_t, 1e-9)
                    mark_t, mark_i = now, self.iteration
                    if self.is_main:
                        eta = (c.iterations - self.iteration) / max(rate, 1e-9)
                        log.report(self.iteration, mean,
                            f"[{c.name}] {self.iteration}/{c.iterations} total {mean['total']:.4g} content {mean['content']:.4g} "
                            f"style {mean['style']:.4g} tv {mean['tv']:.3g}" + (f" temporal {mean['temporal']:.3g}" if c.temporal_weight else "")
                            + (f" distill {mean['distill']:.4g}" if c.distill_weight else "")
                            + (f" lattice {mean['lattice']:.3g}" if "lattice" in mean else "")
                            + f" | {rate:.2f} it/s, {1 / max(rate, 1e-9):.2f} s/it, ETA {eta / 60:.1f} min", rate
                        )
                if self.is_main and self.iteration % c.checkpoint_every == 0:
                    self.save_checkpoint()
                    self.save_curves()
                if self.is_main and self.iteration % c.preview_every == 0:
                    log.preview(self.iteration, self.save_preview())
        except KeyboardInterrupt:
            if self.is_main:
                path = self.save_checkpoint()
                self.save_curves()
                raise Interrupted(f"interrupted at iteration {self.iteration}; checkpoint saved to {path} (continue with --resume)") from None
            raise Interrupted("interrupted") from None
        finally:
            log.close()
        if self.is_main:
            self.save_checkpoint()
            self.save_curves()
            self.save_preview()
        if not last and self.history:
            last = {k: v for k, v in self.history[-1].items() if k not in ("iteration", "seconds")}
        return TrainResult(self.run_dir, self.model, self.iteration, self.seconds, last, self.history)

    def close(self) -> None:
        if self.crop_pool is not None:
            self.crop_pool.shutdown(wait=True)
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()


def _teacher_in_style(teacher, name: str):  # noqa: ANN001, ANN202
    def run(image: np.ndarray) -> np.ndarray:
        teacher.set_style(name)
        return teacher.stylize([image])[0]
    return run


def _zero_all_but_last_row(grad: torch.Tensor) -> torch.Tensor:
    grad = grad.clone()
    grad[:-1] = 0
    return grad
