"""Command-line front ends: thin argparse layers over the typed functions of the package.

Expected failures (``RealtimeError``) are printed as one line ``<prog>: error: <message>`` on stderr and
exit with the error's code (1; 130 for Ctrl+C); argparse usage errors exit 2. Only bugs show a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable, Sequence

from .allocator import keep_freed_memory
from .argtypes import (DEVICE_HELP, LANES_HELP, PRECISION_HELP, SMOOTH_MODES, OneLineParser, add_stroke_arguments,
                       device_arg, positive_int, unit_float)
from .cluster.cli import add_arguments as add_many_arguments, several_inputs
from .errors import Interrupted, RealtimeError
from .models import TIER_CHOICES
from .providers import PRECISIONS
from .signals import StopSignals

PROG = "restyle-video"


def _seconds(text: str) -> float:
    """Seconds as ``12.5``, ``1:02.5`` or ``0:01:02``."""
    try:
        parts = [float(p) for p in text.split(":")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a time: {text!r} (use seconds or [h:]m:s)") from None
    # float() also takes "nan" and "inf": neither is a time (NaN fails every comparison)
    if len(parts) > 3 or any(not 0 <= p < float("inf") for p in parts):
        raise argparse.ArgumentTypeError(f"not a time: {text!r}")
    value = 0.0
    for p in parts:
        value = value * 60 + p
    if value == float("inf"):
        raise argparse.ArgumentTypeError(f"not a time: {text!r} (too large)")
    return value


def build_restyle_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog=PROG,
        description="Restyle a video file with a neural style model; audio and timing are kept.",
        epilog="Styles: the shipped zoo (see --list-styles), models in $REALTIME_MODELS_DIR, or a path to an .onnx file.",
    )
    p.add_argument("paths", nargs="*", type=Path, metavar="PATH",
                   help="INPUT OUTPUT (.mp4, .mov, .mkv, .m4v, .avi), or several inputs (videos or folders) with -o FOLDER")
    p.add_argument("--style", "-s", help="style name, a blend of styles of one model (a:0.7,b:0.3), or an .onnx "
                                         "model (FILE.onnx@name picks a style inside it); default: the zoo's default")
    p.add_argument("--list-styles", action="store_true", help="list installed styles and exit")
    p.add_argument("--tier", choices=TIER_CHOICES, default="auto", help="model tier: auto (default) runs the fast tier on the CPU and the full tier on CUDA")
    p.add_argument("--device", type=device_arg, default="auto", help=DEVICE_HELP)
    p.add_argument("--precision", choices=PRECISIONS, default="fp32", help=PRECISION_HELP)
    p.add_argument("--batch", type=positive_int, default=1, help="frames per inference call (default 1)")
    p.add_argument("--threads", type=positive_int, default=None, help="CPU threads for the network (default: all cores)")
    p.add_argument("--lanes", type=positive_int, default=None, help=LANES_HELP)
    add_stroke_arguments(p)
    p.add_argument("--strength", type=unit_float, default=1.0, help="blend with the original: 1 full style, 0 none")
    p.add_argument("--preserve-color", action="store_true", help="keep the input's colours; stylize luminance only")
    p.add_argument("--start", type=_seconds, default=0.0, help="start at this time (seconds or [h:]m:s)")
    p.add_argument("--duration", type=_seconds, default=None, help="process this many seconds")
    p.add_argument("--smooth", choices=SMOOTH_MODES, default="off",
                   help="temporal smoothing against flicker (default off; flow-hq: finer flow, steadier, slower)")
    p.add_argument("--smooth-strength", type=unit_float, default=0.8, help="weight of the previous output where it is trusted (default 0.8)")
    p.add_argument("--codec", default="libx264", help="video encoder (default libx264)")
    p.add_argument("--crf", type=float, default=None, help="encoder quality, lower is better (libx264 default 23)")
    p.add_argument("--preset", default=None, help="encoder speed preset (libx264: ultrafast ... veryslow; default superfast)")
    p.add_argument("--pix-fmt", default="yuv420p", help="output pixel format (default yuv420p; yuv444p keeps odd sizes)")
    p.add_argument("--no-audio", action="store_true", help="drop the audio")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar or information lines (warnings still shown)")
    p.add_argument("--overwrite", "-y", action="store_true", help="replace the output file if it exists")
    add_many_arguments(p)
    return p


def print_styles(spec: str | None = None) -> int:
    """Print the installed styles, one a line (name, "(default)", tiers, path; ``path@name`` for a style
    inside a multi-style model), for --list-styles; with ``spec`` a model file, the styles it holds."""
    from .models import default_style, list_styles, resolve_style, tiers_of

    if spec:
        style = resolve_style(spec)
        if style.origin == "file":
            from .stylizer import Stylizer

            for name in Stylizer(style.path, device="cpu", lanes=1).info.style_names:
                print(f"{name}\t{style.path}@{name}")
            return 0
    styles = list_styles()
    try:
        default = default_style().name
    except RealtimeError:
        default = None
    if not styles:
        print("no styles installed", file=sys.stderr)
        return 0
    for s in styles:
        mark = " (default)" if s.name == default else ""
        print(f"{s.name}{mark}\t{'+'.join(tiers_of(s.name))}\t{s.path}" + (f"@{s.mix}" if s.mix else ""))
    return 0


def restyle_video(argv: Sequence[str] | None = None) -> int:
    """Run ``restyle-video``; returns the exit code (RealtimeError is raised to the caller)."""
    from .pipeline import RestyleOptions, restyle_file
    from .sinks import EncoderSettings

    parser = build_restyle_parser()
    args = parser.parse_args(argv)
    if args.list_styles:
        return print_styles(args.style)
    many = several_inputs(args)  # several inputs or --cluster: realtime/cluster
    if not many and len(args.paths) != 2:
        parser.error("the input and output files are required (or INPUT... -o FOLDER)")
    opts = RestyleOptions(
        input=args.paths[0] if args.paths else Path(),
        output=args.paths[-1] if args.paths else Path(),
        style=args.style,
        tier=args.tier,
        device=args.device,
        precision=args.precision,
        batch=args.batch,
        max_size=args.max_size,
        stroke=None if args.full_size else args.stroke,
        strength=args.strength,
        preserve_color=args.preserve_color,
        start=args.start,
        duration=args.duration,
        smooth=args.smooth,
        smooth_strength=args.smooth_strength,
        encoder=EncoderSettings(codec=args.codec, pix_fmt=args.pix_fmt, crf=args.crf, preset=args.preset),
        overwrite=args.overwrite,
        audio=not args.no_audio,
        threads=args.threads,
        lanes=args.lanes,
    )

    def warn(msg: str) -> None:
        print(f"{PROG}: warning: {msg}", file=sys.stderr, flush=True)

    def info(msg: str) -> None:
        if not args.quiet:
            print(f"{PROG}: {msg}", file=sys.stderr, flush=True)

    if many:
        from .cluster.cli import restyle_many

        return restyle_many(args, opts, parser, warn=warn, info=info)
    summary = restyle_file(opts, warn=warn, info=info, progress=not args.quiet)
    if args.json:
        print(json.dumps(summary.as_dict(), indent=2))
    elif not args.quiet:
        print(f"{PROG}: wrote {summary.output}: {summary.frames} frames in {summary.seconds:.1f}s "
              f"({summary.fps:.2f} frames/s)", file=sys.stderr)
    return 0


def run_entry_point(prog: str, command: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None,
                    interrupted_message: str = "interrupted") -> int:
    """Run a command-line front end: expected errors become one line ``PROG: error: ...`` and an exit code
    (1, 2 for usage, 130 for Ctrl+C). SIGTERM and SIGHUP stop it as Ctrl+C does (realtime.signals), with
    128 + the signal's number; further signals during the cleanup are ignored. Exits when ``argv`` is
    None (a console script), returns the code otherwise (tests)."""
    keep_freed_memory()  # frame buffers are reused instead of page-faulted in anew (allocator.py)
    with StopSignals() as stops:
        message = None
        try:
            code = command(argv)
        except KeyboardInterrupt:
            message, code = f"{prog}: {stops.reword(interrupted_message)}", stops.exit_code(Interrupted.exit_code)
        except Interrupted as exc:
            message, code = f"{prog}: error: {stops.reword(str(exc))}", stops.exit_code(exc.exit_code)
        except SystemExit as exc:  # argparse: usage errors (2) and --help (0)
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
        except Exception as exc:
            if stops.received is not None:
                # the stop's doing: a library (a pybind11 or Cython extension) can turn the
                # KeyboardInterrupt raised inside it into an error of its own
                message, code = f"{prog}: {stops.reword(interrupted_message)}", stops.exit_code(Interrupted.exit_code)
            elif isinstance(exc, RealtimeError):
                message, code = f"{prog}: error: {exc}", exc.exit_code
            else:
                raise
        if message is not None:
            try:
                print(message, file=sys.stderr)
            except OSError:
                pass  # SIGHUP: the terminal may be gone
    if argv is None:
        sys.exit(code)
    return code


def restyle_video_main(argv: Sequence[str] | None = None) -> int:
    """Console entry point of ``restyle-video``."""
    return run_entry_point(PROG, restyle_video, argv, "error: interrupted; no output written")


def main() -> None:
    restyle_video_main()


if __name__ == "__main__":
    main()
