"""The model zoo: style models shipped in ``trained/`` (package ``realtime.trained``) plus an optional
extra folder named by the environment variable ``REALTIME_MODELS_DIR``.

A style is ``<name>.onnx`` (with its training record ``<name>.json`` beside it). The default style is
the one named by ``zoo.json`` ``{"default": "<name>"}``; a ``zoo.json`` in ``REALTIME_MODELS_DIR``
takes precedence over the shipped one, so tests and users can pick their own default.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelError

ENV_DIR = "REALTIME_MODELS_DIR"
ZOO_FILE = "zoo.json"


@dataclass(frozen=True)
class Style:
    """One installed style model."""

    name: str
    path: Path
    origin: str  # "shipped", "extra" (REALTIME_MODELS_DIR) or "file" (a path given by the user)

    @property
    def record(self) -> Path:
        """The training record beside the model (may not exist)."""
        return self.path.with_suffix(".json")


def shipped_dir() -> Path | None:
    """The folder of shipped models: the installed ``realtime.trained`` package, or ``trained/`` of a
    source checkout that was not installed (``realtime.trained`` only exists through the package-dir
    mapping of an install)."""
    try:
        from importlib.resources import files

        root = files("realtime.trained")
        path = Path(str(root))
        if path.is_dir():
            return path
    except (ModuleNotFoundError, TypeError):
        pass
    fallback = Path(__file__).resolve().parent.parent / "trained"
    return fallback if fallback.is_dir() else None


def extra_dir() -> Path | None:
    """The folder named by REALTIME_MODELS_DIR, when set (a missing folder is an error: it is a typo)."""
    value = os.environ.get(ENV_DIR, "").strip()
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_dir():
        raise ModelError(f"{ENV_DIR}={value} is not a folder")
    return path


def _scan(folder: Path | None, origin: str) -> dict[str, Style]:
    if folder is None:
        return {}
    return {p.stem: Style(p.stem, p, origin) for p in sorted(folder.glob("*.onnx")) if p.is_file()}


def list_styles() -> list[Style]:
    """Every installed style, by name; an extra-folder model shadows a shipped one of the same name."""
    styles = _scan(shipped_dir(), "shipped")
    styles.update(_scan(extra_dir(), "extra"))
    return [styles[k] for k in sorted(styles)]


def _zoo_default(folder: Path | None) -> str | None:
    if folder is None:
        return None
    zoo = folder / ZOO_FILE
    if not zoo.is_file():
        return None
    try:
        value = json.loads(zoo.read_text(encoding="utf-8")).get("default")
    except (json.JSONDecodeError, AttributeError, OSError) as exc:
        raise ModelError(f"{zoo} is not valid JSON of the form {{\"default\": \"<style>\"}}: {exc}") from exc
    return str(value) if value else None


def default_style() -> Style:
    """The zoo's default style, or an error that says none is installed."""
    styles = {s.name: s for s in list_styles()}
    name = _zoo_default(extra_dir()) or _zoo_default(shipped_dir())
    if name is None:
        if not styles:
            raise ModelError(
                f"no styles are installed (trained/ has no models and {ENV_DIR} is not set); "
                "pass --style FILE.onnx or train one with restyle-train"
            )
        raise ModelError(
            f"no default style is set (no {ZOO_FILE}); pass --style NAME, one of: {', '.join(styles)}"
        )
    if name not in styles:
        raise ModelError(f"the default style {name!r} named in {ZOO_FILE} is not installed")
    return styles[name]


def resolve_style(spec: str | os.PathLike[str] | None) -> Style:
    """A style by name (``candy``), by path (``my/model.onnx``), or the default when ``spec`` is None."""
    if spec is None or str(spec) == "":
        return default_style()
    text = str(spec)
    looks_like_path = text.endswith(".onnx") or os.sep in text or (os.altsep and os.altsep in text)
    if looks_like_path or (Path(text).is_file() and not text.isidentifier()):
        path = Path(text).expanduser()
        if not path.exists():
            raise ModelError(f"model file {text} does not exist")
        if not path.is_file():
            raise ModelError(f"model path {text} is not a file")
        return Style(path.stem, path, "file")
    styles = {s.name: s for s in list_styles()}
    if text in styles:
        return styles[text]
    known = ", ".join(styles) if styles else "none installed"
    raise ModelError(f"unknown style {text!r} (available: {known})")
