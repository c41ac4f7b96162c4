"""The CUDA path without a GPU: a provider that cannot load or fails to start is reported in one line
(naming what is missing), ``auto`` falls back to the CPU itself (no "EP Error" banner on stdout, so
``--json`` stays clean), ``cuda`` is a one-line error, and the probe runs a frame."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from realtime import stylizer as stylizer_module
from realtime.errors import DeviceError
from realtime.stylizer import Stylizer

_CUDA = "CUDAExecutionProvider"


@pytest.fixture
def cuda_listed(monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """ONNX Runtime lists CUDA and its library loads, as on a GPU machine; sessions are real (CPU)."""
    import onnxruntime as ort

    monkeypatch.setattr(ort, "get_available_providers", lambda: [_CUDA, "CPUExecutionProvider"])
    monkeypatch.setattr(stylizer_module, "cuda_library_problem", lambda: None)
    return ort


def _failing_cuda_sessions(ort, monkeypatch: pytest.MonkeyPatch, message: str) -> list[dict]:  # noqa: ANN001
    """Sessions asked for CUDA fail as ONNX Runtime fails when its CUDA provider cannot start."""
    real = ort.InferenceSession
    calls: list[dict] = []

    def session(path, sess_options=None, providers=None, **kw):  # noqa: ANN001, ANN202
        calls.append({"providers": providers, **kw})
        if any((p[0] if isinstance(p, tuple) else p) == _CUDA for p in providers or []):
            if kw.get("enable_fallback", 1):  # what ORT's wrapper would do: print a banner, retry on CPU
                print("*************** EP Error ***************")
            raise RuntimeError(f"{message}\nmore detail on a second line")
        return real(path, sess_options=sess_options, providers=providers, **kw)

    monkeypatch.setattr(ort, "InferenceSession", session)
    return calls


def test_auto_falls_back_itself_in_one_line_when_cuda_fails_to_start(tiny_model: Path, cuda_listed, monkeypatch, capsys) -> None:  # noqa: ANN001
    calls = _failing_cuda_sessions(cuda_listed, monkeypatch, "CUDNN failure 4: CUDNN_STATUS_INTERNAL_ERROR")
    st = Stylizer(tiny_model, device="auto", lanes=1)
    assert st.device == "cpu" and "CUDNN_STATUS_INTERNAL_ERROR" in st.fallback and "\n" not in st.fallback
    assert calls[0]["enable_fallback"] == 0  # ONNX Runtime's own fallback (and its banner) is off
    assert capsys.readouterr().out == ""
    assert st.stylize([np.zeros((8, 8, 3), np.uint8)])[0].shape == (8, 8, 3)


def test_explicit_cuda_names_the_failure_in_one_line(tiny_model: Path, cuda_listed, monkeypatch) -> None:  # noqa: ANN001
    _failing_cuda_sessions(cuda_listed, monkeypatch, "CUDA failure 35: CUDA driver version is insufficient")
    with pytest.raises(DeviceError) as err:
        Stylizer(tiny_model, device="cuda")
    assert "driver version is insufficient" in str(err.value) and "\n" not in str(err.value)


def test_a_missing_cuda_library_is_named(tiny_model: Path, monkeypatch) -> None:  # noqa: ANN001
    import onnxruntime as ort

    monkeypatch.setattr(ort, "get_available_providers", lambda: [_CUDA, "CPUExecutionProvider"])
    monkeypatch.setattr(stylizer_module, "cuda_library_problem",
                        lambda: "libcublasLt.so.13: cannot open shared object file: No such file or directory")
    with pytest.raises(DeviceError, match=r"libcublasLt\.so\.13.*\[gpu\] extra"):
        Stylizer(tiny_model, device="cuda")
    st = Stylizer(tiny_model, device="auto")
    assert st.device == "cpu" and "libcublasLt.so.13" in st.describe()


def test_the_real_probe_names_the_library_or_loads() -> None:
    """On this machine: onnxruntime-gpu's CUDA provider either loads, or the reason names a library."""
    import onnxruntime as ort

    if _CUDA not in ort.get_available_providers():
        pytest.skip("this onnxruntime has no CUDA provider")
    stylizer_module.cuda_library_problem.cache_clear()
    problem = stylizer_module.cuda_library_problem()
    assert problem is None or ".so" in problem or ".dll" in problem or "provider" in problem


def test_restyle_video_json_stays_clean_when_cuda_fails(tiny_model: Path, cuda_listed, monkeypatch, capsys, tmp_path: Path) -> None:  # noqa: ANN001
    from media import make_video

    from realtime.cli import restyle_video

    _failing_cuda_sessions(cuda_listed, monkeypatch, "CUDA failure 999: unknown error")
    clip = tmp_path / "in.mp4"
    make_video(clip, frames=3, size=(32, 24))
    code = restyle_video([str(clip), str(tmp_path / "out.mp4"), "--style", str(tiny_model), "--device", "auto", "--json"])
    out, err = capsys.readouterr()
    assert code == 0
    summary = json.loads(out)  # nothing but the JSON on stdout
    assert summary["frames"] == 3 and "CUDA failure 999" in summary["device_note"]
    lines = [line for line in err.splitlines() if "CUDA failure 999" in line]
    assert len(lines) == 1, err


def test_cuda_probe_runs_a_frame(tiny_model: Path, monkeypatch) -> None:  # noqa: ANN001
    """A provider that builds a session but fails at the first run (cuDNN loads lazily, an old GPU) is
    not usable: the probe runs one tiny frame."""
    import onnxruntime as ort

    ran = []

    class BuildsButCannotRun:
        device = "cuda"

        def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
            pass

        def stylize(self, images):  # noqa: ANN001, ANN202
            ran.append(images[0].shape)
            raise stylizer_module.ModelError("inference failed on CUDA: no kernel image is available")

    monkeypatch.setattr(ort, "get_available_providers", lambda: [_CUDA, "CPUExecutionProvider"])
    monkeypatch.setattr(stylizer_module, "Stylizer", BuildsButCannotRun)
    stylizer_module.cuda_usable.cache_clear()
    try:
        assert stylizer_module.cuda_usable(str(tiny_model)) is False and ran
    finally:
        stylizer_module.cuda_usable.cache_clear()
