"""Restyle still images: one file or a folder, with a fast model (tiled when large), a contact sheet of
several styles, or any other per-image method (the optimisation of ``realtime.train.optimize``).

The steps around the method are the video pipeline's: scale to the processing size (``--max-size``), run
the method, then ``finish_frame`` (colour preservation, back to the input size, strength). Paths are all
checked before any work; in a folder, a file that is not a readable image is skipped with a warning,
while a single input that cannot be read is an error. Outputs are written atomically (``image_io``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np

from .errors import InputError, Interrupted, OutputError
from .image_io import list_folder, output_suffix, read_image, write_image, WRITE_SUFFIXES
from .pipeline import check_output_folder, finish_frame, processing_size, same_file
from .progress import Progress
from .tiles import stylize_tiled

InfoFn = Callable[[str], None]
# an image (H×W×3 uint8 RGB, upright) → the output image
ProcessFn = Callable[[np.ndarray], np.ndarray]

DEFAULT_TILE = 1024
DEFAULT_OVERLAP = 128


@dataclass
class StillOptions:
    """How each image is stylized (shared by every method)."""

    max_size: int | None = None  # long side to stylize at; the output keeps the input's size
    short_side: int | None = None  # else the short side to stylize at (the style's stroke scale, strokes.py)
    strength: float = 1.0
    preserve_color: bool = False
    tile_size: int = DEFAULT_TILE  # network input at most tile_size² pixels at a time; 0: never tile
    tile_overlap: int = DEFAULT_OVERLAP


@dataclass(frozen=True)
class Job:
    input: Path
    output: Path


@dataclass
class StillSummary:
    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0


# ------------------------------------------------------------------------------------------------ paths


def _default_suffix(path: Path, fmt: str | None) -> str:
    if fmt:
        return fmt
    suffix = path.suffix.lower()
    return suffix if suffix in WRITE_SUFFIXES else ".png"  # e.g. .bmp/.tif in → PNG out (lossless too)


def normalise_format(fmt: str | None) -> str | None:
    """``png``/``.JPG``/... → ``.png``/``.jpg``; None stays None."""
    if not fmt:
        return None
    suffix = "." + fmt.lower().lstrip(".")
    if suffix not in WRITE_SUFFIXES:
        raise OutputError(f"cannot write {fmt} images; use png, jpg or webp")
    return suffix


def plan_jobs(inp: Path, out: Path, *, overwrite: bool, fmt: str | None = None, warn: InfoFn | None = None,
              also_writes: Callable[[Path], Sequence[Path]] | None = None) -> tuple[list[Job], bool]:
    """Check the paths and pair each input with its output, before any work.

    ``inp`` is an image (``out`` a file, or an existing folder to write into) or a folder (``out`` a
    folder, created when missing). Returns the jobs and whether ``inp`` is a folder. Refuses an output
    that is an input, an output folder that is the input folder, outputs that exist (without
    ``overwrite``) and two inputs that would write the same output. ``also_writes(output)`` names further
    files a job writes (intermediate results), checked the same way. Files in a folder that are not images
    by their suffix are skipped with a warning here; unreadable images are skipped when read.
    """
    fmt = normalise_format(fmt)
    if not inp.exists():
        raise InputError(f"input {inp} does not exist")
    folder_mode = inp.is_dir()
    if folder_mode:
        if out.exists() and not out.is_dir():
            raise OutputError(f"output {out} is a file; when the input is a folder the output must be a folder")
        if out.exists() and same_file(inp, out):
            raise OutputError(f"output folder {out} is the input folder; choose another")
        images, others = list_folder(inp)
        for p in others:
            if warn is not None:
                warn(f"skipping {p.name}: not an image file (by its suffix)")
        if not images:
            raise InputError(f"no image files in {inp}")
        check_output_folder(out if out.exists() else out.parent)
        jobs = [Job(p, out / (p.stem + _default_suffix(p, fmt))) for p in images]
        seen: dict[Path, Path] = {}
        for j in jobs:
            if j.output in seen:
                raise OutputError(f"{seen[j.output].name} and {j.input.name} would both be written to {j.output}; "
                                  "rename one or use --format")
            seen[j.output] = j.input
    else:
        if out.is_dir():
            out = out / (inp.stem + _default_suffix(inp, fmt))
        else:
            suffix = output_suffix(out)
            if fmt and suffix != fmt and not (suffix == ".jpeg" and fmt == ".jpg"):
                raise OutputError(f"--format {fmt[1:]} contradicts the output name {out.name}")
        if same_file(inp, out):
            raise OutputError(f"output {out} is the input file; choose another name")
        check_output_folder(out.parent)
        jobs = [Job(inp, out)]
    if not overwrite:
        taken = [p for j in jobs for p in (j.output, *(also_writes(j.output) if also_writes else ())) if p.exists() or p.is_symlink()]
        if taken:
            more = f" (and {len(taken) - 1} more)" if len(taken) > 1 else ""
            raise OutputError(f"output {taken[0]} exists{more}; use --overwrite to replace")
    return jobs, folder_mode


# ------------------------------------------------------------------------------------------------ methods


def processing_image(image: np.ndarray, max_size: int | None, short_side: int | None = None) -> np.ndarray:
    """The image at the size the method runs at (long side at most ``max_size``, else short side at
    most ``short_side``; never enlarged)."""
    h, w = image.shape[:2]
    pw, ph = processing_size(w, h, max_size, short_side)
    if (pw, ph) == (w, h):
        return image
    return cv2.resize(image, (pw, ph), interpolation=cv2.INTER_AREA)  # area: no aliasing to turn into texture


def finish(image: np.ndarray, content: np.ndarray, styled: np.ndarray, opts: StillOptions) -> np.ndarray:
    """Colour preservation, back to the input's size, strength: what restyle-video does to every frame."""
    return finish_frame(image, content, styled, preserve_color=opts.preserve_color, smoother=None, strength=opts.strength)


