"""argparse value types shared by the command-line front ends (each error is one line)."""

from __future__ import annotations

import argparse
import math
import sys
from typing import Callable, NoReturn, TypeVar

N = TypeVar("N", int, float)

# --smooth choices of restyle-video and restyle-cam, and realtime.temporal.MODES: defined here so that
# parsing "--smooth off" does not import the temporal module.
SMOOTH_MODES = ("off", "blend", "flow", "flow-hq")

# --lanes of restyle-video and restyle-cam (realtime.stylizer.Stylizer.submit says why)
LANES_HELP = ("CPU: frames the network works on side by side, each on its share of the cores "
              "(default 2 where there are 2 cores, at most one per core; 1 turns it off); "
              "CUDA: batches in flight (default 2; 1 waits for each)")


# --device and --precision of restyle-video and restyle-cam (realtime.providers; parsed without onnxruntime)
DEVICE_HELP = ("auto: CUDA when it really runs, else the CPU (default); cpu; cuda or cuda:N (GPU N; fails if it "
               "cannot run); tensorrt or tensorrt:N (TensorRT, then CUDA; one line says when TensorRT does not load)")
PRECISION_HELP = ("fp32 (default) or fp16: the model converted to float16 at load, for GPUs (faster, within a "
                  "level or two of fp32); refused with --device cpu, where it is slower")


def device_arg(text: str) -> str:
    """A --device value (realtime.providers.parse_device), normalised (``CUDA:0`` -> ``cuda``)."""
    from .providers import parse_device

    try:
        return str(parse_device(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class OneLineParser(argparse.ArgumentParser):
    """argparse prints the whole usage before a usage error; one line naming --help is enough."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message} (see --help)", file=sys.stderr)
        raise SystemExit(2)


def _number(text: str, cast: Callable[[str], N], accept: Callable[[N], bool], rule: str) -> N:
    """``text`` parsed by ``cast`` and checked by ``accept``; otherwise a one-line argparse error
    ("<text> <rule>")."""
    try:
        value = cast(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not {'an integer' if cast is int else 'a number'}: {text!r}") from None
    if not -math.inf < value < math.inf:  # float() takes "nan" and "inf"
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    if not accept(value):
        raise argparse.ArgumentTypeError(f"{text} {rule}")
    return value


def unit_float(text: str) -> float:
    """A number in [0, 1] (strengths)."""
    return _number(text, float, lambda v: 0.0 <= v <= 1.0, "is not between 0 and 1")


def positive_float(text: str) -> float:
    return _number(text, float, lambda v: v > 0, "must be positive")


def non_negative_float(text: str) -> float:
    return _number(text, float, lambda v: v >= 0, "must not be negative")


def stroke_factor(text: str) -> float:
    """--stroke: a stroke size relative to the trained one (realtime.strokes), 0.1 to 10."""
    return _number(text, float, lambda v: 0.1 <= v <= 10, "is not between 0.1 and 10")


def add_stroke_arguments(p: argparse.ArgumentParser, stroke_default: float | None = 1.0,
                         max_size_default: str = "", model_only: bool = False) -> None:
    """--stroke, --full-size and --max-size: the size frames are stylized at (realtime.strokes).

    ``stroke_default=None`` lets a command tell a --stroke given from none (restyle-image refuses it with
    --optimize); ``max_size_default`` names --max-size's own default where it has one; ``model_only``
    says in the help that --stroke and --full-size concern a style model (a command with other methods)."""
    model = "with a style model: " if model_only else ""
    g = p.add_mutually_exclusive_group()
    g.add_argument("--stroke", type=stroke_factor, default=stroke_default, metavar="SCALE",
                   help=f"{model}stroke size against the one the style was trained for: the input is stylized at the "
                        "size that gives it and scaled back up with sharp edges (default 1; 2 coarser and faster, 0.5 finer)")
    g.add_argument("--full-size", action="store_true",
                   help=f"{model}stylize every pixel at the input size (finest strokes, slowest)")
    default = f" (default: the size --stroke gives; {max_size_default})" if max_size_default else ""
    g.add_argument("--max-size", type=positive_int, default=None, metavar="PIXELS",
                   help=f"stylize at this long side and scale back to the input size{default}")


def positive_int(text: str) -> int:
    return _number(text, int, lambda v: v >= 1, "must be at least 1")


def non_negative_int(text: str) -> int:
    return _number(text, int, lambda v: v >= 0, "must be 0 or more")


def percent_int(text: str) -> int:
    """An integer from 1 to 100 (encoder quality)."""
    return _number(text, int, lambda v: 1 <= v <= 100, "is not between 1 and 100")


def layer_list(text: str) -> tuple[str, ...]:
    """Comma-separated network layer names (``relu4_2,relu5_2``); checked against the network later."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise argparse.ArgumentTypeError("no layer names given")
    return names


def layer_weights(text: str) -> dict[str, float]:
    """``name[=weight],...`` (``relu1_1=0.2,relu2_1``); a name alone weighs 1."""
    out: dict[str, float] = {}
    for name in layer_list(text):
        layer, _, weight = name.partition("=")
        out[layer.strip()] = _number(weight, float, lambda v: v >= 0, "must not be negative") if weight else 1.0
    return out
