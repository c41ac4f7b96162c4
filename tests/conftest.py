"""Shared fixtures: a tiny stand-in style model, a models folder that makes it the default, synthetic
clips, the real clips folder, and helpers to run ``restyle-video`` in-process or as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # tests/media.py and tests/tiny_model.py

from media import make_video  # noqa: E402
from tiny_model import make_tiny_model  # noqa: E402

REPO = HERE.parent
# the shared data sits beside the checkout: <workspace>/shared/data
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
VIDEOS = SHARED_DATA / "videos"


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A REALTIME_MODELS_DIR with ``tiny.onnx`` (the default, range 0..1) and ``tiny255.onnx``
    (same weights, range 0..255)."""
    d = tmp_path_factory.mktemp("models")
    make_tiny_model(d / "tiny.onnx", style_name="tiny")
    make_tiny_model(d / "tiny255.onnx", style_name="tiny255", input_range="0,255")
    (d / "zoo.json").write_text(json.dumps({"default": "tiny"}))
    return d


@pytest.fixture(scope="session")
def tiny_model(models_dir: Path) -> Path:
    return models_dir / "tiny.onnx"


@pytest.fixture(autouse=True)
def _models_env(models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # every test sees the tiny model as the zoo default, whatever trained/ holds
    monkeypatch.setenv("REALTIME_MODELS_DIR", str(models_dir))


@pytest.fixture(autouse=True)
def _teacher_cache_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    # distillation targets the trainer keeps on disk go to a folder of the test's own, not the user's cache
    monkeypatch.setenv("REALTIME_TEACHER_CACHE", str(tmp_path_factory.mktemp("teacher_cache")))


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory):
    """Build synthetic clips on demand, once per session: ``clips("name.mp4", **make_video kwargs)``."""
    root = tmp_path_factory.mktemp("clips")
    made: dict[str, tuple[Path, list[float]]] = {}

    def get(name: str, **kwargs) -> Path:
        if name not in made:
            path = root / name
            made[name] = (path, make_video(path, **kwargs))
        return made[name][0]

    return get


def load_tool(name: str, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201 - a module
    """tools/<name>.py imported as a module (tools are scripts, not a package), registered in
    sys.modules for the test's duration: dataclasses look their module up there."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"tools_{name}", REPO / "tools" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, tool)
    spec.loader.exec_module(tool)
    return tool


def in_process(main, capsys: pytest.CaptureFixture[str]):  # noqa: ANN001, ANN201 - main: (argv) -> int
    """A runner for a console entry point in this process: run(*argv) -> (exit code, stdout, stderr)."""

    def run(*argv: object) -> tuple[int, str, str]:
        code = main([str(a) for a in argv])
        cap = capsys.readouterr()
        return code, cap.out, cap.err

    return run


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]):
    """Run restyle-video in this process: returns (exit code, stdout, stderr)."""
    from realtime.cli import restyle_video_main

    return in_process(restyle_video_main, capsys)


def cli_command() -> list[str]:
    """How to start restyle-video as a subprocess: the installed console script when this interpreter's
    environment has it (``pip install -e .``), else the same entry point through ``python -m``."""
    script = Path(sys.executable).parent / "restyle-video"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "realtime.cli"]


def run_subprocess(*argv: object, timeout: float = 120, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    return subprocess.run(cli_command() + [str(a) for a in argv], capture_output=True, text=True,
                          timeout=timeout, env=full_env, cwd=str(REPO))


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Names, sizes and modification times of everything in a folder (hidden files included)."""
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


def real_clip(name: str) -> Path:
    path = VIDEOS / name
    if not VIDEOS.is_dir():
        pytest.skip(f"shared data not found at {VIDEOS} (expected beside the checkout)")
    if not path.is_file():
        pytest.skip(f"{path} not present")
    return path
