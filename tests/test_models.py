"""The zoo: listing, lookup by name or path, the default from zoo.json, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from realtime import models
from realtime.errors import ModelError


def test_lists_and_finds_by_name(models_dir: Path) -> None:
    names = [s.name for s in models.list_styles()]
    assert "tiny" in names and "tiny255" in names
    assert models.resolve_style("tiny").path == models_dir / "tiny.onnx"


def test_default_comes_from_zoo_json(models_dir: Path) -> None:
    assert models.default_style().name == "tiny"
    assert models.resolve_style(None).name == "tiny"


def test_path_to_onnx_file(tiny_model: Path, tmp_path: Path) -> None:
    style = models.resolve_style(str(tiny_model))
    assert style.path == tiny_model and style.origin == "file"
    with pytest.raises(ModelError, match="does not exist"):
        models.resolve_style(str(tmp_path / "nope.onnx"))


def test_a_files_tier_is_its_records_else_its_folders(tiny_model: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    model = run / "net.onnx"
    model.write_bytes(tiny_model.read_bytes())
    assert models.resolve_style(str(model)).tier == "full"  # no record, folder not named fast
    model.with_suffix(".json").write_text(json.dumps({"name": "net", "tier": "fast"}))
    assert models.resolve_style(f"{model}@net").tier == "fast"
    fast = tmp_path / "fast"
    fast.mkdir()
    (fast / "net.onnx").write_bytes(tiny_model.read_bytes())
    assert models.resolve_style(str(fast / "net.onnx")).tier == "fast"


def test_unknown_style_lists_what_exists() -> None:
    with pytest.raises(ModelError, match="unknown style 'van_gogh_42'.*tiny"):
        models.resolve_style("van_gogh_42")


def test_no_styles_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv(models.ENV_DIR, str(empty))
    monkeypatch.setattr(models, "shipped_dir", lambda: None)
    with pytest.raises(ModelError, match="no styles are installed"):
        models.default_style()


def test_default_named_but_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = tmp_path / "zoo"
    d.mkdir()
    (d / "zoo.json").write_text(json.dumps({"default": "ghost"}))
    monkeypatch.setenv(models.ENV_DIR, str(d))
    monkeypatch.setattr(models, "shipped_dir", lambda: None)
    with pytest.raises(ModelError, match="ghost"):
        models.default_style()


def test_shipped_dir_is_the_trained_package() -> None:
    d = models.shipped_dir()
    assert d is not None and (d / "__init__.py").is_file()


def test_every_shipped_file_is_package_data() -> None:
    """A wheel (not only an editable install) carries every shipped model, record and sheet, both tiers:
    pyproject's package-data globs must match each file under trained/."""
    import fnmatch
    import tomllib

    root = Path(__file__).resolve().parents[1]
    globs = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["realtime.trained"]
    shipped = [p.relative_to(root / "trained").as_posix() for p in (root / "trained").rglob("*")
               if p.is_file() and p.suffix in (".onnx", ".json", ".jpg")]
    assert any(s.startswith("fast/") for s in shipped)
    missed = [s for s in shipped if not any(fnmatch.fnmatchcase(s, g) and s.count("/") == g.count("/") for g in globs)]
    assert not missed, f"not in the wheel: {missed}"


def test_list_styles_cli(run_cli, models_dir: Path) -> None:
    code, out, err = run_cli("--list-styles")
    assert code == 0, err
    lines = out.splitlines()
    assert any(ln.startswith("tiny (default)\t") and str(models_dir) in ln for ln in lines)
    assert any(ln.startswith("tiny255\t") for ln in lines)
