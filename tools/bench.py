#!/usr/bin/env python
"""Throughput of the stylizer alone and of ``restyle-video`` end to end, in one run, as one table.

    python tools/bench.py                       # the zoo's default style
    python tools/bench.py --style candy         # a style by name, or --style path/to/model.onnx
    python tools/bench.py --stand-in            # a random-weight Johnson TransformNet (32/64/128, 9x9
                                                # stem, 5 residual blocks) exported to a temporary file

Model-only: frames/s of ``Stylizer.stylize`` (pre + inference + post) on a real frame of each clip at its
native size; median of ``--runs`` runs after one warm-up before, and as many after, the end-to-end run. End-to-end: ``restyle-video`` run as a
subprocess on the first ``--seconds`` of each clip at native size; "e2e fps" counts the whole process
(start-up, model load and warm-up included), "pipeline fps" is the one ``--json`` reports (decode to
encode, without the one-off warm-up inference). Decoding and encoding run in threads beside inference, so pipeline fps should be close to
model-only fps.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DEFAULT_VIDEOS = REPO.parent / "shared" / "data" / "videos"


def stand_in_model(path: Path) -> Path:
    """A random-weight TransformNet with the real architecture, exported with the trainer's exporter."""
    import torch

    from realtime.train.export import export_onnx
    from realtime.train.model import TransformNet

    torch.manual_seed(0)
    net = TransformNet(width=32, depth=5).eval()
    meta = {"style_name": "stand-in (random Johnson net)", "input_range": "0,1", "layout": "NCHW",
            "channels": "RGB", "size_multiple": "4", "tier": "full"}
    export_onnx(net, path, meta, verify=False)
    return path


def first_frame(video: Path):  # noqa: ANN201 - np.ndarray
    from realtime.sources import FileSource

    with FileSource(video, queue_size=2) as src:
        for frame in src:
            return frame.image
    raise SystemExit(f"{video}: no frames")


def model_only(stylizer, image, runs: int, batch: int) -> tuple[float, list[float]]:  # noqa: ANN001
    h, w = image.shape[:2]
    stylizer.warmup(h, w, batch)
    frames = [image] * batch
    stylizer.stylize(frames)  # one more untimed call: first-call allocations at this shape
    per_run = []
    for _ in range(runs):
        t0 = time.perf_counter()
        stylizer.stylize(frames)
        per_run.append(batch / (time.perf_counter() - t0))
    return statistics.median(per_run), per_run


def end_to_end(video: Path, model: Path, seconds: float, batch: int, device: str, out_dir: Path) -> dict[str, float]:
    out = out_dir / (video.stem + "_bench.mp4")
    cmd = [sys.executable, "-m", "realtime.cli", str(video), str(out), "--style", str(model), "--json", "--quiet",
           "--overwrite", "--duration", f"{seconds:g}", "--batch", str(batch), "--device", device]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=str(REPO))
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"restyle-video failed on {video.name}: {res.stderr.strip()}")
    summary = json.loads(res.stdout)
    out.unlink(missing_ok=True)
    return {"frames": summary["frames"], "wall_s": wall, "e2e_fps": summary["frames"] / wall,
            "pipeline_fps": summary["fps_after_warmup"], "device": summary["device"], "stages": summary["stages"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--style", help="style name or .onnx path (default: the zoo default)")
    p.add_argument("--stand-in", action="store_true", help="benchmark a random-weight Johnson net instead")
    p.add_argument("--videos", type=Path, default=DEFAULT_VIDEOS)
    p.add_argument("--clips", nargs="+", default=["vtest.avi", "diver.mov"])
    p.add_argument("--runs", type=int, default=5, help="timed model-only runs per clip (median reported)")
    p.add_argument("--seconds", type=float, default=4.0, help="seconds of each clip for the end-to-end run")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--json", action="store_true", help="also print the raw numbers as JSON")
    args = p.parse_args(argv)

    from realtime.errors import RealtimeError
    from realtime.models import resolve_style
    from realtime.stylizer import Stylizer, cpu_count

    tmp = Path(tempfile.mkdtemp(prefix="bench-"))
    try:
        if args.stand_in:
            model = stand_in_model(tmp / "stand_in.onnx")
        else:
            try:
                model = resolve_style(args.style).path
            except RealtimeError as exc:
                raise SystemExit(f"bench: {exc} (or use --stand-in)") from None
        stylizer = Stylizer(model, device=args.device)
        print(f"model: {model} ({stylizer.info.style_name}); {stylizer.describe()}; "
              f"{cpu_count()} cores; batch {args.batch}; load {os.getloadavg()[0]:.2f}", flush=True)
        rows = []
        for name in args.clips:
            video = args.videos / name
            if not video.is_file():
                print(f"skip {name}: not found in {args.videos}", file=sys.stderr)
                continue
            image = first_frame(video)
            h, w = image.shape[:2]
            # model-only runs before and after the end-to-end run: the median then reflects the same
            # machine load (other jobs come and go on a shared box)
            _, before = model_only(stylizer, image, args.runs, args.batch)
            e2e = end_to_end(video, model, args.seconds, args.batch, args.device, tmp)
            _, after = model_only(stylizer, image, args.runs, args.batch)
            runs = before + after
            med = statistics.median(runs)
            rows.append({"clip": name, "size": f"{w}x{h}", "model_fps": med, "model_runs": runs, **e2e})
            print(f"  measured {name}", file=sys.stderr, flush=True)
        head = f"{'clip':<12} {'size':>9} {'model-only fps':>15} {'pipeline fps':>13} {'e2e fps':>8} {'pipeline/model':>15} {'frames':>7}"
        print(head)
        print("-" * len(head))
        for r in rows:
            print(f"{r['clip']:<12} {r['size']:>9} {r['model_fps']:>15.2f} {r['pipeline_fps']:>13.2f} {r['e2e_fps']:>8.2f} "
                  f"{r['pipeline_fps'] / r['model_fps']:>15.2f} {r['frames']:>7}")
        print(f"model-only: median of 2x{args.runs} runs after warm-up (before and after the end-to-end run); "
              "pipeline: restyle-video's own frames/s without warm-up; e2e: whole process incl. start-up and model load")
        if args.json:
            print(json.dumps(rows, indent=2))
    finally:
        for f in tmp.iterdir():
            f.unlink()
        tmp.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
