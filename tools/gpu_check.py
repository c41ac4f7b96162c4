#!/usr/bin/env python
"""The CUDA path on a machine with an NVIDIA GPU, checked in one run (tools/gpu_check.sh installs first).

    python tools/gpu_check.py [--style NAME] [--size 1280x720] [--batches 1 4 8] [--clip FILE]

Prints which provider really ran, the largest difference of CUDA against CPU output on real frames
(bound: --tolerance levels of 255), model-only frames/s per batch size at --size on CUDA, and
restyle-video's own frames/s with --device cuda. Exits non-zero, loudly, when anything ran on the CPU
instead (the stylizer's fallback, a session without the CUDA provider) or the outputs differ too much.
Not covered yet: fp16 models, TensorRT (issue 22).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
CLIP = REPO / "samples" / "sample.mp4"


def fail(message: str) -> None:
    print(f"GPU CHECK FAILED: {message}", file=sys.stderr, flush=True)
    raise SystemExit(1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--style", help="style name (default: the zoo's default); its full tier is checked")
    p.add_argument("--size", default="1280x720")
    p.add_argument("--batches", nargs="+", type=int, default=[1, 4, 8])
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--tolerance", type=int, default=2, help="largest allowed |CUDA - CPU| in 8-bit levels")
    p.add_argument("--clip", type=Path, default=CLIP)
    a = p.parse_args(argv)
    w, h = (int(v) for v in a.size.lower().split("x"))

    import onnxruntime as ort

    from realtime.models import resolve_style
    from realtime.stylizer import Stylizer, cuda_library_problem

    print(f"onnxruntime {ort.__version__}, providers listed: {', '.join(ort.get_available_providers())}")
    problem = cuda_library_problem()
    if problem:
        fail(f"the CUDA provider library does not load: {problem}")
    style = resolve_style(a.style, "full")
    gpu = Stylizer(style.path, device="cuda")
    if gpu.device != "cuda" or gpu.fallback or "CUDAExecutionProvider" not in gpu.session.get_providers()[:1]:
        fail(f"asked for CUDA, got {gpu.describe()}")
    print(f"model {style.path.name}: {gpu.describe()}")
    cpu = Stylizer(style.path, device="cpu")

    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8)]
    try:
        from realtime.sources import FileSource

        with FileSource(a.clip, queue_size=2) as src:
            import cv2

            frames = [cv2.resize(next(iter(src)).image, (w, h))] + frames
    except Exception as exc:  # noqa: BLE001 - the random frame is enough to compare
        print(f"(clip {a.clip} not used: {exc})")
    worst = max(int(np.abs(gpu.stylize([f])[0].astype(int) - cpu.stylize([f])[0].astype(int)).max()) for f in frames)
    print(f"fp32: max |CUDA - CPU| = {worst} levels of 255 over {len(frames)} frame(s) at {w}x{h} (bound {a.tolerance})")
    if worst > a.tolerance:
        fail(f"CUDA output differs from the CPU's by {worst} levels")

    print(f"{'batch':>5} {'model-only fps':>15}")
    for batch in a.batches:
        images = [frames[0]] * batch
        gpu.warmup(h, w, batch)
        gpu.stylize(images)
        rates = []
        for _ in range(a.runs):
            t = time.perf_counter()
            gpu.stylize(images)
            rates.append(batch / (time.perf_counter() - t))
        print(f"{batch:>5} {statistics.median(rates):>15.1f}", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.mp4"
        res = subprocess.run([sys.executable, "-m", "realtime.cli", str(a.clip), str(out), "--device", "cuda", "--tier", "full",
                              "--json", "--quiet", "--max-size", str(max(w, h))] + (["--style", a.style] if a.style else []),
                             capture_output=True, text=True, cwd=str(REPO))
        if res.returncode != 0:
            fail(f"restyle-video --device cuda: {res.stderr.strip()}")
        summary = json.loads(res.stdout)
        if summary.get("device") != "cuda" or summary.get("device_note"):
            fail(f"restyle-video ran on {summary.get('device')} ({summary.get('device_note')})")
        print(f"restyle-video --device cuda on {a.clip.name}: {summary['frames']} frames, "
              f"{summary['fps_after_warmup']:.1f} frames/s after warm-up")
    print("GPU CHECK PASSED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
