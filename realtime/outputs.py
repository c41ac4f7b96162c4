"""Output files that appear whole or not at all: work goes to a temporary file beside the final name,
which takes that name in one step when the work is done (video files and images alike)."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from .errors import OutputError


def partial_file(final: Path) -> tuple[int, Path]:
    """A new temporary file in ``final``'s folder (hidden, ``.partial`` in its name), opened: (fd, path).

    It gets the permissions any new file would get (0666 less the umask), as users expect of an output.
    Made here with a random name and O_EXCL rather than by tempfile.mkstemp: when Ctrl+C or a stop
    signal (realtime.signals) arrives just as the file is created, its name is known here and the file
    is removed (inside mkstemp it was left behind)."""
    folder = final.parent
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        path = folder / f".{final.stem}.{secrets.token_hex(4)}.partial{final.suffix}"
        try:
            return os.open(path, flags, 0o666), path
        except FileExistsError:
            continue
        except OSError as exc:
            raise OutputError(f"cannot write in {folder}: {exc.strerror or exc}") from exc
        except BaseException:
            # interrupted as open() returned: if the file exists, it is ours (a random name, O_EXCL)
            with contextlib.suppress(OSError):
                os.unlink(path)
            raise
    raise OutputError(f"cannot write in {folder}: no free temporary name")


def discard(tmp: Path | None) -> None:
    """Remove a temporary output (one already gone is fine): a run that did not finish publishes nothing."""
    if tmp is not None:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass


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

