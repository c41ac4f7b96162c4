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
LANES_HELP = ("CPU only: frames the network works on side by side, each on its share of the cores "
              "(default 2 where there are 2 cores, at most one per core; 1 turns it off)")


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


def positive_int(text: str) -> int:
    return _number(text, int, lambda v: v >= 1, "must be at least 1")


def non_negative_int(text: str) -> int:
    return _number(text, int, lambda v: v >= 0, "must be 0 or more")


def percent_int(text: str) -> int:
    """An integer from 1 to 100 (encoder quality)."""
    return _number(text, int, lambda v: 1 <= v <= 100, "is not between 1 and 100")
