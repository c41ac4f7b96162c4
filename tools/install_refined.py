"""Install a shipped multi-style model trained on further: its styles with ``restyle-train --add-style
PAINTING --to MODEL.onnx --refine``, or its whole network with ``restyle-train --init`` (one or several
runs in a chain, each from the file or weights the one before wrote).

    python tools/install_refined.py trained/fast/paintings.json runs/f_horse runs/f_gw \
        --val ../shared/data/content/val

The last run's model replaces the shipped one under the shipped name (trained/fast/paintings.onnx); its
metadata keeps the shipped model's name. The new training record is the last run's (every style's
record, a refined one with its old record under "before") with the shipped record's ``stages`` followed
by one stage per run, and a contact sheet of every style is drawn anew (a refine run draws only its own
style). The files are written to temporary files first (realtime.outputs), so a failure leaves the shipped ones
as they were.
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
    """The training record ``<run>/<run name>.json`` a finished run wrote: a refine run, or one that started
    from trained weights (``init``). A run from scratch is refused: it does not continue the shipped
    model's stages, so appending it to them would misstate how the model was made."""
    path = run / f"{run.name}.json"
    if not path.is_file():
        raise RealtimeError(f"no training record {path}: did the run finish (export included)?")
    record = json.loads(path.read_text())
    settings = record.get("settings", {})
    if not (settings.get("refine") or settings.get("init")):
        raise RealtimeError(f"{path} is neither a --refine run nor one started from trained weights (--init)")
    return record


def check_styles(shipped: dict, run: dict, path: Path) -> None:
    """The run must learn the shipped model's styles, in its order: the installed file replaces it."""
    names = [s.get("name") for s in shipped.get("styles") or []]
    got = [s.get("name") for s in run.get("styles") or []]
    if names and got != names:
        raise RealtimeError(f"{path} learns {', '.join(map(str, got))}, not the shipped model's {', '.join(names)}")


def merged_record(shipped: dict, runs: list[dict]) -> dict:
    """The last run's record under the shipped name, its stages the shipped ones then one per run."""
    from realtime.train.finish import stage_record, with_stages

    def as_stage(r: dict) -> dict:
        return stage_record(r["settings"], r["iterations"], r["wall_time_s"], r["final_losses"])

    stages = list(shipped.get("stages") or [as_stage(shipped)]) + [as_stage(r) for r in runs]
    return with_stages({**runs[-1], "name": shipped["name"], "files": shipped["files"]}, stages)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("record", type=Path, help="the shipped model's training record (its .onnx and sheet beside it)")
    p.add_argument("runs", nargs="+", type=Path, help="the refine runs' folders, in the order they ran")
    p.add_argument("--val", type=Path, required=True, help="photos of the contact sheet")
    a = p.parse_args(argv)
    import onnx
    import torch

    from realtime.outputs import discard, partial_file, publish
    from realtime.sheet import save_image
    from realtime.train.export import load_network
    from realtime.train.finish import style_sheet, style_stylizer
    from realtime.train.images import list_images

    written: list[tuple[Path, Path]] = []  # (temporary, final): published together once all are whole

    def temporary_for(final: Path) -> Path:
        fd, tmp = partial_file(final)
        os.close(fd)
        written.append((tmp, final))
        return tmp

    try:
        shipped = json.loads(a.record.read_text())
        runs = [run_record(r) for r in a.runs]
        for path, run in zip(a.runs, runs):
            check_styles(shipped, run, path)
        source = a.runs[-1] / runs[-1]["files"]["onnx"]
        record = merged_record(shipped, runs)

        model = onnx.load(str(source))
        for prop in model.metadata_props:
            if prop.key == mm.STYLE_NAME:
                prop.value = shipped["name"]
        net, meta = load_network(source)
        names = json.loads(meta[mm.STYLE_NAMES])
        border = int(meta.get(mm.BORDER, "0"))
        vectors = torch.eye(len(names))
        picture = style_sheet(list_images(str(a.val)), [(n, style_stylizer(net.eval(), border, vectors[k]))
                                                         for k, n in enumerate(names)])
        onnx.save(model, str(temporary_for(a.record.parent / shipped["files"]["onnx"])))
        save_image(str(temporary_for(a.record.parent / shipped["files"]["sheet"])), picture)
        temporary_for(a.record).write_text(json.dumps(record, indent=2) + "\n")
        for tmp, final in written:
            publish(tmp, final, overwrite=True)
    except (RealtimeError, OSError, KeyError, ValueError) as exc:
        for tmp, _ in written:
            discard(tmp)
        print(f"install_refined: error: {exc}", file=sys.stderr)
        return 1
    print(f"installed {', '.join(str(final) for _, final in written)} ({len(names)} styles, "
          f"{record['iterations_all_stages']} iterations in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
