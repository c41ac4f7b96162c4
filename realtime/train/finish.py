"""What follows training: the verified ONNX file, the training record (JSON) and the contact sheet."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from realtime import modelmeta as mm
from realtime.sheet import contact_sheet, save_image

from . import TRAINER_VERSION
from .evaluate import evaluate_folder_styles, load_style_grams
from .export import build_metadata, export_onnx
from .model import forward_with_border, move_style_row
from .images import list_images, open_rgb, resize_long_side, to_tensor, to_uint8
from .losses import STYLE_LAYERS
from .trainer import Trainer, TrainResult, git_commit, hardware


def style_stylizer(model: torch.nn.Module, border: int, vector: torch.Tensor | None) -> Callable[[torch.Tensor], torch.Tensor]:
    """``model`` in one style (``vector``; None for a single-style network) as the runtime stylizer runs it:
    with the mirrored margin the model asks for (modelmeta.BORDER), the output clamped to [0, 1]."""
    def stylize(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return forward_with_border(model, x, border, vector).clamp(0, 1)
    return stylize


def stage_record(settings: dict, iterations: int, seconds: float, final_losses: dict) -> dict:
    """One stage's entry in a multi-stage training record."""
    return {"settings": settings, "iterations": iterations, "wall_time_s": round(seconds, 1), "final_losses": final_losses}


def with_stages(record: dict[str, Any], stages: list[dict]) -> dict[str, Any]:
    """``record`` (the last stage's) with every stage's entry and their totals."""
    return {**record, "stages": stages, "iterations_all_stages": sum(d["iterations"] for d in stages),
            "wall_time_s_all_stages": round(sum(d["wall_time_s"] for d in stages), 1)}


def finish_run(trainer: Trainer, result: TrainResult, log=print) -> dict[str, Any]:
    """Export ``<name>.onnx``, write ``<name>.json`` and ``<name>_sheet.jpg`` into the run folder.

    A multi-style network's file names its styles (modelmeta.STYLE_NAMES) and carries a record per style
    (STYLE_RECORDS): the painting, its steps and its evaluation; a style added to a model (``add_to``)
    keeps the records of the styles it had."""
    cfg = trainer.config
    model = result.model.eval().float().cpu()
    onnx_path = result.run_dir / f"{cfg.name}.onnx"
    border = model.runtime_border
    names = trainer.style_names
    vectors = torch.eye(len(names)) if len(names) > 1 else [None]

    def stylizer(index: int) -> Callable[[torch.Tensor], torch.Tensor]:
        return style_stylizer(model, border, vectors[index])

    learnt = range(trainer.first_style, len(names))
    evaluation: dict[str, Any] = {}
    per_style: dict[str, dict[str, Any]] = {}
    sheet_path = None
    if cfg.val and Path(cfg.val).is_dir():
        paths = cfg.style_paths()
        if trainer.vgg.arch == "vgg16" and set(STYLE_LAYERS) <= set(trainer.style_grams):
            vgg = trainer.vgg.cpu().float()
            all_grams = [{key: v.cpu().float() for key, v in g.items()} for g in trainer.style_grams_all]
        else:  # the distances are defined on VGG16's layers (DESIGN.md), whatever the run trained with
            from .vgg import load_vgg

            vgg = load_vgg()
            all_grams = [load_style_grams(vgg, p, cfg.style_size) for p in paths]
        identity = lambda x: x  # noqa: E731 - the input row: the photo's own distance to the painting
        methods = {}
        for k, grams in zip(learnt, all_grams):
            methods[("model", names[k])] = (stylizer(k), grams)
            methods[("input", names[k])] = (identity, grams)
        for (row, name), summary in evaluate_folder_styles(vgg, methods, cfg.val).items():
            per_style.setdefault(name, {})[row] = summary
        evaluation = per_style[names[trainer.first_style]]
        sheet_path = result.run_dir / f"{cfg.name}_sheet.jpg"  # JPEG: a tenth of the PNG, for a picture people look at
        save_image(str(sheet_path), style_sheet(list_images(cfg.val), [(names[k], stylizer(k)) for k in learnt]))
        trainer.vgg.to(trainer.device)
    records = _style_records(trainer, result, per_style)
    if cfg.refine:  # the refined style's rows back to their place: the file keeps the model's style order
        model = copy.deepcopy(model)
        move_style_row(model, trainer.first_style, trainer.refined_index)
        names = [*trainer.base_styles]
        names.insert(trainer.refined_index, trainer.style_names[trainer.first_style])
    meta = build_metadata(cfg.to_dict(), trainer.style_sha256, result.iterations, result.final_losses,
                          tier=cfg.arch, border=border)
    meta.update({mm.STYLE_NAMES: names, mm.STYLE_RECORDS: records})
    if len(names) > 1:
        meta[mm.STYLE_NAME] = cfg.name
    diff = export_onnx(model, onnx_path, meta, log=log)
    record = {
        "name": cfg.name,
        "styles": records,
        "style_image": Path(cfg.style_image).name if cfg.style_image else None,
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


def _style_records(trainer: Trainer, result: TrainResult, evaluation: dict[str, Any]) -> list[dict[str, Any]]:
    """One entry per style of the network: those it had (from the model it was added to) unchanged,
    then this run's, with the painting, its share of the steps, the run and the evaluation. A refined
    style's entry takes the place of its old one, which it keeps under "before"."""
    cfg = trainer.config
    old = trainer.base_metadata.get(mm.STYLE_RECORDS)
    records = json.loads(old) if old else [{"name": n} for n in trainer.base_styles]
    if cfg.add_to and len(records) != len(trainer.base_styles) + cfg.refine:  # a file without records
        records = [{"name": n} for n in trainer.base_styles]
    before = {}
    if cfg.refine:
        name = trainer.style_names[trainer.first_style]
        before = next((r for r in records if r.get("name") == name), {"name": name})
        records = [r for r in records if r is not before]
    learnt = cfg.style_paths()
    for name, path, sha in zip(trainer.style_names[trainer.first_style:], learnt, trainer.style_sha256s):
        records.append({
            "name": name, "style_image": Path(path).name, "style_image_sha256": sha, "style_size": cfg.style_size,
            "run": cfg.name, "iterations": result.iterations, "share_of_steps": round(1 / len(learnt), 4),
            "shared_weights": ("frozen (refined with --add-style --refine)" if cfg.refine else
                               "frozen (added with --add-style)" if cfg.add_to else "trained"),
            "evaluation_val_512px": evaluation.get(name, {}),
            **({"before": before} if cfg.refine else {}),
        })
    if cfg.refine:
        records.insert(trainer.refined_index, records.pop())
    return records


def style_sheet(photos: list[Path], styles: list[tuple[str, Callable[[torch.Tensor], torch.Tensor]]],
                columns: int = 4, tile_height: int = 200) -> np.ndarray:
    """A contact sheet: the photos in a row, then one row per style (every style of a multi-style model);
    beyond ``columns`` photos, another block of rows."""
    rows = []
    for i in range(0, len(photos), columns):
        inputs = [to_tensor(resize_long_side(open_rgb(p), 384), multiple=4) for p in photos[i:i + columns]]
        rows.append([(p.stem.split("__")[-1][:28], to_uint8(x)) for p, x in zip(photos[i:i + columns], inputs)])
        for name, stylize in styles:
            rows.append([(name, to_uint8(stylize(x))) for x in inputs])
    return contact_sheet(rows, tile_height=tile_height)
