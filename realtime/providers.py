"""What a ``--device`` asks of ONNX Runtime: the execution providers in order, with their options.

Kept free of onnxruntime (the CLIs parse ``--device`` before anything heavy loads) and of sessions
(the options can be checked without a GPU). ``realtime.stylizer`` builds the sessions from these.

    auto          CUDA when it really runs, else the CPU
    cpu           the CPU
    cuda, cuda:N  CUDA on GPU N (default 0); an error when it cannot run
    tensorrt[:N]  TensorRT on GPU N, then CUDA, then the CPU for what neither runs; when TensorRT's
                  provider does not load, one line says so and CUDA runs alone
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import RealtimeError

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"

DEVICE_KINDS = ("auto", "cpu", "cuda", "tensorrt")
DEVICE_HELP = "auto, cpu, cuda, cuda:N, tensorrt or tensorrt:N (N: the GPU's index)"
PRECISIONS = ("fp32", "fp16")


@dataclass(frozen=True)
class DeviceSpec:
    """A parsed ``--device``: the kind and the GPU's index (0 unless given)."""

    kind: str
    index: int = 0

    @property
    def gpu(self) -> bool:
        """Whether a GPU was asked for by name (auto may still end on one)."""
        return self.kind in ("cuda", "tensorrt")

    def __str__(self) -> str:
        return f"{self.kind}:{self.index}" if self.index else self.kind


def parse_device(text: str) -> DeviceSpec:
    """``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``tensorrt``, ``tensorrt:N``; a ValueError (one line)
    for anything else."""
    kind, sep, index = str(text).strip().lower().partition(":")
    if kind not in DEVICE_KINDS:
        raise ValueError(f"unknown device {text!r}; choose {DEVICE_HELP}")
    if not sep:
        return DeviceSpec(kind)
    if kind not in ("cuda", "tensorrt"):
        raise ValueError(f"device {text!r}: only cuda and tensorrt take a GPU index")
    if not index.isdigit():
        raise ValueError(f"device {text!r}: the GPU index must be a number 0 or more")
    return DeviceSpec(kind, int(index))


def cuda_options(index: int = 0) -> dict[str, str]:
    """The CUDA provider's options.

    - ``arena_extend_strategy`` kSameAsRequested: the default (kNextPowerOfTwo) doubles the arena at
      every growth, and during a style switch two sessions hold an arena each (the new one is built
      and warmed before the old one goes), so power-of-two rounding can nearly double what the
      switch needs at 1280×720 and more.
    - ``cudnn_conv_algo_search`` HEURISTIC: EXHAUSTIVE benchmarks every convolution again for every
      new input shape (each frame size, each batch size, each style switch's new session), which
      delays the first frames by seconds and needs workspace memory while it runs; the heuristic's
      pick costs little for these plain 3×3 convolutions (not measured here: no GPU).
    - ``do_copy_in_default_stream`` 1: ONNX Runtime's recommended setting (separate copy streams may
      race); two batches in flight still overlap the caller's work with the GPU's.
    """
    return {
        "device_id": str(index),
        "arena_extend_strategy": "kSameAsRequested",
        "cudnn_conv_algo_search": "HEURISTIC",
        "do_copy_in_default_stream": "1",
    }


def engine_cache_dir() -> Path:
    """Where TensorRT keeps its built engines: building one takes minutes, reusing it a second."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "realtime" / "tensorrt"


def tensorrt_options(index: int = 0, fp16: bool = False, cache_dir: Path | None = None) -> dict[str, str]:
    """The TensorRT provider's options: engine and timing caches under ``cache_dir`` (engine_cache_dir),
    fp16 kernels when fp16 is asked. (Its Python binding takes "True"/"False" for flags.)"""
    folder = str(cache_dir or engine_cache_dir())
    return {
        "device_id": str(index),
        "trt_engine_cache_enable": "True",
        "trt_engine_cache_path": folder,
        "trt_timing_cache_enable": "True",
        "trt_timing_cache_path": folder,
        "trt_fp16_enable": "True" if fp16 else "False",
    }


def provider_chain(spec: DeviceSpec, *, fp16: bool = False, tensorrt: bool = True,
                   cache_dir: Path | None = None) -> list[str | tuple[str, dict[str, str]]]:
    """The providers for ``spec`` in ONNX Runtime's order of preference (the CPU last: it runs what the
    others do not). ``tensorrt`` False leaves TensorRT out (its provider does not load here)."""
    if spec.kind == "cpu":
        return [CPU]
    chain: list[str | tuple[str, dict[str, str]]] = []
    if spec.kind == "tensorrt" and tensorrt:
        chain.append((TENSORRT, tensorrt_options(spec.index, fp16, cache_dir)))
    chain += [(CUDA, cuda_options(spec.index)), CPU]
    return chain


def check_precision(precision: str, device: str) -> None:
    """fp16 is for GPUs: refused with --device cpu, where ONNX Runtime casts around most float16 ops
    and runs slower than fp32 (with auto, the stylizer runs fp32 if it ends on the CPU and says so)."""
    if precision not in PRECISIONS:
        raise RealtimeError(f"--precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    if precision == "fp16" and device == "cpu":
        raise RealtimeError("--precision fp16 is for GPUs; on the CPU it is slower than fp32 (use --precision fp32)")
