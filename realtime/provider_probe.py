"""Whether an execution provider of ONNX Runtime really loads and runs on this machine: its library
loads (``cuda_library_problem``, ``tensorrt_library_problem``: the loader's message naming what is
missing) and, for CUDA, a session runs a frame (``cuda_usable``). ``realtime.providers`` says what a
``--device`` asks for; this module says whether the machine can give it. Each answer is cached for the
process; onnxruntime is imported inside the functions, so importing this module stays light.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from . import providers
from .errors import RealtimeError

_CUDA = providers.CUDA


@functools.lru_cache(maxsize=2)
def cuda_usable(probe_model: str, device: str = "auto") -> bool:
    """Whether ONNX Runtime's CUDA provider really runs here, on ``device`` (auto: GPU 0; cuda:N and
    tensorrt:N probe that GPU): onnxruntime-gpu lists it even on a machine without a GPU, and cuDNN loads
    (and a GPU too old for the build fails) only at the first run, so a session is built on
    ``probe_model`` (a small model) and runs one tiny frame. Checked once per process and device."""
    import onnxruntime as ort

    from .stylizer import Stylizer  # here: the stylizer imports this module

    if _CUDA not in ort.get_available_providers():
        return False
    try:
        stylizer = Stylizer(probe_model, device=device, lanes=1)
        if stylizer.device != "cuda":
            return False
        stylizer.stylize([np.zeros((16, 16, 3), np.uint8)])
        return True
    except RealtimeError:
        return False


@functools.lru_cache(maxsize=1)
def cuda_library_problem() -> str | None:
    """Why ONNX Runtime's CUDA provider library cannot load here (its loader's message, which names the
    missing library, e.g. ``libcublasLt.so.13: cannot open shared object file``), or None when it loads.
    CUDA libraries installed from PyPI (the ``[gpu]`` extra) are found through ``onnxruntime.preload_dlls``.
    ONNX Runtime itself only logs this and runs on the CPU instead."""
    return _provider_library_problem("cuda")


@functools.lru_cache(maxsize=1)
def tensorrt_library_problem() -> str | None:
    """As ``cuda_library_problem`` for the TensorRT provider (it needs TensorRT's own libnvinfer, which
    no extra of this project installs)."""
    return _provider_library_problem("tensorrt")


def _provider_library_problem(name: str) -> str | None:
    import ctypes
    import contextlib
    import io

    import onnxruntime as ort

    capi = Path(ort.__file__).parent / "capi"
    provider = next(iter(sorted(capi.glob(f"libonnxruntime_providers_{name}.so*")) + sorted(capi.glob(f"onnxruntime_providers_{name}.dll"))), None)
    if provider is None:
        return f"this onnxruntime build has no {'CUDA' if name == 'cuda' else 'TensorRT'} provider library"

    def load() -> str | None:
        try:
            shared = next(iter(sorted(capi.glob("libonnxruntime_providers_shared.so*"))), None)
            if shared is not None:
                ctypes.CDLL(str(shared), mode=getattr(ctypes, "RTLD_GLOBAL", 0))
            ctypes.CDLL(str(provider))
            return None
        except OSError as exc:
            return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__

    problem = load()
    if problem is not None and hasattr(ort, "preload_dlls"):
        # it prints what it cannot find to stdout, which is for --json: keep it quiet
        with contextlib.redirect_stdout(io.StringIO()):
            try:
                ort.preload_dlls()
            except Exception:  # noqa: BLE001 - a failed preload leaves the problem as found
                pass
        problem = load()
    return problem
