"""The record of one ``restyle-image --optimize`` image (``--run-dir``): what ran and what it reached.

Three files per output image, named after it: ``<out>.json`` (the settings as used, preset values and
options resolved; the loss network, its weights and where they came from; time, device, hardware; the
losses at the start and the end), ``<out>_losses.csv`` (every iteration) and ``<out>_losses.png`` (one
panel per loss). Each is written under a temporary name and renamed, like the images.
"""

from __future__ import annotations

import csv
import io
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

from realtime.image_io import encode_image, write_bytes_atomic

RECORD_SUFFIXES = (".json", "_losses.csv", "_losses.png")


def record_paths(run_dir: Path, output: Path) -> list[Path]:
    """The files the record of ``output`` takes in ``run_dir`` (checked before any work, like outputs)."""
    return [run_dir / f"{output.stem}{suffix}" for suffix in RECORD_SUFFIXES]


def build_record(settings: Any, result: Any, vgg: Any, *, preset: str | None, photo: Path, painting: Path,
                 size: Sequence[int]) -> dict[str, Any]:
    """``settings``: OptimizeSettings; ``result``: OptimizeResult; ``vgg``: the VGGFeatures it ran with."""
    from .trainer import file_sha256, git_commit, hardware

    history = result.history
    return {
        "method": "optimize",
        "preset": preset,
        "photo": photo.name,
        "style_image": painting.name,
        "style_image_sha256": file_sha256(painting),
        "size": list(size),  # width, height optimised at
        "settings": asdict(settings),
        "loss_net": {"arch": vgg.arch, "weights": vgg.source, "input": vgg.input_norm},
        "iterations": len(history) - 1,
        "seconds": round(result.seconds, 2),
        "seconds_per_iteration": round(result.seconds / max(len(history) - 1, 1), 3),
        "device": result.device,
        "hardware": hardware() if result.device == "cpu" else result.device,
        "restarts": result.restarts,
        "losses": {"start": history[0], "end": history[-1]},
        "commit": git_commit(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def write_run_record(run_dir: Path, output: Path, record: dict[str, Any], history: Sequence[dict[str, float]],
                     overwrite: bool) -> None:
    from .plots import plot_curves

    json_path, csv_path, png_path = record_paths(run_dir, output)
    rows = [{"iteration": i, **h} for i, h in enumerate(history)]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    picture = plot_curves(rows, title=f"{record['photo']} in the style of {record['style_image']} "
                                      f"({record['loss_net']['arch']}, {record['settings']['optimizer']})")
    write_bytes_atomic(csv_path, text.getvalue().encode(), overwrite)
    write_bytes_atomic(png_path, encode_image(picture, ".png"), overwrite)
    write_bytes_atomic(json_path, (json.dumps(record, indent=2) + "\n").encode(), overwrite)
