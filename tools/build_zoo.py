"""Train the shipped styles from conf/*.json with the bundled trainer and install them into trained/.

    python tools/build_zoo.py --data ../shared/data/content/train --val ../shared/data/content/val \
        --styles ../shared/data/styles [--only starry_night ...] [--iterations N] [--default starry_night]
    python tools/build_zoo.py --tier fast ...      # the fast tier from conf/fast/*.json into trained/fast/,
                                                   # distilled from the installed full tier


Each style's run folder (runs/<style>/) keeps checkpoints, loss curves and previews; trained/ receives
<style>.onnx, <style>.json (the training record) and <style>_sheet.jpg. A run that already has a
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
from realtime.train.finish import finish_run, stage_record, with_stages  # noqa: E402
from realtime.train.trainer import CHECKPOINT_NAME, Trainer  # noqa: E402
from realtime.train.vgg import load_vgg  # noqa: E402


def finished_stage(checkpoint: Path, iterations: int) -> dict | None:
    """The stage record of a run whose checkpoint reached ``iterations``, else None."""
    if not checkpoint.is_file():
        return None
    from realtime.train.trainer import load_checkpoint

    state = load_checkpoint(checkpoint, "a stage's checkpoint")
    if state["iteration"] < iterations:
        return None
    history = state.get("history") or [{}]
    last = {k: v for k, v in history[-1].items() if k not in ("iteration", "seconds")}
    return stage_record(state["config"], state["iteration"], state.get("seconds", 0.0), last)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("--val", required=True)
    p.add_argument("--styles", required=True, help="folder of style paintings")
    p.add_argument("--tier", choices=["full", "fast"], default="full")
    p.add_argument("--conf", help="config folder (default conf/, or conf/fast/ for --tier fast)")
    p.add_argument("--out", help="runs folder (default runs/, or runs/fast/)")
    p.add_argument("--trained", help="install folder (default trained/, or trained/fast/)")
    p.add_argument("--only", nargs="*", help="style names to build (default: every conf file)")
    p.add_argument("--iterations", type=int, help="override every config's iteration count")
    p.add_argument("--default", help="style to mark as the default in trained/zoo.json")
    a = p.parse_args()
    sub = "fast" if a.tier == "fast" else ""
    a.conf = a.conf or str(ROOT / "conf" / sub)
    a.out = a.out or str(ROOT / "runs" / sub)
    a.trained = a.trained or str(ROOT / "trained" / sub)
    # one loss network per (net, weights) the configs name, loaded once: a VGG19 config must not be
    # trained against VGG16 features because the zoo passed the trainer one network for all
    loss_nets: dict[tuple[str, str], object] = {}
    names = a.only or sorted(f.stem for f in Path(a.conf).glob("*.json"))
    trained = Path(a.trained)
    trained.mkdir(parents=True, exist_ok=True)
    for name in names:
        values = json.loads((Path(a.conf) / f"{name}.json").read_text())
        values.pop("_comment", None)
        # A config may list further "stages": each a set of overrides of the settings before it, run
        # as a new run that starts from the previous stage's weights (--init). The fast tier uses this:
        # distil from the full tier first, then fine-tune with the perceptual losses added.
        stages = [{}] + values.pop("stages", [])
        settings = dict(values)
        previous: Path | None = None
        done = []
        for i, overrides in enumerate(stages):
            settings.update(overrides)
            cfg = TrainConfig.from_dict(dict(settings))
            # a multi-style config lists its paintings in "styles" (one network, conditional norms)
            cfg.style_image = str(Path(a.styles) / cfg.style_image) if cfg.style_image else ""
            cfg.styles = [str(Path(a.styles) / s) for s in cfg.styles]
            cfg.data, cfg.val = a.data, a.val
            cfg.out = a.out if len(stages) == 1 else str(Path(a.out) / f"stage{i + 1}")
            if cfg.teacher and not Path(cfg.teacher).is_absolute():
                cfg.teacher = str(ROOT / cfg.teacher)
            if cfg.init and not Path(cfg.init).is_absolute():
                cfg.init = str(ROOT / cfg.init)
            if previous is not None:
                cfg.init = str(previous)
            if a.iterations:
                cfg.iterations = a.iterations
            ckpt = Path(cfg.out) / cfg.name / CHECKPOINT_NAME
            finished = finished_stage(ckpt, cfg.iterations) if i < len(stages) - 1 else None
            if finished is not None:
                # An earlier stage that already ran to its end: take its record from the checkpoint
                # instead of building a trainer (which would recompute the teacher's targets).
                print(f"== {name} stage {i + 1}/{len(stages)}: finished earlier ({ckpt})", flush=True)
                previous = ckpt
                done.append(finished)
                continue
            key = (cfg.loss_net, cfg.vgg_weights or "")
            if key not in loss_nets:
                loss_nets[key] = load_vgg(cfg.vgg_weights or None, arch=cfg.loss_net)
            trainer = Trainer(cfg, resume=ckpt if ckpt.is_file() else None, vgg=loss_nets[key])
            print(f"== {name} stage {i + 1}/{len(stages)}: {trainer.config.iterations} iterations from {trainer.iteration}, "
                  f"{trainer.precision}", flush=True)
            result = trainer.run()
            previous = result.run_dir / CHECKPOINT_NAME
            done.append(stage_record(trainer.config.to_dict(), result.iterations, result.seconds, result.final_losses))
            trainer.close()
        record = finish_run(trainer, result, log=print)
        if len(stages) > 1:
            record = with_stages(record, done)
        for key in ("onnx", "sheet"):
            if record["files"][key]:
                shutil.copy2(result.run_dir / record["files"][key], trained / record["files"][key])
        (trained / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")
        minutes = record.get('wall_time_s_all_stages', record['wall_time_s']) / 60
        for entry in record["styles"]:
            ev = entry.get("evaluation_val_512px") or {}
            if ev:
                print(f"== {name}/{entry['name']}: done in {minutes:.1f} min; val style {ev['model']['style_distance']:.4g} "
                      f"(input {ev['input']['style_distance']:.4g}), content {ev['model']['content_distance']:.4g}", flush=True)
    if a.default:
        zoo = Path(a.trained if a.tier == "full" else ROOT / "trained") / "zoo.json"
        data = json.loads(zoo.read_text()) if zoo.is_file() else {}
        data["default"] = a.default
        zoo.write_text(json.dumps(data, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
