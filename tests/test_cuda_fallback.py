"""The CUDA path without a GPU: a provider that cannot load or fails to start is reported in one line
(naming what is missing), ``auto`` falls back to the CPU itself (no "EP Error" banner on stdout, so
``--json`` stays clean), ``cuda`` is a one-line error, and the probe runs a frame."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from realtime import provider_probe
from realtime import stylizer as stylizer_module
from realtime.errors import DeviceError, RealtimeError
from realtime.stylizer import Stylizer

_CUDA = "CUDAExecutionProvider"


@pytest.fixture
def cuda_listed(monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """ONNX Runtime lists CUDA and its library loads, as on a GPU machine; sessions are real (CPU)."""
    import onnxruntime as ort

    monkeypatch.setattr(ort, "get_available_providers", lambda: [_CUDA, "CPUExecutionProvider"])
    monkeypatch.setattr(provider_probe, "cuda_library_problem", lambda: None)
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
    monkeypatch.setattr(provider_probe, "cuda_library_problem",
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
    provider_probe.cuda_library_problem.cache_clear()
    problem = provider_probe.cuda_library_problem()
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
    provider_probe.cuda_usable.cache_clear()
    try:
        assert provider_probe.cuda_usable(str(tiny_model)) is False and ran
    finally:
        provider_probe.cuda_usable.cache_clear()


@pytest.mark.parametrize("device,probed", [("cuda:1", "cuda:1"), ("tensorrt:2", "tensorrt:2"), ("auto", "auto")])
def test_tier_auto_probes_the_gpu_asked_for(tiny_model: Path, monkeypatch, device: str, probed: str) -> None:  # noqa: ANN001
    """--tier auto picks the full tier only where CUDA runs: on the GPU the command will use (cuda:1 on a
    machine whose GPU 0 is busy or broken), not on GPU 0."""
    import onnxruntime as ort

    from realtime.models import resolve_style_for_device

    asked = []

    class RunsOnlyOnGpu1:
        def __init__(self, path, device="auto", **kwargs) -> None:  # noqa: ANN001, ANN003
            asked.append(device)
            self.device = "cuda"

        def stylize(self, images):  # noqa: ANN001, ANN202
            if asked[-1] in ("auto", "cuda", "cuda:0"):
                raise stylizer_module.ModelError("inference failed on CUDA: GPU 0 is out of memory")
            return images

    monkeypatch.setattr(ort, "get_available_providers", lambda: [_CUDA, "CPUExecutionProvider"])
    monkeypatch.setattr(stylizer_module, "Stylizer", RunsOnlyOnGpu1)
    provider_probe.cuda_usable.cache_clear()
    try:
        resolve_style_for_device(None, "auto", device)
        assert asked == [probed]
        # and the answer is that GPU's: usable on GPU 1 and 2, not on GPU 0 (auto)
        provider_probe.cuda_usable.cache_clear()
        assert provider_probe.cuda_usable(str(tiny_model), device) is (device != "auto")
    finally:
        provider_probe.cuda_usable.cache_clear()


# ------------------------------------------------------------------ providers, their options, batches in flight


def _names(providers) -> list[str]:  # noqa: ANN001
    return [p[0] if isinstance(p, tuple) else p for p in providers or []]


def _pretend_gpu_sessions(ort, monkeypatch: pytest.MonkeyPatch, runs_on: list[str] | None = None) -> list[dict]:  # noqa: ANN001
    """Sessions asked for CUDA (or TensorRT) are real CPU sessions that say they run on the first provider
    asked for (or on ``runs_on``), as on a GPU machine; every call's providers are recorded."""
    real = ort.InferenceSession
    calls: list[dict] = []

    class OnGpu:
        def __init__(self, session, providers: list[str]) -> None:  # noqa: ANN001
            self._session, self._providers = session, providers

        def get_providers(self) -> list[str]:
            return self._providers

        def __getattr__(self, name: str):  # noqa: ANN204
            return getattr(self._session, name)

    def session(path, sess_options=None, providers=None, **kw):  # noqa: ANN001, ANN202
        calls.append({"providers": providers, **kw})
        cpu = real(path, sess_options=sess_options, providers=["CPUExecutionProvider"])
        names = _names(providers)
        return OnGpu(cpu, runs_on or names) if names[0] != "CPUExecutionProvider" else cpu

    monkeypatch.setattr(ort, "InferenceSession", session)
    return calls


def test_device_values_parse_and_bad_ones_are_one_line() -> None:
    from realtime.providers import DeviceSpec, parse_device

    assert parse_device("cuda") == DeviceSpec("cuda", 0) and parse_device("CUDA:1") == DeviceSpec("cuda", 1)
    assert parse_device("tensorrt:2") == DeviceSpec("tensorrt", 2) and str(parse_device("cuda:0")) == "cuda"
    for bad, words in (("gpu", "unknown device"), ("cuda:x", "index"), ("cuda:-1", "index"), ("cpu:1", "only cuda")):
        with pytest.raises(ValueError, match=words) as err:
            parse_device(bad)
        assert "\n" not in str(err.value)


