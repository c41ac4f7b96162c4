"""Loss curves as a picture: one panel per loss, each with its own labelled axes (matplotlib).

Losses of a style run span several decades (TV sits four below content and style), so they share
nothing but the x axis: each panel gets its own y range, log scale when the loss stays positive.
matplotlib is in the [train] extra; it is imported here only, and without a display (Agg).
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

LOSS_ORDER = ("total", "content", "style", "tv", "temporal", "distill", "lattice")
_COLOURS = {"total": "#000000", "content": "#1f77b4", "style": "#d62728", "tv": "#2ca02c", "temporal": "#9467bd",
            "distill": "#ff7f0e", "lattice": "#8c564b"}


def plotted_losses(history: Sequence[Mapping[str, float]], x_key: str = "iteration") -> list[str]:
    """The losses worth a panel: the known ones first, then any other, each nonzero somewhere."""
    keys = [k for k in history[0] if k not in (x_key, "seconds")] if history else []
    ordered = [k for k in LOSS_ORDER if k in keys] + [k for k in keys if k not in LOSS_ORDER]
    return [k for k in ordered if any(abs(float(r.get(k, 0.0))) > 0 for r in history)]


def plot_curves(history: Sequence[Mapping[str, float]], x_key: str = "iteration", title: str = "",
                x_label: str = "iteration", width_px: int = 1000) -> np.ndarray:
    """An H×W×3 uint8 RGB image of the loss curves in ``history`` (rows of {x_key: x, loss: value})."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure  # a Figure of its own: no pyplot state, no display needed

    keys = plotted_losses(history, x_key) or ["total"]
    x = np.array([float(r.get(x_key, i + 1)) for i, r in enumerate(history)])
    cols = 2 if len(keys) > 1 else 1
    rows = math.ceil(len(keys) / cols)
    dpi = 100
    panel_height = 0.3 * width_px / dpi  # inches: panels about 5:3 side by side, 10:3 alone
    fig = Figure(figsize=(width_px / dpi, panel_height * rows + (0.4 if title else 0.0)), dpi=dpi)
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True)
    for ax, key in zip(axes.flat, keys):
        y = np.array([float(r.get(key, np.nan)) for r in history])
        ax.plot(x, y, color=_COLOURS.get(key, "#444444"), linewidth=1.4)
        finite = y[np.isfinite(y)]
        if finite.size and (finite > 0).all() and finite.max() / finite.min() > 10:
            ax.set_yscale("log")
        ax.set_title(key, fontsize=10)
        ax.set_ylabel(f"{key} loss (weighted)", fontsize=9)
        ax.grid(True, which="major", alpha=0.3)
        ax.tick_params(labelsize=8)
    for i, ax in enumerate(axes.flat):
        if i >= len(keys):
            ax.set_visible(False)
        elif i + cols >= len(keys):  # nothing drawn below it: this panel carries the x axis of its column
            ax.set_xlabel(x_label, fontsize=9)
            ax.tick_params(labelbottom=True)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
