"""Output files that appear whole or not at all: work goes to a temporary file beside the final name,
which takes that name in one step when the work is done (video files and images alike)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import OutputError


def partial_file(final: Path) -> tuple[int, Path]:
    """A new temporary file in ``final``'s folder (hidden, ``.partial`` in its name), opened: (fd, path).

    mkstemp makes the file private (0600); it gets the permissions any new file would get (0666 less
    the umask), as users expect of an output."""
    folder = final.parent
    try:
        fd, name = tempfile.mkstemp(prefix=f".{final.stem}.", suffix=f".partial{final.suffix}", dir=folder)
    except OSError as exc:
        raise OutputError(f"cannot write in {folder}: {exc.strerror or exc}") from exc
    try:
        os.chmod(name, 0o666 & ~current_umask())
    except OSError as exc:
        os.close(fd)
        os.unlink(name)
        raise OutputError(f"cannot write in {folder}: {exc.strerror or exc}") from exc
    return fd, Path(name)


def publish(tmp: Path, final: Path, overwrite: bool) -> None:
    """Give the finished temporary file its final name in one step. Without ``overwrite``, link() fails if
    the name was taken meanwhile, so a file that appeared during the run is never clobbered."""
    if overwrite:
        os.replace(tmp, final)
        return
    try:
        os.link(tmp, final)
    except FileExistsError as exc:
        raise OutputError(f"{final} appeared while working; not overwriting it (use --overwrite)") from exc
    except OSError:
        # file systems without hard links: the exists-check and rename leave a tiny race
        if final.exists():
            raise OutputError(f"output {final} exists; use --overwrite to replace it") from None
        os.replace(tmp, final)
    finally:
        if tmp.exists() and final.exists():
            tmp.unlink()


def current_umask() -> int:
    """The process umask (os.umask can only be read by setting it; set it straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