def test_cuda_device_index_and_provider_options_are_passed(tiny_model: Path, cuda_listed, monkeypatch) -> None:  # noqa: ANN001
    calls = _pretend_gpu_sessions(cuda_listed, monkeypatch)
    st = Stylizer(tiny_model, device="cuda:1")
    assert st.device == "cuda" and st.device_index == 1 and "CUDA:1" in st.describe()
    name, options = calls[0]["providers"][0]
    assert name == _CUDA and _names(calls[0]["providers"])[1:] == ["CPUExecutionProvider"]
    assert options == {"device_id": "1", "arena_extend_strategy": "kSameAsRequested",
                       "cudnn_conv_algo_search": "HEURISTIC", "do_copy_in_default_stream": "1"}
    assert calls[0]["enable_fallback"] == 0


def test_two_batches_in_flight_on_cuda_in_order_and_bounded(tiny_model: Path, cuda_listed, monkeypatch) -> None:  # noqa: ANN001
    """On CUDA one session takes two batches at once (the GPU runs one while the caller finishes the
    other): results come back per batch in submission order, and a third submit waits for the first."""
    calls = _pretend_gpu_sessions(cuda_listed, monkeypatch)
    st = Stylizer(tiny_model, device="cuda")
    assert st.lanes == 2 and len(calls) == 1  # one session, two in flight
    assert Stylizer(tiny_model, device="cuda", lanes=1).lanes == 1
    plain = Stylizer(tiny_model, device="cpu", lanes=1, graph_io=False)
    rng = np.random.default_rng(0)
    batches = [[rng.integers(0, 256, (20, 28, 3), dtype=np.uint8) for _ in range(2)] for _ in range(5)]
    jobs = []
    for i, batch in enumerate(batches):
        jobs.append(st.submit(batch))
        if i >= 2:
            assert jobs[i - 2].done()  # bounded: at most two in flight
    for job, batch in zip(jobs, batches):
        for got, want in zip(job.result(), plain.stylize(batch)):
            assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
    assert st.graph_io  # on CUDA the pre/post run in the graph by default


def test_tensorrt_goes_first_with_its_cache_and_fp16(tiny_model: Path, cuda_listed, monkeypatch, tmp_path: Path) -> None:  # noqa: ANN001
    monkeypatch.setattr(cuda_listed, "get_available_providers", lambda: ["TensorrtExecutionProvider", _CUDA, "CPUExecutionProvider"])
    monkeypatch.setattr(provider_probe, "tensorrt_library_problem", lambda: None)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    calls = _pretend_gpu_sessions(cuda_listed, monkeypatch)
    st = Stylizer(tiny_model, device="tensorrt", precision="fp16")
    providers = calls[0]["providers"]
    assert _names(providers) == ["TensorrtExecutionProvider", _CUDA, "CPUExecutionProvider"]
    trt = providers[0][1]
    cache = tmp_path / "realtime" / "tensorrt"
    assert trt["trt_engine_cache_enable"] == "True" and trt["trt_engine_cache_path"] == str(cache) and cache.is_dir()
    assert trt["trt_fp16_enable"] == "True" and st.precision == "fp16"
    assert st.device == "cuda" and st.provider == "TensorrtExecutionProvider" and st.fallback is None
    calls.clear()
    assert Stylizer(tiny_model, device="tensorrt").fallback is None
    assert calls[0]["providers"][0][1]["trt_fp16_enable"] == "False"


