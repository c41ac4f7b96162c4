"""Write the trained stroke scale (modelmeta.TRAINED_SHORT_SIDE) into model files exported before the
trainer recorded it, worked out from their own training settings as the trainer now does
(train/export.trained_short_side_of: a distilled student takes its teacher's figure).

    python tools/record_stroke_scale.py trained/*.onnx trained/fast/*.onnx

Only the metadata changes (the graph and weights are kept byte for byte); the file is replaced through
a temporary name. A file that already records the figure is left alone.
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
from realtime.train.export import trained_short_side_of  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", type=Path)
    args = p.parse_args()
    import onnx

    for path in args.models:
        model = onnx.load(str(path))
        meta = {m.key: m.value for m in model.metadata_props}
        if mm.TRAINED_SHORT_SIDE in meta:
            print(f"{path}: already records {meta[mm.TRAINED_SHORT_SIDE]}")
            continue
        settings = json.loads(meta.get(mm.SETTINGS, "{}"))
        teacher = settings.get("teacher")
        if teacher and not Path(teacher).is_file() and (ROOT / "trained" / Path(teacher).name).is_file():
            settings["teacher"] = str(ROOT / "trained" / Path(teacher).name)  # built on another checkout
        short = trained_short_side_of(settings)
        if short is None:
            print(f"{path}: its settings do not say (left alone)")
            continue
        entry = model.metadata_props.add()
        entry.key, entry.value = mm.TRAINED_SHORT_SIDE, str(short)
        tmp = path.with_name(path.name + ".tmp")
        onnx.save(model, str(tmp))
        os.replace(tmp, path)
        print(f"{path}: {short}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
