"""Install a shipped multi-style model whose styles were trained on with ``restyle-train --add-style
PAINTING --to MODEL.onnx --refine`` (one or several runs in a chain, each on the file the one before wrote).

    python tools/install_refined.py trained/fast/paintings.json runs/f_horse runs/f_gw \
        --val ../shared/data/content/val

The last run's model replaces the shipped one under the shipped name (trained/fast/paintings.onnx); its
metadata keeps the shipped model's name. The new training record is the last run's (every style's
record, a refined one with its old record under "before") with the shipped record's ``stages`` followed
by one stage per run, and a contact sheet of every style is drawn anew (a refine run draws only its own
style). The files are written through temporary names, so a failure leaves the shipped ones as they were.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from realtime import modelmeta as mm  # noqa: E402
from realtime.errors import RealtimeError  # noqa: E402


def run_record(run: Path) -> dict:
    """The training record ``<run>/<run name>.json`` a finished refine run wrote."""
    path = run / f"{run.name}.json"
    if not path.is_file():
        raise RealtimeError(f"no training record {path}: did the run finish (export included)?")
    record = json.loads(path.read_text())
    if not record.get("settings", {}).get("refine"):
        raise RealtimeError(f"{path} is not a --refine run")
    return record


def merged_record(shipped: dict, runs: list[dict]) -> dict:
    """The last run's record under the shipped name, its stages the shipped ones then one per run."""
    stages = list(shipped.get("stages") or [{k: shipped[k] for k in ("settings", "iterations", "wall_time_s", "final_losses")}])
    stages += [{k: r[k] for k in ("settings", "iterations", "wall_time_s", "final_losses")} for r in runs]
    record = {**runs[-1], "name": shipped["name"], "files": shipped["files"], "stages": stages}
    record["iterations_all_stages"] = sum(s["iterations"] for s in stages)
    record["wall_time_s_all_stages"] = round(sum(s["wall_time_s"] for s in stages), 1)
    return record


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("record", type=Path, help="the shipped model's training record (its .onnx and sheet beside it)")
    p.add_argument("runs", nargs="+", type=Path, help="the refine runs' folders, in the order they ran")
    p.add_argument("--val", type=Path, required=True, help="photos of the contact sheet")
    a = p.parse_args(argv)
    import onnx
    import torch

    from realtime.train.export import load_network
    from realtime.train.finish import style_sheet
    from realtime.train.images import list_images
    from realtime.train.model import forward_with_border
    from realtime.sheet import save_image

    try:
        shipped = json.loads(a.record.read_text())
        runs = [run_record(r) for r in a.runs]
        source = a.runs[-1] / runs[-1]["files"]["onnx"]
        target = a.record.parent / shipped["files"]["onnx"]
        sheet = a.record.parent / shipped["files"]["sheet"]
        record = merged_record(shipped, runs)

        model = onnx.load(str(source))
        for prop in model.metadata_props:
            if prop.key == mm.STYLE_NAME:
                prop.value = shipped["name"]
        net, meta = load_network(source)
        names = json.loads(meta[mm.STYLE_NAMES])
        border = int(meta.get(mm.BORDER, "0"))
        net.eval()
        vectors = torch.eye(len(names))

        def stylizer(k: int):  # noqa: ANN202
            def stylize(x: torch.Tensor) -> torch.Tensor:
                with torch.no_grad():
                    return forward_with_border(net, x, border, vectors[k]).clamp(0, 1)
            return stylize

        picture = style_sheet(list_images(str(a.val)), [(n, stylizer(k)) for k, n in enumerate(names)])
        temporary = [target.with_name(f".{target.name}.tmp"), sheet.with_name(f".{sheet.stem}.tmp{sheet.suffix}"),
                     a.record.with_name(f".{a.record.name}.tmp")]
        onnx.save(model, str(temporary[0]))
        save_image(str(temporary[1]), picture)
        temporary[2].write_text(json.dumps(record, indent=2) + "\n")
        for tmp, final in zip(temporary, (target, sheet, a.record)):
            os.replace(tmp, final)
    except (RealtimeError, OSError, KeyError, ValueError) as exc:
        print(f"install_refined: error: {exc}", file=sys.stderr)
        return 1
    print(f"installed {target} ({len(names)} styles, {record['iterations_all_stages']} iterations in all), {a.record}, {sheet}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
