"""``restyle-image``: stylize still images (argparse front end over ``realtime.images``).

Three methods, one set of path rules (a file or a folder in, a file or a folder out, nothing overwritten
without --overwrite, nothing half-written):
- a fast style model (``--style NAME|FILE.onnx``), the same stylizer as restyle-video, tiled when large;
- ``--sheet``: a labelled contact sheet of several styles (default: the whole zoo);
- ``--optimize --style-image PAINTING``: Gatys et al.'s optimisation (needs the [train] extra).

Expected failures print one line ``restyle-image: error: <message>`` and exit 1 (2 for usage errors,
130 for Ctrl+C); only bugs show a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn, Sequence

from .argtypes import (DEVICE_HELP, add_stroke_arguments, device_arg, layer_list, layer_weights, non_negative_float,
                       non_negative_int, percent_int, positive_float, positive_int, unit_float)
from .errors import InputError, ModelError, OutputError, RealtimeError
from .models import TIER_CHOICES

PROG = "restyle-image"
OPTIMIZE_SIZE = 512  # --optimize: default long side (one L-BFGS iteration is one VGG pass at this size)
SHEET_SIZE = 1024  # --sheet: default long side (the sheet shows small tiles)


class _OneLineParser(argparse.ArgumentParser):
    """argparse prints the whole usage before a usage error; one line naming --help is enough."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message} (see --help)", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    from .images import DEFAULT_OVERLAP, DEFAULT_TILE

    p = _OneLineParser(
        prog=PROG,
        description="Stylize still images (a file or a folder) with a style model, a contact sheet of "
                    "styles, or by optimisation (Gatys et al.).",
        epilog="Styles: the shipped zoo (see --list-styles), models in $REALTIME_MODELS_DIR, or a path to an .onnx "
               "file. Formats: PNG, JPEG, WebP out; EXIF rotation of the input is applied.",
    )
    p.add_argument("input", nargs="?", type=Path, help="input image or folder of images")
    p.add_argument("output", nargs="?", type=Path, help="output image (.png, .jpg, .webp) or folder")
    p.add_argument("--style", "-s", action="append", metavar="NAME|FILE.onnx",
                   help="style name or .onnx model (default: the zoo's default); with --sheet, repeat it or "
                        "separate names by commas (default: every installed style)")
    p.add_argument("--list-styles", action="store_true", help="list installed styles and exit")
    p.add_argument("--tier", choices=TIER_CHOICES, default="auto",
                   help="model tier: auto (default) runs the fast tier on the CPU and the full tier on CUDA")
    p.add_argument("--device", type=device_arg, default="auto",
                   help=DEVICE_HELP + "; --optimize runs on PyTorch: auto, cpu, cuda or cuda:N")
    p.add_argument("--threads", type=positive_int, default=None, help="CPU threads (default: all cores)")
    add_stroke_arguments(p, stroke_default=None, model_only=True,
                         max_size_default=f"{OPTIMIZE_SIZE} with --optimize, {SHEET_SIZE} with --sheet")
    p.add_argument("--strength", type=unit_float, default=1.0, help="blend with the original: 1 full style, 0 none")
    p.add_argument("--preserve-color", action="store_true", help="keep the input's colours; stylize luminance only")
    p.add_argument("--tile-size", type=non_negative_int, default=DEFAULT_TILE, metavar="PIXELS",
                   help=f"run the network on at most this many pixels square at a time, blending overlapping "
                        f"tiles (bounds memory for large images; default {DEFAULT_TILE}; 0: never tile)")
    p.add_argument("--tile-overlap", type=non_negative_int, default=DEFAULT_OVERLAP, metavar="PIXELS",
                   help=f"overlap of neighbouring tiles (default {DEFAULT_OVERLAP})")
    p.add_argument("--format", choices=("png", "jpg", "webp"), default=None,
                   help="output format for a folder (default: the input's when PNG/JPEG/WebP, else PNG)")
    p.add_argument("--quality", type=percent_int, default=95, help="JPEG/WebP quality 1..100 (default 95)")
    p.add_argument("--overwrite", "-y", action="store_true", help="replace existing output files")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress or information lines (warnings still shown)")

    g = p.add_argument_group("contact sheet")
    g.add_argument("--sheet", action="store_true", help="write a labelled contact sheet of the styles instead")
    g.add_argument("--sheet-columns", type=positive_int, default=4, help="tiles per row (default 4)")

    o = p.add_argument_group("optimisation (Gatys et al.; needs the [train] extra)",
                             "defaults: the trainer's objective on VGG16; --preset gatys2016: the authors' own on VGG19 "
                             "(options given beside a preset override it)")
    o.add_argument("--optimize", action="store_true", help="stylize by optimising the pixels (slow; any painting)")
    o.add_argument("--style-image", type=Path, metavar="PAINTING", help="the painting to take the style from")
    o.add_argument("--preset", choices=("gatys2016",), default=None,
                   help="gatys2016: VGG19, content relu4_2, style relu1_1..relu5_1 at 0.2 each, content weight 1, style "
                        "5e3, no TV, L-BFGS from the photo, 500 iterations")
    o.add_argument("--loss-net", choices=("vgg16", "vgg19"), default=None, help="loss network (default vgg16)")
    o.add_argument("--content-layers", type=layer_list, default=None, metavar="L[,L...]",
                   help="e.g. relu4_2 (convB_I or reluB_I of the loss network; default relu2_2)")
    o.add_argument("--style-layers", type=layer_weights, default=None, metavar="L[=W][,...]",
                   help="e.g. relu1_1=0.2,relu2_1=0.2 (a name alone weighs 1; default relu1_2,relu2_2,relu3_3,relu4_3)")
    o.add_argument("--optimizer", choices=("lbfgs", "adam"), default=None, help="default lbfgs")
    o.add_argument("--iterations", type=positive_int, default=None, help="default 300")
    o.add_argument("--lr", type=positive_float, default=None, help="step size (default: 1 for L-BFGS, 0.02 for Adam)")
    o.add_argument("--content-weight", type=non_negative_float, default=None, help="default 1e5 (the trainer's)")
    o.add_argument("--style-weight", type=non_negative_float, default=None, help="default 1e10 (the trainer's)")
    o.add_argument("--tv-weight", type=non_negative_float, default=None, help="total variation weight (default 10)")
    o.add_argument("--init", choices=("content", "noise"), default=None, help="start image (default content)")
    o.add_argument("--style-size", type=positive_int, default=None, metavar="PIXELS",
                   help="long side of the painting: sets the stroke scale (default: the image's long side)")
    o.add_argument("--save-every", type=positive_int, default=None, metavar="N",
                   help="also write the image every N iterations as <output>_iterNNNN<suffix>")
    o.add_argument("--seed", type=int, default=None, help="random seed for --init noise (default 0)")
    o.add_argument("--run-dir", type=Path, default=None, metavar="DIR",
                   help="also write each image's record there: <out>.json (the settings used, the loss network and "
                        "its weights, time, losses), <out>_losses.csv and <out>_losses.png")
    o.add_argument("--vgg-weights", default=None, metavar="FILE",
                   help="loss network weights (default: found as the trainer finds them; see README)")
    return p


