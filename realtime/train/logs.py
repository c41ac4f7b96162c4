"""Where a training run reports, besides its CSV and PNG: TensorBoard and a progress bar, each optional.

- TensorBoard event files in ``<run>/tensorboard/`` (a scalar per loss and the speed, each preview
  sheet as an image) when the ``tensorboard`` package is installed (the ``[logs]`` extra); a resumed
  run continues the same curves (events after the resume point are purged).
- A ``tqdm`` bar with the latest losses when ``tqdm`` is installed and stderr is a terminal; otherwise
  the trainer's own progress line every ``log_every`` iterations, so log files stay as they were.

Both are looked up when a run starts; without them the run is the same, minus the extra files.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable, Mapping, TextIO

TENSORBOARD_DIR = "tensorboard"


def _summary_writer(log_dir: Path, purge_step: int | None) -> Any | None:
    try:
        from torch.utils.tensorboard import SummaryWriter  # raises ImportError without the tensorboard package
    except ImportError:
        return None
    return SummaryWriter(log_dir=str(log_dir), purge_step=purge_step)


def _progress_bar(total: int, start: int, label: str, stream: TextIO) -> Any | None:
    try:
        if not stream.isatty():
            return None
        from tqdm import tqdm
    except (ImportError, AttributeError, ValueError):
        return None
    return tqdm(total=total, initial=start, desc=label, unit="it", file=stream, dynamic_ncols=True, leave=True)


class TrainingLog:
    """``step()`` after every iteration, ``report()`` every ``log_every``, ``preview()`` after each
    preview sheet, ``close()`` at the end (also on errors)."""

    def __init__(self, run_dir: Path, label: str, total: int, start: int, line: Callable[[str], None], *,
                 enabled: bool = True, bar: bool = True, stream: TextIO | None = None) -> None:
        self.line = line
        self.enabled = enabled
        self.writer = _summary_writer(run_dir / TENSORBOARD_DIR, start or None) if enabled else None
        self.bar = _progress_bar(total, start, label, stream or sys.stderr) if enabled and bar else None

    def step(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def report(self, iteration: int, losses: Mapping[str, float], text: str, its_per_second: float | None = None) -> None:
        """Every loss as a scalar; the progress ``text`` as the bar's suffix, or printed as a line."""
        if not self.enabled:
            return
        if self.writer is not None:
            for key, value in losses.items():
                self.writer.add_scalar(f"loss/{key}", float(value), iteration)
            if its_per_second is not None:
                self.writer.add_scalar("speed/iterations_per_second", its_per_second, iteration)
        if self.bar is not None:
            self.bar.set_postfix_str(" ".join(f"{k} {v:.4g}" for k, v in losses.items() if v), refresh=False)
        else:
            self.line(text)

    def preview(self, iteration: int, path: Path | None) -> None:
        """The preview sheet the trainer wrote to ``path`` as a TensorBoard image."""
        if self.writer is None or path is None:
            return
        import cv2

        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is not None:
            self.writer.add_image("preview", image[:, :, ::-1].copy(), iteration, dataformats="HWC")

    def message(self, text: str) -> None:
        """A line that must not be lost under the bar."""
        if self.bar is not None:
            self.bar.write(text)
        else:
            self.line(text)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self.writer is not None:
            self.writer.close()
            self.writer = None
