"""``restyle-video`` with several inputs (``a.mp4 b.mov ... -o FOLDER``, or a folder) and ``--cluster``.

The arguments are added to the restyle-video parser here (``add_arguments``), and ``restyle_many`` is
what the CLI calls when there is more than one input or a cluster. This module imports no Ray: without
``--cluster`` the inputs run one after another on this machine (``pipeline.restyle_file``), with the
base install; with it they go to the cluster (run.py).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import replace
from pathlib import Path
from typing import Callable

from ..argtypes import positive_int
from ..errors import Interrupted, OutputError, RealtimeError
from ..sinks import CONTAINERS

WarnFn = Callable[[str], None]

# Files taken from an input folder (by suffix; anything else in it is left alone).
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts",
                  ".wmv", ".flv", ".3gp", ".ogv")
DEFAULT_SEGMENT_SECONDS = 20.0


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds: {text!r}")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The several-inputs and cluster options of restyle-video."""
    p.add_argument("--output-dir", "-o", type=Path, metavar="FOLDER",
                   help="write one output per input into FOLDER (then every PATH is an input: a video or a folder of videos)")
    p.add_argument("--cluster", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="run on a Ray cluster: no ADDRESS starts one on this machine; 'auto' or ray://HOST:10001 joins one "
                        "(needs the [cluster] extra; put it after the inputs or write --cluster=ADDRESS)")
    p.add_argument("--workers", type=positive_int, default=None,
                   help="--cluster: workers (default: one per GPU, else one per --threads cores, 2 by default)")
    p.add_argument("--segment-seconds", type=_positive_seconds, default=DEFAULT_SEGMENT_SECONDS, metavar="SECONDS",
                   help="--cluster: cut long videos into segments of about this length, at keyframes "
                        f"(default {DEFAULT_SEGMENT_SECONDS:g})")


def several_inputs(args: argparse.Namespace) -> bool:
    """Whether this run takes the several-inputs path (more than one input, a folder, or --cluster)."""
    if args.cluster and Path(args.cluster).exists():
        # "--cluster a.mp4 b.mp4 -o out": argparse gave the first input to --cluster as its address
        args.paths.insert(0, Path(args.cluster))
        args.cluster = ""
    paths = args.paths
    return (args.cluster is not None or args.output_dir is not None or len(paths) > 2
            or (len(paths) == 2 and paths[0].is_dir()))


def pair_outputs(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[tuple[Path, Path]]:
    """(input, output) pairs: every PATH an input with -o FOLDER, or INPUT OUTPUT, or FOLDER OUTPUT_FOLDER."""
    paths: list[Path] = list(args.paths)
    folder = args.output_dir
    if folder is None:
        if len(paths) == 2 and paths[0].is_dir():
            paths, folder = paths[:1], paths[1]
        elif len(paths) == 2:
            return [(paths[0], paths[1])]
        elif len(paths) > 2:
            parser.error("several inputs need an output folder: -o FOLDER")
        else:
            parser.error("the input and output files are required (or INPUT... -o FOLDER)")
    if not paths:
        parser.error("no input given")
    inputs: list[Path] = []
    for p in paths:
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.is_file() and q.suffix.lower() in VIDEO_SUFFIXES)
            if not found:
                raise RealtimeError(f"input folder {p} holds no video files ({', '.join(VIDEO_SUFFIXES)})")
            inputs.extend(found)
        else:
            inputs.append(p)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"output folder {folder} is not a folder")
    pairs = []
    taken: dict[Path, Path] = {}
    for inp in inputs:
        suffix = inp.suffix.lower() if inp.suffix.lower() in CONTAINERS else ".mp4"
        out = folder / f"{inp.stem}{suffix}"
        if out in taken:
            raise OutputError(f"{taken[out]} and {inp} would both be written to {out}; restyle them into separate folders")
        taken[out] = inp
        pairs.append((inp, out))
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot make output folder {folder}: {exc.strerror or exc}") from exc
    return pairs