def _check_usage(p: argparse.ArgumentParser, args: argparse.Namespace) -> list[str]:
    """Options that contradict each other are usage errors; returns the style specs."""
    if args.input is None or args.output is None:
        p.error("the input and output are required")
    # commas separate styles for a sheet, except inside a blend (``a:0.7,b:0.3`` is one style)
    styles = [s.strip() for spec in (args.style or []) for s in (spec.split(",") if ":" not in spec else [spec])
              if s.strip()]
    if args.optimize:
        if args.style_image is None:
            p.error("--optimize needs --style-image PAINTING")
        if styles:
            p.error("--optimize takes its style from --style-image, not --style")
        if args.sheet:
            p.error("--sheet and --optimize cannot be combined")
    else:
        for name in ("style_image", "save_every", "preset", "loss_net", "content_layers", "style_layers", "run_dir"):
            if getattr(args, name) is not None:
                p.error(f"--{name.replace('_', '-')} applies to --optimize only")
        if len(styles) > 1 and not args.sheet:
            p.error("several styles need --sheet")
    if (args.optimize or args.sheet) and (args.stroke is not None or args.full_size):
        p.error(f"--{'stroke' if args.stroke is not None else 'full-size'} applies to a style model, not "
                f"--{'optimize' if args.optimize else 'sheet'} (use --max-size)")
    if args.tile_size and args.tile_size < 2 * args.tile_overlap + 16:
        p.error(f"--tile-size must be 0 or at least 2 × --tile-overlap + 16 ({2 * args.tile_overlap + 16})")
    return styles


def _snapshot_path(output: Path, iteration: int) -> Path:
    return output.with_name(f"{output.stem}_iter{iteration:04d}{output.suffix}")


