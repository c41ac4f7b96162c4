"""Train the shipped styles from conf/*.json with the bundled trainer and install them into trained/.

    python tools/build_zoo.py --data ../shared/data/content/train --val ../shared/data/content/val \
        --styles ../shared/data/styles [--only starry_night ...] [--iterations N] [--default starry_night]

Each style's run folder (runs/<style>/) keeps checkpoints, loss curves and previews; trained/ receives
<style>.onnx, <style>.json (the training record) and <style>_sheet.png. A run that already has a
checkpoint is resumed, so an interrupted build continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from realtime.train.config import TrainConfig  # noqa: E402
from realtime.train.finish import finish_run  # noqa: E402
from realtime.train.trainer import CHECKPOINT_NAME, Trainer  # noqa: E402
from realtime.train.vgg import load_vgg  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("--val", required=True)
    p.add_argument("--styles", required=True, help="folder of style paintings")
    p.add_argument("--conf", default=str(ROOT / "conf"))
    p.add_argument("--out", default=str(ROOT / "runs"))
    p.add_argument("--trained", default=str(ROOT / "trained"))
    p.add_argument("--only", nargs="*", help="style names to build (default: every conf file)")
    p.add_argument("--iterations", type=int, help="override every config's iteration count")
    p.add_argument("--default", help="style to mark as the default in trained/zoo.json")
    a = p.parse_args()
    vgg = load_vgg()
    names = a.only or sorted(f.stem for f in Path(a.conf).glob("*.json"))
    trained = Path(a.trained)
    for name in names:
        cfg = TrainConfig.from_file(Path(a.conf) / f"{name}.json")
        cfg.style_image = str(Path(a.styles) / cfg.style_image)
        cfg.data, cfg.val, cfg.out = a.data, a.val, a.out
        if a.iterations:
            cfg.iterations = a.iterations
        ckpt = Path(a.out) / cfg.name / CHECKPOINT_NAME
        trainer = Trainer(cfg, resume=ckpt if ckpt.is_file() else None, vgg=vgg)
        print(f"== {name}: {trainer.config.iterations} iterations from {trainer.iteration}, {trainer.precision}", flush=True)
        result = trainer.run()
        record = finish_run(trainer, result, log=print)
        for key in ("onnx", "sheet"):
            if record["files"][key]:
                shutil.copy2(result.run_dir / record["files"][key], trained / record["files"][key])
        (trained / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")
        ev = record["evaluation_val_512px"]
        print(f"== {name}: done in {record['wall_time_s'] / 60:.1f} min; val style {ev['model']['style_distance']:.4g} "
              f"(input {ev['input']['style_distance']:.4g}), content {ev['model']['content_distance']:.4g}", flush=True)
    if a.default:
        zoo = trained / "zoo.json"
        data = json.loads(zoo.read_text()) if zoo.is_file() else {}
        data["default"] = a.default
        zoo.write_text(json.dumps(data, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
