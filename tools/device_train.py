"""A long training run on a lent GPU machine (the tool library's `device` tool), within its limits.

That machine has no network, takes the working tree plus carried paths up to 64 MiB, gives back at most 8
files of 16 MiB from $OUT, and a task gets about 15 minutes of it, start included. On its H200 one step of
the 12-style network (batch 8, 256-px crops) should be milliseconds, where it is 2 s on our 2 CPU cores,
so a few minutes there are worth days here. So the run is one prepared command:

    python tools/device_train.py pack        # here: writes .devpack/ (git-ignored), prints what travels
    # device tool: run(command="python3 tools/device_train.py run --minutes 7", carry=[".devpack"], timeout_s=600)
    restyle-train --resume <files_at>/<name>.pt --iterations 0    # here: export what came back
    restyle-train --resume <files_at>/<name>.pt --iterations N    # or train it on (Adam starts afresh)

``pack`` writes the training photos (short side 512, the trainer's cache size, JPEG), the paintings (at the
recipe's ``--style-size``, 512, in their own format) and the validation photos for the previews, and
VGG16's convolutions up to relu4_3 in fp16 (15 MB: the loss network, which the machine cannot download).

``run`` trains from ``--init`` (default: the newest stage in stages/multi) with the stage-2 settings of
stages/multi/README.md (``RECIPE``) at a GPU's batch, stops the trainer after ``--minutes`` with SIGTERM (it saves its
checkpoint, as for any stop), and writes into $OUT the model alone (fp16 weights, settings, iteration:
7 MB becomes 3.5 MB), the losses and the last preview. The same command runs here on the CPU, which is how
it is tested before device time is spent on it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PACK = ROOT / ".devpack"
SHARED = ROOT.parent / "shared" / "data"
PHOTO_SHORT_SIDE = 512  # CropDataset's cache: crops of 256 at scales up to 2 need no more
STYLE_SIZE = 512  # the painting's long side in training: packed at exactly this size, so the Gram targets are ours
TRAVEL_LIMIT = 64 * 2**20  # the device tool's limit on the working tree plus carried paths

# Stage 2's recipe (stages/multi/README.md) at a GPU's batch: 256-px crops at scale 1-2, the painting at
# 512 px, content 3e5, style 1e10, tv 2e4. Batch 8 at lr 1e-3 is the usual recipe's step size for a
# larger batch (our 3e-4 was measured at batch 1, where each step's gradient is far noisier). Not the
# norms' variance floor (--norm-floor): on the CPU the network kept outgrowing it (stages/multi/README.md,
# stage 3); add it after ``--`` to try it.
RECIPE = ["--crop", "256", "--scale-max", "2", "--style-size", str(STYLE_SIZE), "--content-weight", "3e5",
          "--style-weight", "1e10", "--tv-weight", "2e4"]


def _photo_jpeg(src: Path, dst: Path, short: int) -> None:
    """A photo with its short side at most ``short`` (LANCZOS, as CropDataset caches it), as JPEG."""
    from PIL import Image

    from realtime.train.images import open_rgb

    im = open_rgb(src)
    if min(im.size) > short:
        f = short / min(im.size)
        im = im.resize((max(1, round(im.width * f)), max(1, round(im.height * f))), Image.LANCZOS)
    dst.parent.mkdir(parents=True, exist_ok=True)
    im.save(dst, "JPEG", quality=92)


def tracked_bytes() -> int:
    """What git would send: tracked files plus untracked ones it does not ignore."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                         capture_output=True, check=True).stdout
    return sum((ROOT / p).stat().st_size for p in out.decode().split("\0") if p and (ROOT / p).is_file())


