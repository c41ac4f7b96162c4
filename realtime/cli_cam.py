"""``restyle-cam``: the live webcam filter window (argparse front end over ``realtime.live``).

Expected failures print one line ``restyle-cam: error: <message>`` on stderr and exit non-zero (2 for
usage errors, 1 otherwise, 130 for Ctrl+C); only bugs show a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import NoReturn, Sequence

from .argtypes import (DEVICE_HELP, LANES_HELP, PRECISION_HELP, SMOOTH_MODES, add_stroke_arguments, device_arg,
                       positive_float, positive_int, unit_float)
from .errors import RealtimeError
from .models import TIER_CHOICES
from .providers import PRECISIONS, check_precision

PROG = "restyle-cam"


class _OneLineParser(argparse.ArgumentParser):
    """argparse prints the whole usage before a usage error; we print one line naming --help."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message} (see --help)", file=sys.stderr)
        raise SystemExit(2)


def _size(text: str) -> tuple[int, int]:
    from .camera import parse_size

    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    from .controls import HELP

    p = _OneLineParser(
        prog=PROG,
        description="Live neural style transfer: point a camera at yourself and see a painting.",
        epilog=HELP + ". Without a display use --no-window --output FILE, or restyle-video for files.",
    )
    p.add_argument("--camera", default="0", help="camera index (0), device path (/dev/video2) or a video file standing in for a camera")
    p.add_argument("--loop", action="store_true", help="start a video file over when it ends")
    p.add_argument("--size", type=_size, default=None, metavar="WxH", help="frame size, e.g. 640x480 (default: what the camera gives)")
    p.add_argument("--mirror", action="store_true", help="flip left-right (selfie view)")
    p.add_argument("--style", "-s", help="style name, blend (a:0.7,b:0.3) or .onnx file (default: the zoo's default); n/p/1-9 switch live, m morphs")
    p.add_argument("--list-styles", action="store_true", help="list installed styles and exit")
    p.add_argument("--list-cameras", action="store_true", help="list camera indices that open and exit")
    p.add_argument("--tier", choices=TIER_CHOICES, default="auto", help="model tier: auto (default) runs the fast tier on the CPU and the full tier on CUDA")
    p.add_argument("--device", type=device_arg, default="auto", help=DEVICE_HELP)
    p.add_argument("--precision", choices=PRECISIONS, default="fp32", help=PRECISION_HELP)
    p.add_argument("--threads", type=positive_int, default=None, help="CPU threads for the network (default: all cores)")
    p.add_argument("--lanes", type=positive_int, default=None, help=LANES_HELP)
    p.add_argument("--batch", type=positive_int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--compare", action="store_true", help="show original | stylized side by side")
    add_stroke_arguments(p)
    p.add_argument("--strength", type=unit_float, default=1.0, help="blend with the original: 1 full style (default), 0 none")
    p.add_argument("--preserve-color", action="store_true", help="start with the input's colours kept (key c)")
    p.add_argument("--smooth", choices=SMOOTH_MODES, default="off",
                   help="temporal smoothing at start (default off); key s toggles it (flow when started off)")
    p.add_argument("--smooth-strength", type=unit_float, default=0.8, help="weight of the previous output where it is trusted (default 0.8)")
    p.add_argument("--no-overlay", action="store_true", help="start with the overlay hidden (key h)")
    p.add_argument("--no-window", action="store_true", help="no display: for servers and tests (with --output)")
    p.add_argument("--output", "-o", type=Path, default=None, help="record the shown frames to this file from the start")
    p.add_argument("--overwrite", "-y", action="store_true", help="replace --output if it exists")
    p.add_argument("--save-dir", type=Path, default=Path("."), help="folder for screenshots (space) and recordings (r)")
    p.add_argument("--duration", type=positive_float, default=None, metavar="SECONDS", help="stop after this many seconds")
    p.add_argument("--json", action="store_true", help="print a JSON summary (frames/s, latency, drops) on stdout")
    p.add_argument("--quiet", "-q", action="store_true", help="no information lines")
    return p


def restyle_cam(argv: Sequence[str] | None = None) -> int:
    """Run ``restyle-cam``; returns the exit code (RealtimeError is raised to the caller)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    quiet = args.quiet

    def info(msg: str) -> None:
        if not quiet:
            print(f"{PROG}: {msg}", file=sys.stderr, flush=True)

    if args.list_styles:
        from .cli import print_styles

        return print_styles(args.style)
    if args.list_cameras:
        from .camera import available_cameras

        found = available_cameras()
        print("\n".join(str(i) for i in found) if found else "no camera opens on this machine")
        return 0
    if args.batch != 1:
        raise RealtimeError("--batch does not apply live: frames are stylized one at a time, as they arrive "
                            "(batching adds latency); use restyle-video to batch a file")

    from .live import check_output, display_problem

    if not args.no_window:
        problem = display_problem()
        if problem:
            raise RealtimeError(f"{problem}; use --no-window --output FILE to record without a window, "
                                "or restyle-video to restyle a file")
    if args.output is not None:
        check_output(args.output, args.overwrite)
    check_precision(args.precision, args.device)

    from .models import list_styles, resolve_style_for_device

    # An unknown style fails before the camera opens. Switching styles live stays in the start's tier.
    start = resolve_style_for_device(args.style, args.tier, args.device)
    styles = list_styles(start.tier)
    index = next((i for i, s in enumerate(styles) if s.path.resolve() == start.path.resolve() and s.mix == start.mix), None)
    if index is None:
        styles.insert(0, start)
        index = 0
    return _run(args, styles, index, info)


def _run(args: argparse.Namespace, styles: list, index: int, info) -> int:  # noqa: ANN001
    from .camera import LatestFrame, open_reader
    from .controls import ViewState
    from .live import LiveLoop, LiveOptions, NoDisplay, OpenCVWindow
    from .stylizer import Stylizer

    # The window first: importing PyAV (the file source) before OpenCV's Qt window exists hung
    # namedWindow under Xvfb in our tests (suspected clash of the libraries bundled in the two wheels).
    display = NoDisplay() if args.no_window else OpenCVWindow()
    try:
        reader = open_reader(args.camera, args.size, args.loop)
    except BaseException:
        display.close()
        raise
    try:
        size = args.size or reader.frame_size
        stylizer = Stylizer(styles[index].path, device=args.device, threads=args.threads, lanes=args.lanes,  # type: ignore[arg-type]
                            style=styles[index].mix or None, precision=args.precision)
        info(f"{stylizer.describe()}; {reader.description} at {size[0]}x{size[1]}"
             + (f", {reader.rate:g} frames/s" if reader.rate else ""))
        stylizer.warmup(size[1], size[0])

        def load(style):  # noqa: ANN001, ANN202 - runs in the style-load thread
            s = Stylizer(style.path, device=args.device, threads=args.threads, lanes=args.lanes,  # type: ignore[arg-type]
                         style=style.mix or None, precision=args.precision)
            s.warmup(size[1], size[0])  # here, not on the first live frame: no freeze when it arrives
            return s

    except BaseException:
        reader.interrupt()
        reader.close()
        display.close()
        raise
    state = ViewState(style_index=index, n_styles=len(styles), smooth=args.smooth != "off", strength=args.strength,
                      preserve_colour=args.preserve_color, overlay=not args.no_overlay)
    options = LiveOptions(
        compare=args.compare,
        smooth_mode=args.smooth if args.smooth != "off" else "flow",
        smooth_strength=args.smooth_strength,
        output=args.output,
        overwrite=args.overwrite,
        save_dir=args.save_dir,
        duration=args.duration,
        rate_hint=reader.rate,
        stroke=None if args.full_size else args.stroke,
        max_size=args.max_size,
    )
    camera = LatestFrame(reader, size=args.size, mirror=args.mirror, background=stylizer.device == "cpu")
    loop = LiveLoop(camera, stylizer, styles, index, display, options, state=state, loader_factory=load, info=info)
    if not args.no_window:
        from .controls import HELP

        info(HELP)
    camera.start()
    summary = loop.run()  # closes camera, recording and window itself, also on errors
    info(f"{summary.end_reason}: showed {summary.frames_shown} frames in {summary.seconds:.1f}s "
         f"({summary.fps_shown:.1f} frames/s), model {summary.model_ms_median} ms, latency median "
         f"{summary.latency_ms_median} ms (p95 {summary.latency_ms_p95}), dropped {summary.dropped} of {summary.captured}")
    if args.json:
        print(json.dumps(summary.as_dict(), indent=2))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point of ``restyle-cam``."""
    from .cli import run_entry_point

    return run_entry_point(PROG, restyle_cam, argv, "interrupted (any recording was saved)")


if __name__ == "__main__":
    main()
