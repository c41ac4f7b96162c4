"""Key handling of the live window as pure data: key code → ``Command``, and ``ViewState.apply``.

Nothing here touches OpenCV, so every key's effect is testable without a display. The live loop
(``realtime.live``) performs the side effects (screenshot, recording, loading a style, fullscreen).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum


class Action(Enum):
    QUIT = "quit"
    NEXT_STYLE = "next style"
    MORPH_NEXT = "morph to the next style"  # over about a second, where both are styles of one model
    PREV_STYLE = "previous style"
    SELECT_STYLE = "select style"  # arg: 0-based position in the style list
    TOGGLE_SMOOTH = "smoothing on/off"
    STRENGTH_UP = "strength +"
    STRENGTH_DOWN = "strength -"
    TOGGLE_COLOUR = "preserve colour"
    SCREENSHOT = "screenshot"
    TOGGLE_RECORD = "record"
    TOGGLE_FULLSCREEN = "fullscreen"
    TOGGLE_OVERLAY = "overlay"


@dataclass(frozen=True)
class Command:
    action: Action
    arg: int = 0


_KEYS: dict[int, Action] = {
    ord("q"): Action.QUIT,
    ord("Q"): Action.QUIT,
    27: Action.QUIT,  # Esc
    ord("n"): Action.NEXT_STYLE,
    ord("p"): Action.PREV_STYLE,
    ord("m"): Action.MORPH_NEXT,
    ord("s"): Action.TOGGLE_SMOOTH,
    ord("+"): Action.STRENGTH_UP,
    ord("="): Action.STRENGTH_UP,  # the unshifted "+" key on US layouts
    ord("-"): Action.STRENGTH_DOWN,
    ord("_"): Action.STRENGTH_DOWN,
    ord("c"): Action.TOGGLE_COLOUR,
    ord(" "): Action.SCREENSHOT,
    ord("r"): Action.TOGGLE_RECORD,
    ord("f"): Action.TOGGLE_FULLSCREEN,
    ord("h"): Action.TOGGLE_OVERLAY,
}

HELP = "keys: n/p style, m morph to next, 1-9 pick, s smooth, +/- strength, c colour, space screenshot, r record, f fullscreen, h overlay, q quit"

STRENGTH_STEP = 0.1


def command_for_key(key: int) -> Command | None:
    """The command of a key code as ``cv2.waitKey`` returns it (-1: no key); None for unbound keys."""
    if key is None or key < 0:
        return None
    # waitKey may carry modifier bits above the low byte on some backends
    code = key & 0xFF if key > 0xFF and (key & 0xFF) in _KEYS else key
    if ord("1") <= code <= ord("9"):
        return Command(Action.SELECT_STYLE, code - ord("1"))
    action = _KEYS.get(code)
    return Command(action) if action is not None else None


@dataclass(frozen=True)
class ViewState:
    """What the user has chosen; the live loop makes the picture follow it."""

    style_index: int = 0  # the style asked for (it may still be loading)
    n_styles: int = 1
    smooth: bool = False
    strength: float = 1.0  # blend of the stylized frame over the original
    preserve_colour: bool = False
    overlay: bool = True
    fullscreen: bool = False

    def apply(self, cmd: Command) -> "ViewState":
        """The state after ``cmd``; commands with only side effects leave it unchanged."""
        a = cmd.action
        n = max(1, self.n_styles)
        if a in (Action.NEXT_STYLE, Action.MORPH_NEXT):
            return replace(self, style_index=(self.style_index + 1) % n)
        if a is Action.PREV_STYLE:
            return replace(self, style_index=(self.style_index - 1) % n)
        if a is Action.SELECT_STYLE:
            return replace(self, style_index=cmd.arg) if 0 <= cmd.arg < n else self
        if a is Action.TOGGLE_SMOOTH:
            return replace(self, smooth=not self.smooth)
        if a is Action.STRENGTH_UP:
            return replace(self, strength=round(min(1.0, self.strength + STRENGTH_STEP), 2))
        if a is Action.STRENGTH_DOWN:
            return replace(self, strength=round(max(0.0, self.strength - STRENGTH_STEP), 2))
        if a is Action.TOGGLE_COLOUR:
            return replace(self, preserve_colour=not self.preserve_colour)
        if a is Action.TOGGLE_OVERLAY:
            return replace(self, overlay=not self.overlay)
        if a is Action.TOGGLE_FULLSCREEN:
            return replace(self, fullscreen=not self.fullscreen)
        return self