def test_tensorrt_that_cannot_load_falls_back_to_cuda_in_one_line(tiny_model: Path, cuda_listed, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(cuda_listed, "get_available_providers", lambda: ["TensorrtExecutionProvider", _CUDA, "CPUExecutionProvider"])
    monkeypatch.setattr(provider_probe, "tensorrt_library_problem",
                        lambda: "libnvinfer.so.10: cannot open shared object file: No such file or directory")
    calls = _pretend_gpu_sessions(cuda_listed, monkeypatch)
    st = Stylizer(tiny_model, device="tensorrt")
    assert _names(calls[0]["providers"]) == [_CUDA, "CPUExecutionProvider"]
    assert st.device == "cuda" and "libnvinfer.so.10" in st.fallback and "\n" not in st.fallback
    assert "TensorRT" in st.describe()
    # listed but not first in the session (ONNX Runtime dropped it): said as well
    monkeypatch.setattr(provider_probe, "tensorrt_library_problem", lambda: None)
    calls = _pretend_gpu_sessions(cuda_listed, monkeypatch, runs_on=[_CUDA, "CPUExecutionProvider"])
    assert "TensorRT did not load" in Stylizer(tiny_model, device="tensorrt").fallback


def test_fp16_on_auto_that_ends_on_the_cpu_runs_fp32_and_says_so(tiny_model: Path, monkeypatch) -> None:  # noqa: ANN001
    import onnxruntime as ort

    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    st = Stylizer(tiny_model, device="auto", precision="fp16")
    assert st.device == "cpu" and st.precision == "fp32" and "fp16 is not used" in st.fallback
    with pytest.raises(DeviceError, match="precision"):
        Stylizer(tiny_model, device="cpu", precision="fp8")


@pytest.mark.parametrize("args,words", [
    (["--device", "gpu"], "unknown device"),
    (["--device", "cuda:one"], "index"),
    (["--precision", "fp8"], "invalid choice"),
    (["--precision", "fp16", "--device", "cpu"], "fp16 is for GPUs"),
])
def test_bad_device_and_precision_are_one_line_errors(args: list[str], words: str, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    from media import make_video

    from realtime.cli import restyle_video_main

    clip = tmp_path / "in.mp4"
    make_video(clip, frames=2, size=(32, 24))
    code = restyle_video_main([str(clip), str(tmp_path / "out.mp4"), *args])
    err = capsys.readouterr().err
    assert code != 0 and words in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out.mp4").exists()


# ------------------------------------------------------------------ tools/gpu_check.py without a GPU

GPU_CHECK = Path(__file__).resolve().parents[1] / "tools" / "gpu_check.py"


@pytest.mark.slow
def test_gpu_check_dry_run_goes_through_every_step_on_the_cpu() -> None:
    import subprocess
    import sys

    res = subprocess.run([sys.executable, str(GPU_CHECK), "--dry-run", "--size", "40x24", "--batches", "1", "2", "--runs", "1",
                          "--frames", "3"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    out = res.stdout
    for words in ("fp32: max |cpu - CPU fp32| = 0 levels", "fp16: max", "model-only frames/s at 40x24",
                  "restyle-video --device cpu --precision fp32 at 40x24: 3 frames", "GPU CHECK PASSED (dry run"):
        assert words in out, out


def test_gpu_check_fails_loudly_without_a_gpu() -> None:
    import subprocess
    import sys

    import onnxruntime as ort

    provider_probe.cuda_library_problem.cache_clear()
    if _CUDA in ort.get_available_providers() and provider_probe.cuda_library_problem() is None:
        pytest.skip("the CUDA provider loads here: the check would run on the GPU")
    res = subprocess.run([sys.executable, str(GPU_CHECK)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 1 and "GPU CHECK FAILED" in res.stderr and "PASSED" not in res.stdout
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr


def test_cluster_workers_take_the_gpu_kind_not_its_index() -> None:
    from realtime.cluster.run import ClusterOptions, worker_shape
    from realtime.errors import RealtimeError

    class Ray:
        def __init__(self, gpus: int) -> None:
            self.gpus = gpus

        def cluster_resources(self) -> dict[str, float]:
            return {"CPU": 8, "GPU": self.gpus}

    assert worker_shape(Ray(2), ClusterOptions(device="cuda:1"))[2] == "cuda"  # Ray gives each worker its GPU
    assert worker_shape(Ray(2), ClusterOptions(device="tensorrt"))[2] == "tensorrt"
    with pytest.raises(RealtimeError, match="tensorrt:1: the cluster has no GPUs"):
        worker_shape(Ray(0), ClusterOptions(device="tensorrt:1"))


def test_cluster_workers_get_the_precision(clips, run_cli, tiny_model: Path, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """--precision reaches each worker's stylizer (it was dropped: workers ran fp32 whatever was asked),
    and fp16 with --device cpu is refused once, up front, as a single run refuses it."""
    pytest.importorskip("ray")
    from realtime.cluster import run as run_module
    from realtime.cluster.run import _worker_class

    given = {}

    def fake_restyle_on_cluster(jobs, model, settings, cluster, **kwargs):  # noqa: ANN001, ANN003, ANN202
        given["cluster"] = cluster
        raise RealtimeError("stopped here by the test")

    monkeypatch.setattr(run_module, "restyle_on_cluster", fake_restyle_on_cluster)
    clip = clips("precision.mp4", frames=4)
    code, _, err = run_cli(clip, tmp_path / "o.mp4", "--cluster", "--workers", "1", "--precision", "fp16",
                           "--device", "cuda:1")
    assert code != 0 and given["cluster"].precision == "fp16" and given["cluster"].device == "cuda:1"
    given.clear()
    code, _, err = run_cli(clip, tmp_path / "o.mp4", "--cluster", "--workers", "1", "--precision", "fp16",
                           "--device", "cpu")
    assert code != 0 and not given and "fp16 is for GPUs" in err and len(err.strip().splitlines()) == 1

    made = []

    class Recorder:
        def __init__(self, path, **kwargs) -> None:  # noqa: ANN001, ANN003
            made.append(kwargs)

    monkeypatch.setattr(stylizer_module, "Stylizer", Recorder)
    _worker_class()(tiny_model.read_bytes(), "tiny.onnx", "cuda", 1, 1, None, "fp16")
    assert made and made[0]["precision"] == "fp16" and made[0]["device"] == "cuda"
