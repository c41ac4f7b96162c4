#!/usr/bin/env python
"""The CUDA path on a machine with an NVIDIA GPU, checked in one run (tools/gpu_check.sh installs first).

    python tools/gpu_check.py [--style NAME] [--size 1280x720] [--batches 1 4 8] [--device cuda:0] [--tensorrt]
    python tools/gpu_check.py --dry-run     # the same steps on the CPU at a small size (no GPU needed)

Prints, for the full tier of the style:
- which provider really ran (fp32 and fp16 sessions), and whether pre/post ran inside the graph;
- the largest and the mean |GPU - CPU| in 8-bit levels on real frames: fp32 within --tolerance,
  fp16 (GPU float16 against CPU float32) within --fp16-tolerance / --fp16-mean;
- model-only frames/s at --size for each batch size, fp32 and fp16, two batches kept in flight as
  restyle-video keeps them;
- restyle-video's own frames/s with --device D at --size (fp32 and fp16), on a clip made from
  samples/sample.mp4 at that size;
- with --tensorrt, the same model-only figure with --device tensorrt (its first run builds an engine,
  minutes; the engine is cached), or why TensorRT does not load.
Exits non-zero, loudly ("GPU CHECK FAILED: ..."), when anything ran on the CPU instead (the stylizer's
fallback, a session without the GPU provider first, restyle-video's summary) or outputs differ too much.
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
GPU_PROVIDERS = ("CUDAExecutionProvider", "TensorrtExecutionProvider")


def fail(message: str) -> None:
    print(f"GPU CHECK FAILED: {message}", file=sys.stderr, flush=True)
    raise SystemExit(1)


def parse_size(text: str) -> tuple[int, int]:
    w, sep, h = text.lower().partition("x")
    if not sep or not w.isdigit() or not h.isdigit() or int(w) < 8 or int(h) < 8:
        raise argparse.ArgumentTypeError(f"not a size WxH of at least 8x8: {text!r}")
    return int(w), int(h)


def check_device(stylizer, device: str, dry_run: bool) -> None:  # noqa: ANN001 - realtime.stylizer.Stylizer
    """Loud failure unless ``stylizer`` really runs where it was asked to (the CPU in a dry run)."""
    first = stylizer.session.get_providers()[0]
    if dry_run:
        ok = stylizer.device == "cpu" and first == "CPUExecutionProvider"
    else:
        ok = stylizer.device == "cuda" and not stylizer.fallback and first in GPU_PROVIDERS
    if not ok:
        fail(f"asked for {device}, got {stylizer.describe()}")


# ops that carry pixels: one of these on the CPU means copies to and from the GPU around it
PIXEL_OPS = {"Conv", "InstanceNormalization", "Resize", "Relu", "Round", "Clip", "Pad", "DepthToSpace"}

PLACEMENTS = r"""
import sys, onnxruntime as ort
opts = ort.SessionOptions(); opts.log_severity_level = 0
ort.set_default_logger_severity(0)
ort.InferenceSession(sys.argv[1], opts, providers=[("CUDAExecutionProvider", {"device_id": sys.argv[2]})])
"""


def nodes_on_the_cpu(model: Path, precision: str, index: int, tmp: Path) -> list[tuple[str, str]]:
    """(op type, node name) of each node of the wrapped graph (graph_io) that ONNX Runtime placed on the
    CPU beside CUDA (it does so silently, with copies around it), from its verbose log of placements."""
    import re

    import onnx

    from realtime import graph_io
    from realtime.stylizer import Stylizer

    info = Stylizer(model, device="cpu", lanes=1, graph_io=False).info
    proto = onnx.load(str(model))
    if precision == "fp16":
        proto = graph_io.to_fp16(proto)
    wrapped = graph_io.wrap_uint8(proto, input_range=info.input_range, channels=info.channels, phases=info.output_phases)
    path = tmp / f"wrapped_{precision}.onnx"
    onnx.save(wrapped, str(path))
    res = subprocess.run([sys.executable, "-c", PLACEMENTS, str(path), str(index)], capture_output=True, text=True)
    if res.returncode != 0:
        fail(f"a {precision} session of the wrapped graph does not build on CUDA: {res.stderr.strip().splitlines()[-1:]}")
    found, on_cpu, seen = [], False, False
    for line in (res.stdout + res.stderr).splitlines():
        message = line.split("] ", 1)[-1]
        if "All nodes placed on [CPUExecutionProvider]" in message:
            fail(f"{precision}: ONNX Runtime placed every node of the wrapped graph on the CPU")
        if "placed on [" in message:
            seen, on_cpu = True, "placed on [CPUExecutionProvider]" in message
            continue
        node = re.match(r"^\s+(\w+) \((.*)\)\s*$", message)
        if on_cpu and node:
            found.append((node.group(1), node.group(2)))
        elif on_cpu and not message.startswith(" "):
            on_cpu = False
    if not seen:
        print(f"WARNING: {precision}: ONNX Runtime's verbose log named no node placements; not checked", flush=True)
    return found


def compare(gpu, cpu_out: list[np.ndarray], frames: list[np.ndarray]) -> tuple[int, float]:  # noqa: ANN001
    diffs = [np.abs(g.astype(int) - c.astype(int)) for g, c in zip(gpu.stylize(frames), cpu_out)]
    return max(int(d.max()) for d in diffs), float(np.mean([d.mean() for d in diffs]))


def model_only_fps(stylizer, frame: np.ndarray, batch: int, runs: int) -> float:  # noqa: ANN001
    """Median frames/s of ``runs`` batches of ``batch`` frames, ``stylizer.lanes`` batches in flight."""
    h, w = frame.shape[:2]
    images = [frame] * batch
    stylizer.warmup(h, w, batch)
    stylizer.stylize(images)
    in_flight = [stylizer.submit(images) for _ in range(stylizer.lanes)]
    rates = []
    t0 = time.perf_counter()
    for _ in range(runs):
        in_flight.pop(0).result()
        in_flight.append(stylizer.submit(images))
        t1 = time.perf_counter()
        rates.append(batch / (t1 - t0))
        t0 = t1
    for job in in_flight:
        job.result()
    return statistics.median(rates)


def make_clip(source: Path, size: tuple[int, int], frames: int, out: Path) -> Path:
    """``frames`` frames of ``source`` (looped) scaled to ``size``, H.264 near-lossless."""
    import av
    import cv2

    from realtime.sources import FileSource

    with FileSource(source, queue_size=4) as src:
        pictures = [cv2.resize(f.image, size, interpolation=cv2.INTER_CUBIC) for f in src]
    if not pictures:
        fail(f"{source}: no frames")
    with av.open(str(out), "w") as dst:
        stream = dst.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.options = {"crf": "12", "preset": "ultrafast"}
        for i in range(frames):
            for packet in stream.encode(av.VideoFrame.from_ndarray(pictures[i % len(pictures)], format="rgb24")):
                dst.mux(packet)
        for packet in stream.encode():
            dst.mux(packet)
    return out


def restyle_video(clip: Path, out: Path, device: str, precision: str, style: str | None, dry_run: bool) -> dict:
    cmd = [sys.executable, "-m", "realtime.cli", str(clip), str(out), "--device", device, "--tier", "full",
           "--precision", precision, "--json", "--quiet", "--overwrite"] + (["--style", style] if style else [])
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=str(REPO))
    if res.returncode != 0:
        fail(f"restyle-video --device {device} --precision {precision}: {res.stderr.strip()}")
    summary = json.loads(res.stdout)
    want = "cpu" if dry_run else "cuda"
    if summary.get("device") != want or summary.get("device_note") or summary.get("precision") != precision:
        fail(f"restyle-video --device {device} --precision {precision} ran on {summary.get('device')} "
             f"({summary.get('provider')}, {summary.get('precision')}; {summary.get('device_note')})")
    if not dry_run and summary.get("provider") not in GPU_PROVIDERS:
        fail(f"restyle-video ran on {summary.get('provider')}")
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--style", help="style name (default: the zoo's default); its full tier is checked")
    p.add_argument("--device", default="cuda", help="cuda or cuda:N (default cuda)")
    p.add_argument("--size", type=parse_size, default=None, help="WxH (default 1280x720; 160x96 with --dry-run)")
    p.add_argument("--batches", nargs="+", type=int, default=[1, 4, 8])
    p.add_argument("--runs", type=int, default=None, help="timed batches per figure (default 20; 2 with --dry-run)")
    p.add_argument("--frames", type=int, default=None, help="frames of the restyle-video clip (default 300; 12 with --dry-run)")
    p.add_argument("--tolerance", type=int, default=2, help="largest allowed |GPU - CPU| in 8-bit levels, fp32 (default 2)")
    # not yet measured on a GPU (there was none where this was written): float16 keeps 11 bits, and the
    # instance norms renormalise every block, so a few levels at most are expected; confirm on the first run
    p.add_argument("--fp16-tolerance", type=int, default=12, help="largest allowed |GPU fp16 - CPU fp32| (default 12)")
    p.add_argument("--fp16-mean", type=float, default=1.5, help="largest allowed mean |GPU fp16 - CPU fp32| (default 1.5)")
    p.add_argument("--clip", type=Path, default=CLIP)
    p.add_argument("--tensorrt", action="store_true", help="also model-only frames/s with --device tensorrt (builds an engine: minutes)")
    p.add_argument("--dry-run", action="store_true", help="the same steps on the CPU at a small size: checks this script, not a GPU")
    a = p.parse_args(argv)
    dry = a.dry_run
    w, h = a.size or ((160, 96) if dry else (1280, 720))
    runs = a.runs or (2 if dry else 20)
    clip_frames = a.frames or (12 if dry else 300)
    if min(a.batches) < 1 or runs < 1 or clip_frames < 1:
        p.error("--batches, --runs and --frames must be at least 1")

    import onnxruntime as ort

    from realtime.errors import RealtimeError
    from realtime.models import resolve_style
    from realtime.providers import parse_device
    from realtime.provider_probe import cuda_library_problem
    from realtime.stylizer import Stylizer

    try:
        spec = parse_device(a.device)
    except ValueError as exc:
        p.error(str(exc))
    if spec.kind != "cuda":
        p.error("--device must be cuda or cuda:N (TensorRT: --tensorrt)")
    device = "cpu" if dry else str(spec)
    print(f"onnxruntime {ort.__version__}, providers listed: {', '.join(ort.get_available_providers())}"
          + ("; DRY RUN on the CPU" if dry else ""), flush=True)
    if not dry:
        problem = cuda_library_problem()
        if problem:
            fail(f"the CUDA provider library does not load: {problem}")
    style = resolve_style(a.style, "full")
    try:
        gpu = {prec: Stylizer(style.path, device=device, precision=prec) for prec in ("fp32", "fp16")}
    except RealtimeError as exc:
        fail(str(exc))
    for prec, s in gpu.items():
        check_device(s, device, dry)
        if s.precision != prec:
            fail(f"asked for {prec}, the session runs {s.precision}")
        print(f"{prec}: model {style.path.name}: {s.describe()}; pre/post in the graph: {s.graph_io}; "
              f"{s.lanes} batches in flight", flush=True)
        if not dry:
            from realtime.graph_io import SHAPE_NODES

            with tempfile.TemporaryDirectory() as tmp:
                cpu_nodes = nodes_on_the_cpu(style.path, prec, spec.index, Path(tmp))
            # shape computations (a few int64 values) stay on the CPU on purpose; pixels must not
            counts: dict[str, int] = {}
            for op, _ in cpu_nodes:
                counts[op] = counts.get(op, 0) + 1
            print(f"{prec}: nodes on the CPU beside CUDA: " + (", ".join(f"{op} x{k}" for op, k in sorted(counts.items())) or "none"),
                  flush=True)
            heavy = [f"{op} ({name})" for op, name in cpu_nodes
                     if op in PIXEL_OPS or (name.startswith("realtime_io/") and name not in SHAPE_NODES)]
            if heavy:
                fail(f"{prec}: pixel work placed on the CPU beside CUDA: {', '.join(heavy[:8])}")
    cpu = Stylizer(style.path, device="cpu", graph_io=False)

    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8)]
    try:
        from realtime.sources import FileSource

        import cv2

        with FileSource(a.clip, queue_size=2) as src:
            frames = [cv2.resize(next(iter(src)).image, (w, h))] + frames
    except Exception as exc:  # noqa: BLE001 - the random frame is enough to compare
        print(f"(clip {a.clip} not used: {exc})")
    cpu_out = cpu.stylize(frames)
    for prec, (bound, mean_bound) in (("fp32", (a.tolerance, None)), ("fp16", (a.fp16_tolerance, a.fp16_mean))):
        worst, mean = compare(gpu[prec], cpu_out, frames)
        print(f"{prec}: max |{device} - CPU fp32| = {worst} levels of 255, mean {mean:.3f}, over {len(frames)} frame(s) "
              f"at {w}x{h} (bound {bound}" + (f", mean {mean_bound}" if mean_bound is not None else "") + ")", flush=True)
        if worst > bound or (mean_bound is not None and mean > mean_bound):
            fail(f"{prec} output on {device} differs from the CPU's by {worst} levels (mean {mean:.3f})")

    print(f"model-only frames/s at {w}x{h} on {device} ({runs} batches each, median):")
    print(f"{'batch':>5} {'fp32':>9} {'fp16':>9}")
    for batch in a.batches:
        rates = [model_only_fps(gpu[prec], frames[0], batch, runs) for prec in ("fp32", "fp16")]
        print(f"{batch:>5} {rates[0]:>9.1f} {rates[1]:>9.1f}", flush=True)
    for s in gpu.values():
        check_device(s, device, dry)  # nothing moved to the CPU while running

    if a.tensorrt and not dry:
        trt_device = f"tensorrt:{spec.index}" if spec.index else "tensorrt"
        try:
            trt = Stylizer(style.path, device=trt_device)
        except RealtimeError as exc:
            fail(str(exc))
        if trt.provider != "TensorrtExecutionProvider":
            print(f"TensorRT: not used ({trt.fallback or trt.describe()})")
        else:
            t0 = time.perf_counter()
            trt.warmup(h, w, 1)
            print(f"TensorRT: engine ready in {time.perf_counter() - t0:.1f} s; batch 1: "
                  f"{model_only_fps(trt, frames[0], 1, runs):.1f} frames/s", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        clip = make_clip(a.clip, (w, h), clip_frames, Path(tmp) / f"clip_{w}x{h}.mp4")
        for prec in ("fp32", "fp16"):
            if dry and prec == "fp16":
                print("restyle-video --precision fp16: skipped in a dry run (refused on the CPU)")
                continue
            summary = restyle_video(clip, Path(tmp) / "out.mp4", device, prec, a.style, dry)
            print(f"restyle-video --device {device} --precision {prec} at {w}x{h}: {summary['frames']} frames, "
                  f"{summary['fps_after_warmup']:.1f} frames/s after warm-up ({summary['provider']}, "
                  f"pre/post in the graph: {summary['graph_io']})", flush=True)
    print("GPU CHECK PASSED" + (" (dry run on the CPU: nothing was checked on a GPU)" if dry else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
