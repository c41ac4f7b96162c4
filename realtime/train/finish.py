"""What follows training: the verified ONNX file, the training record (JSON) and the contact sheet."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from realtime.sheet import contact_sheet, save_png

from . import TRAINER_VERSION
from .evaluate import evaluate_folder, load_style_grams
from .export import build_metadata, export_onnx
from .model import forward_with_border
from .images import list_images, open_rgb, resize_long_side, to_tensor, to_uint8
from .losses import STYLE_LAYERS
from .trainer import Trainer, TrainResult, git_commit, hardware


def finish_run(trainer: Trainer, result: TrainResult, log=print) -> dict[str, Any]:
    """Export ``<name>.onnx``, write ``<name>.json`` and ``<name>_sheet.png`` into the run folder."""
    cfg = trainer.config
    model = result.model.eval().float().cpu()
    onnx_path = result.run_dir / f"{cfg.name}.onnx"
    border = model.runtime_border
    meta = build_metadata(cfg.to_dict(), trainer.style_sha256, result.iterations, result.final_losses,
                          tier=cfg.arch, border=border)
    diff = export_onnx(model, onnx_path, meta, log=log)

    def stylize(x: torch.Tensor) -> torch.Tensor:
        # As the runtime stylizer runs it: with the mirrored margin the model asks for (modelmeta.BORDER)
        with torch.no_grad():
            return forward_with_border(model, x, border).clamp(0, 1)

    evaluation: dict[str, Any] = {}
    sheet_path = None
    if cfg.val and Path(cfg.val).is_dir():
        if trainer.vgg.arch == "vgg16" and set(STYLE_LAYERS) <= set(trainer.style_grams):
            vgg = trainer.vgg.cpu().float()
            grams = {k: v.cpu().float() for k, v in trainer.style_grams.items()}
        else:  # the distances are defined on VGG16's layers (DESIGN.md), whatever the run trained with
            from .vgg import load_vgg

            vgg = load_vgg()
            grams = load_style_grams(vgg, cfg.style_image, cfg.style_size)
        evaluation = {
            "model": evaluate_folder(vgg, stylize, cfg.val, grams),
            "input": evaluate_folder(vgg, lambda x: x, cfg.val, grams),
        }
        rows = []
        photos = list_images(cfg.val)
        for i in range(0, len(photos), 4):
            row_in, row_out = [], []
            for p in photos[i:i + 4]:
                x = to_tensor(resize_long_side(open_rgb(p), 384), multiple=4)
                row_in.append((p.stem.split("__")[-1][:28], to_uint8(x)))
                row_out.append((cfg.name, to_uint8(stylize(x))))
            rows += [row_in, row_out]
        sheet_path = result.run_dir / f"{cfg.name}_sheet.png"
        save_png(str(sheet_path), contact_sheet(rows, tile_height=200))
        trainer.vgg.to(trainer.device)
    record = {
        "name": cfg.name,
        "style_image": Path(cfg.style_image).name,
        "style_image_sha256": trainer.style_sha256,
        "tier": meta["tier"],
        "settings": cfg.to_dict(),
        "iterations": result.iterations,
        "wall_time_s": round(result.seconds, 1),
        "seconds_per_iteration": round(result.seconds / max(result.iterations, 1), 3),
        "precision": trainer.precision,
        "hardware": hardware(),
        "torch": torch.__version__,
        "final_losses": result.final_losses,
        "evaluation_val_512px": evaluation,
        "onnx_max_abs_diff_vs_torch": diff,
        "trainer_version": TRAINER_VERSION,
        "trainer_commit": git_commit(),
        "date": meta["date"],
        "files": {"onnx": onnx_path.name, "sheet": sheet_path.name if sheet_path else None},
    }
    (result.run_dir / f"{cfg.name}.json").write_text(json.dumps(record, indent=2) + "\n")
    return record