def restyle_image(argv: Sequence[str] | None = None) -> int:
    """Run ``restyle-image``; returns the exit code (RealtimeError is raised to the caller)."""
    from .cli import print_styles
    from .images import StillOptions, plan_jobs, run_jobs

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list_styles:
        return print_styles(args.style[0] if args.style else None)
    styles = _check_usage(parser, args)

    def warn(msg: str) -> None:
        print(f"{PROG}: warning: {msg}", file=sys.stderr, flush=True)

    def info(msg: str) -> None:
        if not args.quiet:
            print(f"{PROG}: {msg}", file=sys.stderr, flush=True)

    default_size = OPTIMIZE_SIZE if args.optimize else SHEET_SIZE if args.sheet else None
    opts = StillOptions(max_size=args.max_size or default_size, strength=args.strength, preserve_color=args.preserve_color,
                        tile_size=args.tile_size, tile_overlap=args.tile_overlap)
    also = None
    if args.optimize:
        also = _optimize_writes(args)
    style = None
    if not args.optimize and not args.sheet:
        from .models import resolve_style_for_device

        style = resolve_style_for_device(styles[0] if styles else None, args.tier, args.device)
    # every path is checked before a model or VGG is loaded (that takes seconds)
    jobs, folder_mode = plan_jobs(args.input, args.output, overwrite=args.overwrite, fmt=args.format, warn=warn,
                                  also_writes=also)
    if args.optimize:
        process = _optimize_process(args, opts, info)
    elif args.sheet:
        process = _sheet_process(args, opts, styles or _zoo_names(), info)
    else:
        assert style is not None
        process = _model_process(args, opts, style, info)

    summary = run_jobs(jobs, process, folder_mode=folder_mode, overwrite=args.overwrite, quality=args.quality,
                       warn=warn, info=info)
    if folder_mode:
        skipped = f", {len(summary.skipped)} skipped" if summary.skipped else ""
        info(f"{len(summary.written)} images written to {args.output}{skipped} in {summary.seconds:.1f}s")
    return 0


# ------------------------------------------------------------------------------------------------ methods


def _tile_bar(args: argparse.Namespace, label: str):  # noqa: ANN202 - (on_tile, close, abandon)
    """A progress bar over the tiles of one image, shown only when it has several."""
    from .images import CountProgress

    state: dict[str, CountProgress] = {}

    def on_tile(done: int, total: int) -> None:
        if total > 1 and "bar" not in state:
            state["bar"] = CountProgress(total, unit="tile", label=label, enabled=not args.quiet)
        if "bar" in state:
            state["bar"].update()

    def end(ok: bool) -> None:
        bar = state.get("bar")
        if bar is not None:
            bar.close() if ok else bar.abandon()

    return on_tile, end


def _model_process(args: argparse.Namespace, opts, style, info):  # noqa: ANN001, ANN202
    from .images import stylize_with_model
    from .stylizer import Stylizer

    # one image at a time, each waited for: one session with every core (lanes pay off only for streams)
    stylizer = Stylizer(style.path, device=args.device, threads=args.threads, lanes=1, style=style.mix or None)
    info(stylizer.describe())
    if not opts.max_size and not args.full_size:
        from .strokes import stroke_short_side

        opts.short_side = stroke_short_side(stylizer.info.metadata, args.stroke or 1.0)

    def process(image, job):  # noqa: ANN001, ANN202
        on_tile, end = _tile_bar(args, job.input.name)
        try:
            out = stylize_with_model(image, stylizer, opts, on_tile)
        except BaseException:
            end(False)
            raise
        end(True)
        return out

    return process


def _zoo_names() -> list[str]:
    from .models import list_styles

    names = [s.name for s in list_styles()]
    if not names:
        raise ModelError("no styles are installed; pass --style NAME|FILE.onnx (several, or comma-separated)")
    return names


class _StyleChoice:
    """One style of a stylizer shared by several sheet columns: it picks its style before each call."""

    def __init__(self, stylizer, vector) -> None:  # noqa: ANN001
        self._stylizer, self._vector = stylizer, vector

    def stylize(self, images):  # noqa: ANN001, ANN201
        self._stylizer.set_style(self._vector)
        return self._stylizer.stylize(images)

    def __getattr__(self, name: str):  # noqa: ANN204 - everything else is the stylizer's
        return getattr(self._stylizer, name)


def _sheet_process(args: argparse.Namespace, opts, specs: list[str], info):  # noqa: ANN001, ANN202
    from .images import style_sheet
    from .models import resolve_style_for_device
    from .stylizer import Stylizer

    stylizers = []
    sessions: dict[Path, Stylizer] = {}  # the styles of one multi-style model share its session
    for spec in specs:
        style = resolve_style_for_device(spec, args.tier, args.device)
        if style.path not in sessions:
            sessions[style.path] = Stylizer(style.path, device=args.device, threads=args.threads, lanes=1)
        stylizer = sessions[style.path]
        label = style.name + (" (fast)" if style.tier == "fast" else "")
        stylizers.append((label, _StyleChoice(stylizer, stylizer.set_style(style.mix) if style.mix else stylizer.style_vector)))
    info(f"contact sheet of {len(stylizers)} styles on {stylizers[0][1].device.upper()}")

    def process(image, job):  # noqa: ANN001, ANN202
        return style_sheet(image, stylizers, opts, columns=args.sheet_columns)

    return process


