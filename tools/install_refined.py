"""Install a shipped multi-style model trained on further: its styles with ``restyle-train --add-style
PAINTING --to MODEL.onnx --refine``, its whole network with ``restyle-train --init``, or a new style with
``--add-style`` (one or several runs in a chain, each from the file or weights the one before wrote).

    python tools/install_refined.py trained/fast/paintings.json runs/f_horse runs/f_gw \
        --val ../shared/data/content/val
    python tools/install_refined.py trained/paintings.json runs/the_kiss --drop great_wave --val ...

``--drop NAME`` takes a style out of the installed model (its rows of every conditional norm; the other
styles compute what they did) and out of its record, which lists it under ``dropped_styles``.

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
    if not (settings.get("refine") or settings.get("init") or settings.get("add_to")):
        raise RealtimeError(f"{path} is neither a --refine or --add-style run nor one started from trained weights (--init)")
    return record


def check_styles(before: dict, run: dict, path: Path) -> None:
    """The run must learn the styles of the model before it (the shipped one, or the run before in the
    chain), in their order: the installed file replaces it. An --add-style run appends its one style."""
    names = [s.get("name") for s in before.get("styles") or []]
    got = [s.get("name") for s in run.get("styles") or []]
    settings = run.get("settings", {})
    added = bool(settings.get("add_to")) and not settings.get("refine")
    if names and got != names and not (added and got[:-1] == names):
        raise RealtimeError(f"{path} learns {', '.join(map(str, got))}, not the styles of the model it starts from, "
                            f"{', '.join(names)}{' and one more' if added else ''}")


def merged_record(shipped: dict, runs: list[dict]) -> dict:
    """The last run's record under the shipped name, its stages the shipped ones then one per run."""
    from realtime.train.finish import stage_record, with_stages

    def as_stage(r: dict) -> dict:
        return stage_record(r["settings"], r["iterations"], r["wall_time_s"], r["final_losses"])

    stages = list(shipped.get("stages") or [as_stage(shipped)]) + [as_stage(r) for r in runs]
    return with_stages({**runs[-1], "name": shipped["name"], "files": shipped["files"]}, stages)


def dropped(net, meta: dict[str, str], names: list[str], drop: list[str], name: str) -> tuple:  # noqa: ANN001
    """``net`` without the styles ``drop``, as an ONNX model (exported and checked against PyTorch) named
    ``name``, and the styles it keeps."""
    import tempfile

    import onnx

    from realtime.train.export import export_onnx
    from realtime.train.model import remove_style_row

    unknown = [d for d in drop if d not in names]
    if unknown or len(set(drop)) >= len(names):
        raise RealtimeError(f"cannot drop {', '.join(unknown or drop)} from a model of {', '.join(names)}")
    for d in drop:
        remove_style_row(net, names.index(d))
        names = [n for n in names if n != d]
    records = [r for r in json.loads(meta.get(mm.STYLE_RECORDS, "[]")) if r.get("name") not in drop]
    meta = {**meta, mm.STYLE_NAME: name, mm.STYLE_NAMES: json.dumps(names), mm.STYLE_RECORDS: json.dumps(records)}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "kept.onnx"
        export_onnx(net.eval(), path, meta)
        return onnx.load(str(path)), names


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("record", type=Path, help="the shipped model's training record (its .onnx and sheet beside it)")
    p.add_argument("runs", nargs="+", type=Path, help="the refine runs' folders, in the order they ran")
    p.add_argument("--val", type=Path, required=True, help="photos of the contact sheet")
    p.add_argument("--drop", nargs="+", default=[], metavar="STYLE", help="styles to take out of the installed model")
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
        for path, before, run in zip(a.runs, [shipped, *runs], runs):
            check_styles(before, run, path)
        source = a.runs[-1] / runs[-1]["files"]["onnx"]
        record = merged_record(shipped, runs)

        model = onnx.load(str(source))
        for prop in model.metadata_props:
            if prop.key == mm.STYLE_NAME:
                prop.value = shipped["name"]
        net, meta = load_network(source)
        names = json.loads(meta[mm.STYLE_NAMES])
        if a.drop:
            model, names = dropped(net, meta, names, a.drop, shipped["name"])
            record = {**record, "styles": [s for s in record.get("styles") or [] if s.get("name") not in a.drop],
                      "dropped_styles": [*record.get("dropped_styles", []), *a.drop]}
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