def stylize_with_model(image: np.ndarray, stylizer, opts: StillOptions,  # noqa: ANN001 - realtime.stylizer.Stylizer
                       on_tile: Callable[[int, int], None] | None = None) -> np.ndarray:
    """One image through a fast style model: scaled to the processing size, in tiles when larger than
    ``opts.tile_size``, finished (colour, size, strength)."""
    content = processing_image(image, opts.max_size, opts.short_side)

    def one(tile: np.ndarray) -> np.ndarray:
        return stylizer.stylize([tile])[0]

    if opts.tile_size:
        styled = stylize_tiled(content, one, opts.tile_size, opts.tile_overlap, stylizer.info.size_multiple, on_tile)
    else:
        styled = one(content)
    return finish(image, content, styled, opts)


def style_sheet(image: np.ndarray, stylizers: Sequence[tuple[str, object]], opts: StillOptions, *,
                columns: int = 4, tile_height: int = 256) -> np.ndarray:
    """A labelled contact sheet: the image, then the image in each style, ``columns`` to a row."""
    from .sheet import contact_sheet

    # a sheet shows small tiles: stylize at the processing size and keep that size (no scaling back)
    small = processing_image(image, opts.max_size)
    cells: list[tuple[str, np.ndarray]] = [("original", small)]
    for label, stylizer in stylizers:
        cells.append((label, stylize_with_model(small, stylizer, opts)))
    rows = [cells[i:i + columns] for i in range(0, len(cells), columns)]
    return contact_sheet(rows, tile_height=min(tile_height, small.shape[0]))


# ------------------------------------------------------------------------------------------------ the run


class CountProgress(Progress):
    """The progress bar counting something other than frames (tiles, images, iterations)."""

    def __init__(self, total: int | None, *, unit: str, label: str = "", enabled: bool = True,
                 extra: Callable[[], str] | None = None) -> None:
        super().__init__(total, label=label, enabled=enabled)
        self.unit = unit
        self.extra = extra

    def line(self) -> str:
        elapsed = time.perf_counter() - self.start
        head = f"{self.label} " if self.label else ""
        tail = f" {self.extra()}" if self.extra is not None else ""
        per = f"{elapsed / self.done:.2f} s/{self.unit}" if self.done else f"-- s/{self.unit}"
        if self.total:
            frac = min(1.0, self.done / self.total)
            fill = int(round(frac * self.width))
            bar = "#" * fill + "-" * (self.width - fill)
            left = (self.total - self.done) * elapsed / self.done if self.done else None
            eta = "done" if self.done >= self.total else (f"ETA {int(left // 60):02d}:{int(left % 60):02d}" if left is not None else "ETA --:--")
            return f"{head}[{bar}] {self.done}/{self.total} {self.unit}s {per} {eta}{tail}"
        return f"{head}{self.done} {self.unit}s {per}{tail}"


def run_jobs(jobs: Sequence[Job], process: Callable[[np.ndarray, Job], np.ndarray], *, folder_mode: bool,
             overwrite: bool, quality: int = 95, warn: InfoFn | None = None, info: InfoFn | None = None) -> StillSummary:
    """Read, process and write each job. In a folder, unreadable images are skipped with a warning (an
    error when none could be read); a single unreadable input is an error. Ctrl+C stops after removing
    the output being written; the ones already written are complete."""
    summary = StillSummary()
    t0 = time.perf_counter()
    try:
        for n, job in enumerate(jobs, 1):
            try:
                image = read_image(job.input)
            except InputError as exc:
                if not folder_mode:
                    raise
                summary.skipped.append(str(job.input))
                if warn is not None:
                    warn(f"skipping {job.input.name}: {exc}")
                continue
            t = time.perf_counter()
            result = process(image, job)
            if folder_mode and not job.output.parent.exists():
                job.output.parent.mkdir()  # only now: a run that writes nothing leaves no empty folder
            write_image(job.output, result, overwrite=overwrite, quality=quality)
            summary.written.append(str(job.output))
            if info is not None:
                count = f"[{n}/{len(jobs)}] " if folder_mode else ""
                info(f"{count}wrote {job.output} ({image.shape[1]}x{image.shape[0]}, {time.perf_counter() - t:.1f}s)")
    except KeyboardInterrupt as exc:
        raise Interrupted(f"interrupted; {len(summary.written)} of {len(jobs)} images written, none half-written") from exc
    summary.seconds = time.perf_counter() - t0
    if folder_mode and not summary.written:
        raise InputError(f"none of the {len(jobs)} image files could be read")
    return summary
