"""The model zoo: style models shipped in ``trained/`` (package ``realtime.trained``) plus an optional
extra folder named by the environment variable ``REALTIME_MODELS_DIR``.

A style is ``<name>.onnx`` (with its training record ``<name>.json`` beside it), in one or both tiers:
``full`` (the folder itself; Johnson et al.'s network, for a GPU) and ``fast`` (its ``fast/`` subfolder;
the real-time CPU network). ``--tier auto`` picks fast when the model will run on the CPU. The default style is
the one named by ``zoo.json`` ``{"default": "<name>"}``; a ``zoo.json`` in ``REALTIME_MODELS_DIR``
takes precedence over the shipped one, so tests and users can pick their own default.

A model file may hold several styles (modelmeta: conditional instance norm). Its training record lists
them (``"styles": [{"name": ...}, ...]``), so the zoo knows each style by name without opening the
model; each becomes a ``Style`` whose ``mix`` selects it inside the file. A blend ``a:0.7,b:0.3`` of
styles of one file is a style too; a file given by path picks its styles after ``@``
(``mine.onnx@a:0.5,b:0.5``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelError

ENV_DIR = "REALTIME_MODELS_DIR"
ZOO_FILE = "zoo.json"
TIERS: tuple[str, ...] = ("full", "fast")
TIER_CHOICES: tuple[str, ...] = ("auto", *TIERS)
TIER_FOLDERS = {"full": ".", "fast": "fast"}


@dataclass(frozen=True)
class Style:
    """One installed style model."""

    name: str
    path: Path
    origin: str  # "shipped", "extra" (REALTIME_MODELS_DIR) or "file" (a path given by the user)
    tier: str = "full"  # for a file: "full" unless it sits in a folder named fast/
    # inside a model of several styles: the style (name) or blend (``a:0.7,b:0.3``) to run; "" for the file's
    # first style (the only one of a single-style file). The stylizer takes it as its ``style``.
    mix: str = ""

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


def read_record(model: Path) -> dict:
    """The training record beside a model file (``MODEL.json``), ``{}`` where there is none readable."""
    try:
        record = json.loads(model.with_suffix(".json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def styles_in_record(model: Path) -> list[str]:
    """The style names a model's training record lists (``[]`` for a single-style record or none)."""
    try:
        names = [str(e["name"]) for e in read_record(model).get("styles") or []]
    except (KeyError, TypeError):
        return []
    return names if len(names) > 1 else []


def _scan(folder: Path | None, origin: str) -> dict[tuple[str, str], Style]:
    if folder is None:
        return {}
    found: dict[tuple[str, str], Style] = {}
    for tier, sub in TIER_FOLDERS.items():
        files = [p for p in sorted((folder / sub).glob("*.onnx")) if p.is_file()]
        for p in files:  # styles inside multi-style models first: a file of the same name shadows them
            for name in styles_in_record(p):
                found.setdefault((name, tier), Style(name, p, origin, tier, mix=name))
        for p in files:
            if not styles_in_record(p):
                found[(p.stem, tier)] = Style(p.stem, p, origin, tier)
    return found


def _installed() -> dict[tuple[str, str], Style]:
    """(name, tier) → Style; an extra-folder model shadows a shipped one of the same name and tier."""
    styles = _scan(shipped_dir(), "shipped")
    styles.update(_scan(extra_dir(), "extra"))
    return styles


def list_styles(tier: str = "full") -> list[Style]:
    """Every installed style, one per name, sorted: in ``tier`` where the style has it, else its other tier."""
    if tier not in TIERS:
        raise ModelError(f"unknown tier {tier!r}; choose one of {', '.join(TIERS)}")
    installed = _installed()
    order = [tier] + [t for t in TIERS if t != tier]
    return [next(installed[(name, t)] for t in order if (name, t) in installed)
            for name in sorted({n for n, _ in installed})]


def tiers_of(name: str) -> list[str]:
    """The tiers in which style ``name`` is installed."""
    installed = _installed()
    return [t for t in TIERS if (name, t) in installed]