def restyle_many(args: argparse.Namespace, opts, parser: argparse.ArgumentParser, *, warn: WarnFn,  # noqa: ANN001
                 info: WarnFn) -> int:
    """Run several inputs (one after another, or on the cluster) from restyle-video's arguments and
    ``opts`` (its RestyleOptions, input and output aside). Each input that fails gets one line on stderr;
    the exit code is 1 when any did."""
    if opts.start or opts.duration is not None:
        parser.error("--start and --duration apply to one input without --cluster")
    pairs = pair_outputs(args, parser)
    if args.cluster is not None:
        results = _on_cluster(args, opts, pairs, warn=warn, info=info)
    else:
        results = _one_after_another(args, opts, pairs, warn=warn, info=info)
    failed = [r for r in results["inputs"] if not r["ok"]]
    for r in failed:
        print(f"{PROG}: error: {Path(r['input']).name}: {r['error']}", file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(results, indent=2))
    elif not args.quiet:
        done = len(results["inputs"]) - len(failed)
        print(f"{PROG}: wrote {done} of {len(results['inputs'])} outputs: {results['frames']} frames in "
              f"{results['seconds']:.1f}s ({results['fps']:.2f} frames/s)", file=sys.stderr)
    return 1 if failed else 0


PROG = "restyle-video"


def _one_after_another(args: argparse.Namespace, opts, pairs: list[tuple[Path, Path]], *, warn: WarnFn,  # noqa: ANN001
                       info: WarnFn) -> dict[str, object]:
    import time

    from ..pipeline import restyle_file

    t0 = time.perf_counter()
    results: list[dict[str, object]] = []
    for inp, out in pairs:
        try:
            summary = restyle_file(replace(opts, input=inp, output=out), warn=warn, info=info,
                                   progress=not args.quiet)
            results.append({"input": str(inp), "output": str(out), "ok": True, "error": None, **{
                k: v for k, v in summary.as_dict().items() if k not in ("input", "output")}})
        except Interrupted:
            raise
        except RealtimeError as exc:
            results.append({"input": str(inp), "output": str(out), "ok": False, "error": str(exc)})
    seconds = time.perf_counter() - t0
    frames = sum(int(r.get("frames", 0)) for r in results if r["ok"])  # type: ignore[arg-type]
    return {"inputs": results, "frames": frames, "seconds": round(seconds, 4),
            "fps": round(frames / seconds, 3) if seconds > 0 else 0.0}


def _on_cluster(args: argparse.Namespace, opts, pairs: list[tuple[Path, Path]], *, warn: WarnFn,  # noqa: ANN001
                info: WarnFn) -> dict[str, object]:
    from ..models import resolve_style, resolve_style_for_device
    from ..pipeline import check_paths, smoother_for
    from ..providers import check_precision
    from .run import ClusterOptions, InputJob, import_ray, restyle_on_cluster
    from .work import SegmentSettings

    import_ray()  # the one-line "install the [cluster] extra" before anything else
    if opts.batch < 1 or not 0.0 <= opts.strength <= 1.0:
        raise RealtimeError("--batch must be at least 1 and --strength between 0 and 1")
    opts.encoder.validate()
    check_precision(opts.precision, opts.device)  # fp16 on CPU workers: refused here, once
    smoother_for(opts.smooth, opts.smooth_strength)  # a mode this build cannot run fails here, not on a worker
    # an unknown style fails before Ray starts; a style inside a multi-style model (or a blend) is its mix
    mix = resolve_style_for_device(opts.style, opts.tier, "cpu").mix or None

    def model_for(device: str) -> Path:
        # --tier auto: the full tier where the workers have GPUs, the fast one on their CPUs (this machine
        # cannot probe the workers' CUDA, so resolve_style_for_device's probe would not do)
        tier = opts.tier if opts.tier != "auto" else ("fast" if device == "cpu" else "full")
        return resolve_style(opts.style, tier).path
    jobs = [InputJob(inp, out, overwrite=opts.overwrite, audio=opts.audio) for inp, out in pairs]

    def check(job: InputJob) -> None:
        check_paths(job.input, job.output, job.overwrite)

    cluster = ClusterOptions(address=args.cluster or None, workers=args.workers, threads=opts.threads, lanes=opts.lanes,
                             device=opts.device, segment_seconds=args.segment_seconds, style=mix, precision=opts.precision)
    settings = SegmentSettings(suffix=".mp4", encoder=opts.encoder, batch=opts.batch, max_size=opts.max_size,
                               stroke=opts.stroke, strength=opts.strength, preserve_color=opts.preserve_color, smooth=opts.smooth,
                               smooth_strength=opts.smooth_strength)
    summary = restyle_on_cluster(jobs, model_for, settings, cluster, check=check, warn=warn, info=info,
                                 progress=not args.quiet)
    return summary.as_dict()