def pack(data: Path, out: Path, vgg_weights: str | None) -> int:
    import torch

    from realtime.train.images import list_images, open_rgb, resize_long_side
    from realtime.train.vgg import load_vgg_state

    if not (data / "content" / "train").is_dir() or not (data / "styles").is_dir():
        print(f"device_train: error: no content/train and styles/ in {data}", file=sys.stderr)
        return 1
    if out.exists():
        shutil.rmtree(out)
    for folder, sub in (("photos", "train"), ("val", "val")):
        for k, path in enumerate(list_images(data / "content" / sub)):
            _photo_jpeg(path, out / folder / f"{k:03d}_{path.stem}.jpg", PHOTO_SHORT_SIDE if sub == "train" else 256)
    paintings = sorted(p for p in (data / "styles").iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    for path in paintings:
        # the trainer's own resize, in the painting's own format and file name (its style's name, and how
        # tools/evaluate.py finds it): a PNG painting's Gram targets are then exactly those of the original
        im = resize_long_side(open_rgb(path), STYLE_SIZE)
        (out / "styles").mkdir(parents=True, exist_ok=True)
        im.save(out / "styles" / path.name, **({"quality": 95} if path.suffix.lower() in (".jpg", ".jpeg") else {}))
    state = load_vgg_state(vgg_weights)
    torch.save({k: v.half() for k, v in state.items()}, out / "vgg16_relu4_3_fp16.pt")
    from realtime.train.trainer import git_commit

    manifest = {"commit": git_commit(), "photos": len(list((out / "photos").iterdir())),
                "paintings": [p.name for p in paintings], "style_size": STYLE_SIZE, "vgg16": str(vgg_weights or "found")}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")  # the device may have no .git
    packed = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    tree = tracked_bytes()
    print(f"packed {out}: {packed / 2**20:.1f} MiB; the working tree sends {tree / 2**20:.1f} MiB; together "
          f"{(packed + tree) / 2**20:.1f} MiB of the device tool's {TRAVEL_LIMIT / 2**20:.0f}")
    if packed + tree > TRAVEL_LIMIT:
        print("device_train: error: too large to travel; pack less or track less", file=sys.stderr)
        return 1
    return 0


def newest_stage() -> Path | None:
    """The stages/multi checkpoint furthest trained: the latest stage (``_stageN_`` in its name; each stage
    counts its iterations afresh), then the most iterations (a clone's file times say nothing)."""
    from realtime.train.trainer import load_checkpoint

    def order(p: Path, checkpoint: dict) -> tuple[int, int]:
        stage = re.search(r"_stage(\d+)", p.stem)
        return int(stage.group(1)) if stage else 0, int(checkpoint["iteration"])

    # each file read once; the recipe here trains the full network, so a fast-tier stage is not its start
    stages = [(p, load_checkpoint(p, "--init")) for p in sorted((ROOT / "stages" / "multi").glob("*.pt"))]
    stages = [(p, c) for p, c in stages if (c.get("config") or {}).get("arch", "full") == "full"]
    return max(stages, key=lambda pc: order(*pc))[0] if stages else None


def slim_checkpoint(checkpoint: Path, target: Path, out_folder: str = "runs") -> dict:
    """The model of a trainer checkpoint alone, weights in fp16, with its settings and iteration: what
    ``restyle-train --resume`` and ``--init`` read. The run folder in its settings becomes ``out_folder``
    (relative), since the machine's /tmp is gone when it comes back."""
    import torch

    from realtime.train.trainer import load_checkpoint

    full = load_checkpoint(checkpoint, "--resume")
    config = dict(full["config"], out=out_folder)
    # the norms' variance floors (".eps", one number each) stay float32, as the exported graph holds them
    slim = {"model": {k: v.half() if v.is_floating_point() and not k.endswith(".eps") else v for k, v in full["model"].items()},
            "config": config, "iteration": full["iteration"], "seconds": full.get("seconds", 0.0)}
    torch.save(slim, target)
    return slim


def run(args: argparse.Namespace) -> int:
    import torch

    out = Path(os.environ.get("OUT") or args.out or "")
    if not str(out):
        print("device_train: error: set $OUT (the device tool does) or pass --out", file=sys.stderr)
        return 1
    if not (PACK / "vgg16_relu4_3_fp16.pt").is_file():
        print(f"device_train: error: {PACK} is missing: run `python tools/device_train.py pack` and carry it", file=sys.stderr)
        return 1
    init = Path(args.init) if args.init else newest_stage()
    styles = sorted(p for p in (PACK / "styles").iterdir() if p.stem not in args.leave_out)
    work = Path(args.work)
    cmd = [sys.executable, "-m", "realtime.train.cli", "--styles", *map(str, styles), "--data", str(PACK / "photos"),
           "--val", str(PACK / "val"), "--vgg-weights", str(PACK / "vgg16_relu4_3_fp16.pt"), "--out", str(work),
           "--name", args.name, "--no-export", "--iterations", str(args.iterations), "--batch", str(args.batch),
           "--lr", str(args.lr), "--checkpoint-every", str(args.checkpoint_every), "--preview-every",
           str(args.preview_every), "--log-every", str(args.log_every), *RECIPE, *args.extra]
    if init is not None:
        cmd += ["--init", str(init)]
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), PYTHONUNBUFFERED="1")
    print("device_train:", " ".join(cmd), flush=True)
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env)
    try:
        proc.wait(timeout=args.minutes * 60)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)  # the trainer saves its checkpoint and exits 143
        proc.wait(timeout=120)
    seconds = time.monotonic() - started
    run_dir = work / args.name
    checkpoint = run_dir / "checkpoint.pt"
    if not checkpoint.is_file():
        print(f"device_train: error: the trainer left no checkpoint (exit {proc.returncode})", file=sys.stderr)
        return 1
    slim = slim_checkpoint(checkpoint, out / f"{args.name}.pt")
    if (run_dir / "losses.csv").is_file():
        shutil.copy2(run_dir / "losses.csv", out / "losses.csv")
    previews = sorted((run_dir / "previews").glob("*.png"))
    if previews:
        shutil.copy2(previews[-1], out / "last_preview.png")
    packed_at = json.loads((PACK / "manifest.json").read_text()).get("commit") if (PACK / "manifest.json").is_file() else None
    summary = {"iteration": slim["iteration"], "from": str(init) if init else None, "wall_s": round(seconds, 1),
               "packed_at_commit": packed_at,
               "trainer_exit": proc.returncode, "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
               "torch": torch.__version__, "command": cmd}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"device_train: iteration {slim['iteration']} after {seconds:.0f} s; model in {out / (args.name + '.pt')}", flush=True)
    return 0 if proc.returncode in (0, 128 + signal.SIGTERM) else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="verb", required=True)
    pk = sub.add_parser("pack", help="here: write .devpack/ (photos, paintings, VGG16 in fp16)")
    pk.add_argument("--data", type=Path, default=SHARED, help="the folder holding content/ and styles/")
    pk.add_argument("--vgg-weights", default=None, help="VGG16 weights (default: as restyle-train finds them)")
    r = sub.add_parser("run", help="there: train for --minutes, write the model into $OUT")
    r.add_argument("--minutes", type=float, default=7.0, help="training time before the trainer is stopped")
    r.add_argument("--init", default=None, help="the network to start from (default: the newest stages/multi/*.pt)")
    r.add_argument("--name", default="joint12_gpu")
    r.add_argument("--leave-out", nargs="*", default=["the_kiss"], help="paintings not trained (the_kiss: the --add-style test)")
    r.add_argument("--batch", type=int, default=8)
    r.add_argument("--lr", type=float, default=1e-3)
    r.add_argument("--iterations", type=int, default=1_000_000, help="an upper bound: --minutes stops the run")
    r.add_argument("--checkpoint-every", type=int, default=1000)
    r.add_argument("--preview-every", type=int, default=2000)
    r.add_argument("--log-every", type=int, default=100)
    r.add_argument("--work", default="/tmp/device_train", help="the trainer's run folder (not brought back)")
    r.add_argument("--out", default=None, help="where the results go (default: $OUT)")
    r.add_argument("extra", nargs="*", help="more restyle-train options, after --")
    args = p.parse_args(argv)
    if args.verb == "pack":
        return pack(args.data, PACK, args.vgg_weights)
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