def pick_tier(tier: str, device: str, cuda_usable) -> str:  # noqa: ANN001 - cuda_usable: () -> bool
    """``full``/``fast`` as asked; ``auto``: full when the model will run on CUDA, fast on the CPU
    (``cuda_usable`` is only called for device auto/cuda, as probing CUDA takes a moment)."""
    if tier not in TIER_CHOICES:
        raise ModelError(f"unknown tier {tier!r}; choose one of {', '.join(TIER_CHOICES)}")
    if tier != "auto":
        return tier
    return "full" if device != "cpu" and cuda_usable() else "fast"


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


def default_style(tier: str = "full") -> Style:
    """The zoo's default style (in ``tier`` where installed), or an error that says none is installed."""
    styles = {s.name: s for s in list_styles(tier)}
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


def resolve_style(spec: str | os.PathLike[str] | None, tier: str = "full") -> Style:
    """A style by name (``candy``, in ``tier`` where installed, else its other tier), by path
    (``my/model.onnx``; the tier does not apply), or the default when ``spec`` is None."""
    if spec is None or str(spec) == "":
        return default_style(tier)
    text = str(spec)
    file_part, at, mix = text.partition("@") if ".onnx@" in text else (text, "", "")
    looks_like_path = file_part.endswith(".onnx") or os.sep in file_part or (os.altsep and os.altsep in file_part)
    if looks_like_path or (Path(text).is_file() and not text.isidentifier()):
        path = Path(file_part).expanduser()
        if not path.exists():
            raise ModelError(f"model file {file_part} does not exist")
        if not path.is_file():
            raise ModelError(f"model path {file_part} is not a file")
        return Style(mix or path.stem, path, "file", _file_tier(path), mix=mix)
    styles = {s.name: s for s in list_styles(tier)}
    if text in styles:
        return styles[text]
    if ":" in text or "," in text:
        return _blend(text, styles)
    known = ", ".join(styles) if styles else "none installed"
    raise ModelError(f"unknown style {text!r} (available: {known})")


def _file_tier(path: Path) -> str:
    """A model file's tier as its training record beside it says (a run folder is not named after its
    tier), else by its folder, as trained/ keeps them (``fast/``)."""
    tier = read_record(path).get("tier")
    if tier in ("full", "fast"):
        return tier
    return "fast" if path.parent.name == "fast" else "full"


def _blend(text: str, styles: dict[str, Style]) -> Style:
    """``a:0.7,b:0.3``: a blend of styles that one model file holds (the weights are checked by the
    stylizer, which reads the model's own style list)."""
    names = [part.partition(":")[0].strip() for part in text.split(",")]
    unknown = [n for n in names if n not in styles]
    if unknown:
        known = ", ".join(styles) if styles else "none installed"
        raise ModelError(f"unknown style {unknown[0]!r} in {text!r} (available: {known})")
    files = {styles[n].path for n in names}
    if len(files) > 1 or not styles[names[0]].mix:
        raise ModelError(f"a blend needs styles of one multi-style model; {text!r} names styles of "
                         f"{', '.join(sorted(p.name for p in files))}")
    first = styles[names[0]]
    return Style(text, first.path, first.origin, first.tier, mix=text)


def slow_tier_note(style: Style, tier: str, device: str) -> str | None:
    """A one-line note when ``--tier auto`` wanted the fast network for the CPU but the style has only a
    full-tier model (it then runs the full network there: on the 2-core build machine 1.7 frames/s on
    samples/sample.mp4 against 40 for a fast-tier style), else None."""
    if tier != "auto" or device != "cpu" or style.origin == "file" or style.tier != "full":
        return None
    return (f"{style.name} has no fast-tier model: the full network runs on the CPU, about 20x slower "
            f"(styles with one: {', '.join(s.name for s in list_styles('fast') if s.tier == 'fast') or 'none'})")


def resolve_style_for_device(spec: str | os.PathLike[str] | None, tier: str, device: str) -> Style:
    """The style to run on ``device``: ``tier`` auto means fast on the CPU, full on CUDA."""

    def probe() -> bool:
        from .provider_probe import cuda_usable

        return cuda_usable(str(resolve_style(spec, "fast").path), device)  # the GPU asked for, not GPU 0

    return resolve_style(spec, pick_tier(tier, device, probe))