def _given_settings(args: argparse.Namespace) -> dict:
    """The --optimize options as OptimizeSettings values (None where not given: a preset or default fills in)."""
    return {"iterations": args.iterations, "loss_net": args.loss_net, "optimizer": args.optimizer, "lr": args.lr,
            "content_weight": args.content_weight, "style_weight": args.style_weight, "tv_weight": args.tv_weight,
            "content_layers": args.content_layers, "style_layer_weights": args.style_layers, "init": args.init,
            "style_size": args.style_size, "seed": args.seed}


def _optimize_writes(args: argparse.Namespace):  # noqa: ANN202 - output → further files it writes
    try:
        from .train.optimize import resolve_settings
        from .train.run_record import record_paths
    except ImportError:
        raise RealtimeError('--optimize needs PyTorch: pip install -e ".[train]"') from None

    every, total = args.save_every, resolve_settings(args.preset, _given_settings(args)).iterations
    return lambda out: ([_snapshot_path(out, i) for i in range(every, total + 1, every)] if every else []) + (
        record_paths(args.run_dir, out) if args.run_dir else [])


def _optimize_process(args: argparse.Namespace, opts, info):  # noqa: ANN001, ANN202
    try:
        import torch
    except ImportError:
        raise RealtimeError('--optimize needs PyTorch: pip install -e ".[train]"') from None
    from .image_io import read_image, write_image
    from .images import CountProgress, finish, processing_image
    from .train.optimize import optimize_image, pick_device, resolve_settings
    from .train.run_record import build_record, write_run_record
    from .train.vgg import load_vgg

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        painting = read_image(args.style_image)
    except InputError as exc:
        raise InputError(f"style image: {exc}") from None
    given = _given_settings(args)
    resolve_settings(args.preset, given).validate()  # bad layers or weights fail before VGG is loaded
    device = pick_device(args.device)
    loss_net = resolve_settings(args.preset, given).loss_net
    vgg = load_vgg(args.vgg_weights, arch=loss_net)
    settings = resolve_settings(args.preset, given, vgg.input_norm)  # a preset's weights suit the weights' input
    settings.validate()
    if args.run_dir is not None:
        try:
            args.run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create --run-dir {args.run_dir}: {exc.strerror or exc}") from None
    info(f"optimising on {device.type.upper()} with {settings.optimizer}, {settings.iterations} iterations at "
         f"{opts.max_size or 'full'} px on {loss_net.upper()}{f' ({args.preset})' if args.preset else ''}; "
         f"style {args.style_image.name}")

    def process(image, job):  # noqa: ANN001, ANN202
        content = processing_image(image, opts.max_size)
        last: dict[str, float] = {}
        bar = CountProgress(settings.iterations, unit="it", label=job.input.name, enabled=not args.quiet,
                            extra=lambda: f"loss {last.get('total', float('nan')):.4g} (style {last.get('style', 0):.3g}, "
                                          f"content {last.get('content', 0):.3g})")

        def on_iteration(i: int, losses, current) -> None:  # noqa: ANN001
            last.update(losses)
            bar.update()
            if args.save_every and i % args.save_every == 0:
                write_image(_snapshot_path(job.output, i), finish(image, content, current(), opts),
                            overwrite=args.overwrite, quality=args.quality)

        try:
            result = optimize_image(content, painting, settings, vgg=vgg, device=str(device), on_iteration=on_iteration)
        except BaseException:
            bar.abandon()
            raise
        bar.close()
        if result.restarts:
            info(f"{job.input.name}: L-BFGS overshot {result.restarts} time(s) and restarted from the best image")
        if args.run_dir is not None:
            record = build_record(settings, result, vgg, preset=args.preset, photo=job.input, painting=args.style_image,
                                  size=(content.shape[1], content.shape[0]))
            write_run_record(args.run_dir, job.output, record, result.history, args.overwrite)
        return finish(image, content, result.image, opts)

    return process


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point of ``restyle-image``."""
    from .cli import run_entry_point

    return run_entry_point(PROG, restyle_image, argv, "error: interrupted; nothing written")


if __name__ == "__main__":
    main()
