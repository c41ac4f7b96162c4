"""The stylizer: one ONNX Runtime session for one style model.

It reads the model's own metadata (style name, pixel range, layout; see ``realtime.modelmeta``, read by
``realtime.model_info``) rather than assuming, picks the execution provider and *checks* which one
really runs (ONNX Runtime silently falls back to CPU when the CUDA provider cannot load), pads frames
by reflection to the model's size multiple and crops back, runs batches of frames per call, and keeps
per-stage timings.

On the CPU it runs consecutive batches side by side (``lanes``), on CUDA it keeps two batches in
flight: see ``Stylizer.submit``. Pre- and post-processing (uint8 to the model's range, the margin, the
phase interleave, back to uint8) run inside the graph where the ``onnx`` package is installed
(``realtime.graph_io``; ``graph_io=False`` runs this module's own). Providers and their options come
from ``realtime.providers``, and whether they load here from ``realtime.provider_probe``;
``precision="fp16"`` converts the model for the GPU. A batch in flight is a
``realtime.pending.PendingFrames``.

onnxruntime is imported only inside functions (here and in ``realtime.provider_probe``), so the rest of
the package (and ``--help``) stays light.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Sequence

import cv2
import numpy as np

from . import graph_io as graph_io_module
from . import modelmeta, provider_probe, providers
from .errors import DeviceError, ModelError
from .model_info import ModelInfo, read_metadata, read_onnx_header
from .pending import PendingFrames
from .workers import cpu_count

Device = Literal["auto", "cpu", "cuda", "tensorrt"]  # or "cuda:N", "tensorrt:N" (realtime.providers)
DEVICES: tuple[str, ...] = providers.DEVICE_KINDS

_CUDA = providers.CUDA
_CPU = providers.CPU
# batches in flight on CUDA (Stylizer.lanes there): one the GPU runs, one the caller prepares or finishes
CUDA_IN_FLIGHT = 2


@dataclass
class StageTimes:
    """Seconds spent per stage and frames that went through it (for per-stage frames/s)."""

    # inference: from a batch's start to its end in the runtime; with lanes side by side these overlap,
    # so frames / inference seconds is one lane's speed. inference_wait: the caller blocked on results.
    seconds: dict[str, float] = field(
        default_factory=lambda: {"preprocess": 0.0, "inference": 0.0, "inference_wait": 0.0, "postprocess": 0.0})
    frames: int = 0
    calls: int = 0

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"frames": self.frames, "calls": self.calls}
        for name, s in self.seconds.items():
            out[f"{name}_s"] = round(s, 4)
            out[f"{name}_ms_per_frame"] = round(1000.0 * s / self.frames, 3) if self.frames else None
        return out


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def default_graph_io(on_gpu: bool) -> bool:
    """Whether pre- and post-processing run inside the graph by default (graph_io.wrap_uint8). On a GPU
    always: the conversions run there and the transfers are uint8. On the CPU: GRAPH_IO_ON_CPU."""
    return True if on_gpu else GRAPH_IO_ON_CPU


# Off: on the CPU the graph's pre/post (one pass per op) cost 2.7x this module's OpenCV code, e.g. 40
# against 15 ms a 1280x720 frame on one core; model-only frames/s with tools/bench.py --graph-io-ab in
# the README ("On a GPU").
GRAPH_IO_ON_CPU = False


def default_lanes(cores: int) -> int:
    """Lanes (sessions side by side) on the CPU: two wherever there are two cores. Measured on 2 cores
    only (see ``Stylizer.submit``); more lanes add a frame of latency each for a live picture."""
    return 2 if cores >= 2 else 1


def lane_threads(cores: int, lanes: int) -> int:
    """Intra-op threads for one lane's session: its share of the cores, plus the pool thread that runs
    the batch (ONNX Runtime runs ``run_async`` on a pool thread, so a pool needs at least two)."""
    return max(2, cores // lanes + 1)


class Stylizer:
    """Runs one style model on batches of RGB uint8 frames and returns RGB uint8 frames of the same size.

    ``device`` is "auto" (CUDA when its provider really loads, else CPU), "cpu", "cuda[:N]" (an error
    when CUDA cannot run) or "tensorrt[:N]" (TensorRT, then CUDA; see realtime.providers). ``provider``,
    ``device`` ("cpu" or "cuda": the hardware), ``device_index``, ``precision`` and ``graph_io`` say
    what actually runs; ``fallback`` why it is less than asked, in one line.
    """

    def __init__(self, model_path: str | os.PathLike[str], device: Device | str = "auto", threads: int | None = None,
                 lanes: int | None = None, style: str | Sequence[float] | None = None, precision: str = "fp32",
                 graph_io: bool | None = None) -> None:
        """``style``: for a model of several styles, which one (a name, ``a:0.7,b:0.3``, or a vector of
        weights; default its first); ``set_style`` changes it later without a new session.

        ``device``: see ``realtime.providers`` (auto, cpu, cuda[:N], tensorrt[:N]). ``precision`` fp16
        converts the model to float16 (float32 kept at its edges; graph_io.to_fp16) where it runs on a
        GPU, or on the CPU when ``device`` is "cpu" (slow there: for comparisons); "auto" ending on the
        CPU runs fp32 and says so in ``fallback``. ``graph_io``: pre- and post-processing inside the
        graph (graph_io.wrap_uint8); default ``default_graph_io``; needs the ``onnx`` package (without
        it, the pre/post of this module run instead)."""
        import onnxruntime as ort  # kept local: only the stylizer needs it

        self.path = Path(model_path)
        try:
            spec = providers.parse_device(device)
        except ValueError as exc:
            raise DeviceError(str(exc)) from None
        if precision not in providers.PRECISIONS:
            raise DeviceError(f"unknown precision {precision!r}; choose one of {', '.join(providers.PRECISIONS)}")
        if lanes is not None and lanes < 1:
            raise DeviceError("lanes must be at least 1")
        read_onnx_header(self.path)
        self._ort = ort
        cores = threads or cpu_count()
        cpu_lanes = min(lanes or default_lanes(cores), cores)  # a lane runs on at least a core of its own

        available = ort.get_available_providers()
        want_cuda = spec.kind != "cpu" and _CUDA in available
        if spec.gpu and _CUDA not in available:
            raise DeviceError(
                f"--device {spec}: this ONNX Runtime build has no CUDA provider "
                f"(available: {', '.join(available)}); install onnxruntime-gpu or use --device cpu"
            )
        self.fallback: str | None = None  # why "auto" runs on the CPU although it asked for CUDA (or CUDA without TensorRT)
        notes: list[str] = []
        problem = provider_probe.cuda_library_problem() if want_cuda else None
        if problem is not None:
            if spec.gpu:
                # libcuda comes with the NVIDIA driver, which no pip package provides
                advice = ("no NVIDIA driver (R580 or newer) is installed" if "libcuda.so" in problem or "nvcuda" in problem
                          else "install the [gpu] extra (see the README)")
                raise DeviceError(f"--device {spec}: ONNX Runtime's CUDA provider cannot load ({problem}); {advice}, "
                                  "or use --device cpu")
            want_cuda = False
            notes.append(f"CUDA is not usable ({problem})")
        use_tensorrt = False
        if want_cuda and spec.kind == "tensorrt":
            trt_problem = (provider_probe.tensorrt_library_problem() if providers.TENSORRT in available
                           else "this ONNX Runtime build has no TensorRT provider")
            if trt_problem is None:
                use_tensorrt = True
            else:
                notes.append(f"TensorRT is not usable ({trt_problem}); running on CUDA without it")
        fp16 = precision == "fp16" and (want_cuda or spec.kind == "cpu")
        if precision == "fp16" and not fp16:
            notes.append("fp16 is not used on the CPU (slower there than fp32)")
        chain = providers.provider_chain(spec, fp16=fp16, tensorrt=use_tensorrt) if want_cuda else [_CPU]
        if use_tensorrt:
            providers.engine_cache_dir().mkdir(parents=True, exist_ok=True)

        want_graph = default_graph_io(want_cuda) if graph_io is None else graph_io
        self.graph_io = False
        self.precision = "fp32"
        self.info: ModelInfo
        source: str | bytes = str(self.path)
        proto = self._load_proto() if (want_graph or precision == "fp16") else None
        if proto is not None:
            # checked before any session is built, in the form a session would give
            self.info = read_metadata(self.path, *graph_io_module.signature(proto))
            source, self.graph_io, self.precision = self._prepared_model(proto, fp16=fp16, wrap=want_graph)
        elif precision == "fp16" and fp16:
            raise DeviceError("--precision fp16 needs the onnx package (pip install onnx, or the [gpu] extra)")

        prev_severity = None
        try:
            if want_cuda:
                # the fallback message comes from the default logger, not the session's
                prev_severity = 3
                ort.set_default_logger_severity(4)
            first_threads = max(2, cores) if want_cuda else (cores if cpu_lanes == 1 else lane_threads(cores, cpu_lanes))
            opts = self._session_options(first_threads)
            try:
                # no silent retry: ONNX Runtime's own fallback prints an "EP Error" banner to stdout
                self.session = ort.InferenceSession(source, sess_options=opts, providers=chain, enable_fallback=0)
            except Exception as exc:  # noqa: BLE001 - ORT raises its own types; the CPU retry tells model from provider
                if not want_cuda:
                    raise
                text = _first_line(exc)
                if proto is not None and self.precision == "fp16":  # the CPU runs fp32
                    source, self.graph_io, self.precision = self._prepared_model(proto, fp16=False, wrap=want_graph)
                self.session = ort.InferenceSession(source, sess_options=opts, providers=[_CPU])
                if spec.gpu:
                    raise DeviceError(f"--device {spec}: ONNX Runtime's CUDA provider failed to start ({text[:300]}); "
                                      "use --device cpu") from None
                notes.append(f"the CUDA provider failed to start ({text[:300]})")
        except DeviceError:
            raise
        except Exception as exc:  # ORT raises its own exception types (Fail, InvalidProtobuf, ...)
            text = _first_line(exc)
            if "protobuf" in text.lower() or "INVALID_PROTOBUF" in text or "Load model" in text:
                raise ModelError(f"{self.path} is not a valid ONNX model ({text[:200]})") from exc
            raise ModelError(f"cannot load model {self.path}: {text[:300]}") from exc
        finally:
            if prev_severity is not None:
                ort.set_default_logger_severity(prev_severity)

        self.provider: str = self.session.get_providers()[0]
        if spec.gpu and self.provider not in (_CUDA, providers.TENSORRT):
            raise DeviceError(
                f"--device {spec}: ONNX Runtime could not load its CUDA provider (no GPU, or CUDA/cuDNN "
                "libraries missing); use --device cpu or --device auto"
            )
        # the device is the hardware: TensorRT runs on the CUDA device too
        self.device: str = "cuda" if self.provider in (_CUDA, providers.TENSORRT) else "cpu"
        self.device_index: int = spec.index if self.device == "cuda" else 0
        # "auto" asked for CUDA and ORT fell back silently: say so, users expect the GPU otherwise
        if want_cuda and self.device == "cpu" and not notes:
            notes.append("the CUDA provider did not load (no GPU, or CUDA/cuDNN libraries missing)")
        if use_tensorrt and self.provider != providers.TENSORRT and self.device == "cuda":
            notes.append("TensorRT did not load; running on CUDA without it")
        self.fallback = "; ".join(notes) or None
        if proto is None:
            self.info = read_metadata(self.path, self.session.get_inputs(), self.session.get_outputs(),
                                            dict(self.session.get_modelmeta().custom_metadata_map))
        self.style_vector: np.ndarray = np.zeros(len(self.info.style_names), np.float32)
        self.style_vector[0] = 1.0
        if style is not None:
            self.set_style(style)
        self.times = StageTimes()
        self._warm_shapes: set[tuple[int, int, int]] = set()
        # Lanes: on the CPU, sessions that run consecutive batches side by side; on CUDA, batches in
        # flight in the one session (ONNX Runtime runs concurrent runs of a session on one GPU), so the
        # GPU works on the next batch while the caller finishes the last (default 2; 1 waits for each).
        self.lanes: int = (lanes or CUDA_IN_FLIGHT) if self.device == "cuda" else cpu_lanes
        self._sessions: list[object] = [self.session]
        if self.device == "cuda":
            self._sessions = [self.session] * self.lanes
        elif self.lanes > 1:
            if want_cuda:  # fell back to the CPU: lane 0 was built with every core for itself
                self._sessions = []
            threads_each = lane_threads(cores, self.lanes)
            while len(self._sessions) < self.lanes:
                opts = self._session_options(threads_each)
                self._sessions.append(ort.InferenceSession(source, sess_options=opts, providers=[_CPU]))
            self.session = self._sessions[0]
        self._lane_jobs: list[PendingFrames | None] = [None] * self.lanes
        self._next_lane = 0

    def _load_proto(self):  # noqa: ANN202 - onnx.ModelProto or None
        """The model as a protobuf, or None where the ``onnx`` package is not installed."""
        try:
            import onnx
        except ImportError:
            return None
        try:
            return onnx.load(str(self.path))
        except Exception as exc:  # noqa: BLE001 - DecodeError, OSError, ...: not a model
            raise ModelError(f"{self.path} is not a valid ONNX model ({_first_line(exc)[:200]})") from None

    def _prepared_model(self, proto, *, fp16: bool, wrap: bool) -> tuple[bytes, bool, str]:  # noqa: ANN001
        """The serialized model to run: converted to fp16 first (its float32 edges kept), then wrapped
        for uint8 frames. Returns it, whether it is wrapped, and its precision."""
        model = graph_io_module.to_fp16(proto) if fp16 else proto
        wrapped = False
        if wrap:
            try:
                model = graph_io_module.wrap_uint8(model, input_range=self.info.input_range, channels=self.info.channels,
                                                   phases=self.info.output_phases)
                wrapped = True
            except ValueError:  # an old opset: the pre/post of this module do it
                pass
        return model.SerializeToString(), wrapped, "fp16" if fp16 else "fp32"

    def _session_options(self, threads: int):  # noqa: ANN202 - onnxruntime.SessionOptions
        opts = self._ort.SessionOptions()
        # Decode and encode run in their own threads but are light next to the network; each session
        # gets its share of the cores for intra-op parallelism and no inter-op pool (the graph is a chain).
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = self._ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = self._ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # No spin-waiting between ops: the ops of this net are long convolutions (wake-up latency is
        # negligible), while spinning workers would take the few cores the decode/encode threads need.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # ORT logs a provider-load failure as an error before it falls back; we detect the fallback
        # ourselves and say it in one line, so keep its logger quiet.
        opts.log_severity_level = 3
        return opts

    # ---------------------------------------------------------------- styles

    def set_style(self, style: str | Sequence[float] | np.ndarray) -> np.ndarray:
        """Pick the style of the next batches: a name, a blend ``a:0.7,b:0.3`` (relative weights), or a
        vector of one weight per style (``info.style_names``). The same session runs every style, so
        this is instant. A ModelError (one line) for an unknown name, a wrong length or a negative
        weight. Returns the vector (normalised to sum 1)."""
        names = self.info.style_names
        try:
            if isinstance(style, str):
                vector = modelmeta.style_vector(style, names)
            else:
                vector = modelmeta.check_style_vector(style, len(names))
        except ValueError as exc:
            raise ModelError(f"{self.path.name}: {exc}") from None
        self.style_vector = vector
        return vector

    def style_description(self) -> str:
        """The current style for people: its name, or the blend's parts."""
        parts = [(n, float(w)) for n, w in zip(self.info.style_names, self.style_vector) if w > 0]
        if len(parts) == 1:
            return parts[0][0]
        return ",".join(f"{n}:{w:.2f}" for n, w in parts)

    def _feeds(self, x: np.ndarray) -> dict[str, np.ndarray]:
        if not self.info.style_input:
            return {modelmeta.INPUT_NAME: x}
        # a copy: a batch in flight keeps the style it was submitted with
        return {modelmeta.INPUT_NAME: x, modelmeta.STYLE_INPUT: self.style_vector.copy()}

    # ---------------------------------------------------------------- pre / run / post

    def padding(self, height: int, width: int) -> tuple[int, int]:
        """Rows and columns added in all (the model's border on every side, then bottom and right up to
        the size multiple): the network sees (height + rows) x (width + columns)."""
        b, m = self.info.border, self.info.size_multiple
        return 2 * b + (-(height + 2 * b)) % m, 2 * b + (-(width + 2 * b)) % m

    def preprocess(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """HxWx3 uint8 RGB frames (all one size) -> padded float32 NCHW batch in the model's range."""
        h, w = images[0].shape[:2]
        ph, pw = self.padding(h, w)
        b = self.info.border
        if ph or pw:
            # Reflection keeps the padded border looking like the picture (no dark seam leaking into the
            # convolutions); it needs the pad to be smaller than the side, so tiny frames use edge copy.
            kind = cv2.BORDER_REFLECT_101 if (ph - b < h and pw - b < w and b < min(h, w)) else cv2.BORDER_REPLICATE
            images = [cv2.copyMakeBorder(img, b, ph - b, b, pw - b, kind) for img in images]
        # Plane by plane: split the interleaved uint8 image (cheap), then convert and scale each plane
        # straight into its place in the NCHW batch. Converting the transposed view instead walked the
        # memory across: 10.0 ms against 0.7 ms a 640x480 frame (672x512 with the margin) on 2 cores.
        n, (hp, wp) = len(images), images[0].shape[:2]
        x = np.empty((n, 3, hp, wp), np.float32)
        scale, lo = np.float32(self.info.scale), np.float32(self.info.input_range[0])
        order = (2, 1, 0) if self.info.channels == "BGR" else (0, 1, 2)
        for i, img in enumerate(images):
            planes = cv2.split(img)
            for c, src in enumerate(order):
                np.multiply(planes[src], scale, out=x[i, c], casting="unsafe")
        if lo:
            x += lo
        return x

    def postprocess(self, y: np.ndarray, height: int, width: int) -> list[np.ndarray]:
        """float32 NCHW model output (or its 2×2 phases, modelmeta.OUTPUT_PHASES) -> list of HxWx3
        uint8 RGB, cropped back to the frame size.

        With OpenCV, all planes of a frame as one image: clamp below at the range's low end, then one
        saturating, rounding scale to uint8; then interleave the cropped planes. At 640×360 that is
        0.4 ms against 2.7 ms for the numpy chain (scale, clip, rint, astype, transpose), which
        matters for the fast tier's ~30 ms frames."""
        lo = float(self.info.input_range[0])
        alpha = 1.0 / self.info.scale
        colours = (2, 1, 0) if self.info.channels == "BGR" else (0, 1, 2)
        b = self.info.border
        out = []
        for planes in y:
            c, h, w = planes.shape
            flat = np.ascontiguousarray(planes).reshape(c * h, w)
            # convertScaleAbs takes |x·alpha + beta|: clamping at lo first keeps that the identity.
            u8 = cv2.convertScaleAbs(cv2.max(flat, lo), alpha=alpha, beta=-lo * alpha).reshape(c, h, w)
            if self.info.output_phases == 2:
                out.append(self._interleave_phases(u8, height, width, colours))
            else:
                out.append(cv2.merge([u8[colour, b : b + height, b : b + width] for colour in colours]))
        return out

    def _interleave_phases(self, u8: np.ndarray, height: int, width: int, colours: tuple[int, ...]) -> np.ndarray:
        """The picture from 12 uint8 planes of 2×2 phases (modelmeta.OUTPUT_PHASES), cropped: the six
        planes of each row phase (both column phases, three colours each) are merged into every other
        row of the picture, since a merged pixel of six channels is two neighbouring RGB pixels."""
        b = self.info.border
        top, shift = b // 2, b % 2  # the border in half-resolution rows, and the odd row it leaves
        rows, cols = (shift + height + 1) // 2, (shift + width + 1) // 2
        u8 = u8[:, top : top + rows, top : top + cols]
        image = np.empty((rows, 2, 2 * cols, 3), np.uint8)
        for a in (0, 1):
            merged = cv2.merge([u8[(2 * a + col) * 3 + colour] for col in (0, 1) for colour in colours])
            image[:, a] = merged.reshape(rows, 2 * cols, 3)
        image = image.reshape(2 * rows, 2 * cols, 3)
        if shift or image.shape[:2] != (height, width):
            image = np.ascontiguousarray(image[shift : shift + height, shift : shift + width])
        return image

    @property
    def _output_name(self) -> str:
        return graph_io_module.FRAMES_OUT if self.graph_io else modelmeta.OUTPUT_NAME

    def _graph_feeds(self, images: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        """The inputs of the wrapped model (graph_io.wrap_uint8): the frames stacked as they are (a copy,
        which the runtime may read after ``submit`` returns), and where to pad and crop."""
        h, w = images[0].shape[:2]
        ph, pw = self.padding(h, w)
        b = self.info.border
        # the same test as ``preprocess``: mirroring needs the pad to be smaller than the side
        mirror = ph - b < h and pw - b < w and b < min(h, w)
        if not mirror:  # a frame of a few pixels: edge copies made here, the graph pads nothing
            images = [cv2.copyMakeBorder(img, b, ph - b, b, pw - b, cv2.BORDER_REPLICATE) for img in images]
        feeds = {graph_io_module.FRAMES: np.stack(images), **graph_io_module.geometry(h, w, b, ph, pw, mirror)}
        if self.info.style_input:
            # a copy: a batch in flight keeps the style it was submitted with
            feeds[modelmeta.STYLE_INPUT] = self.style_vector.copy()
        return feeds

    def _run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """One inference call, waited for. (No IO binding on CUDA: frames start and end in host memory,
        so binding copies in and out just as ``run`` does; with graph_io the copies are uint8.)"""
        try:
            return self.session.run([self._output_name], feeds)[0]
        except Exception as exc:  # noqa: BLE001 - out of memory, cuDNN status, ...: one line for the user
            where = " on CUDA" if self.device == "cuda" else ""
            raise ModelError(f"{self.path.name}: inference failed{where}: {_first_line(exc)[:300]}") from None

    def warmup(self, height: int, width: int, batch: int = 1) -> float:
        """Run once at this frame size on every lane, so allocation / kernel selection is not billed to
        the first frames.

        Returns the seconds it took; a size already warmed is skipped.
        """
        ph, pw = self.padding(height, width)
        key = (batch, height + ph, width + pw)
        if key in self._warm_shapes:
            return 0.0
        t0 = time.perf_counter()
        if self.graph_io:
            feeds = self._graph_feeds([np.zeros((height, width, 3), np.uint8)] * batch)
        else:
            feeds = self._feeds(np.zeros((batch, 3, height + ph, width + pw), np.float32))
        if self.lanes == 1:
            self._run(feeds)
        else:
            jobs = [self._start(lane, feeds, PendingFrames(self, batch, height, width, feeds)) for lane in range(self.lanes)]
            for job in jobs:
                job.output()
        self._warm_shapes.add(key)
        return time.perf_counter() - t0

    def _prepare(self, images: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        """Check the frames and make the session's inputs (billed as preprocess)."""
        h, w = images[0].shape[:2]
        for img in images:
            if img.shape != (h, w, 3) or img.dtype != np.uint8:
                raise ValueError(f"frames in a batch must all be {h}x{w}x3 uint8, got {img.shape} {img.dtype}")
        t0 = time.perf_counter()
        feeds = self._graph_feeds(images) if self.graph_io else self._feeds(self.preprocess(images))
        self.times.seconds["preprocess"] += time.perf_counter() - t0
        return feeds

    def stylize(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Stylize a batch of same-size HxWx3 uint8 RGB frames and wait for it; returns frames of the
        same size. (One call at a time uses all the cores a lane has; ``submit`` overlaps batches.)"""
        if not images:
            return []
        return self._submit(images, wait=True).result()

    def submit(self, images: Sequence[np.ndarray]) -> PendingFrames:
        """Start stylizing a batch and return at once where the runtime can run it beside others: on the
        CPU each of ``lanes`` sessions runs one batch at a time on its own share of the cores; on CUDA
        the one session takes up to ``lanes`` batches at once. A submit to a lane still busy waits for
        that lane's previous batch, so at most ``lanes`` batches are in flight. Collect results in the
        order of submission with ``PendingFrames.result()``.

        Why: ONNX Runtime's intra-op pool synchronises its threads after every operator, and on a busy
        2-core machine one run on both cores was only 1.0-1.6x as fast as a run on one; two single-
        threaded runs side by side need no synchronisation, and the caller's own work (pre/post-
        processing, smoothing) overlaps the network instead of leaving cores idle. The fast tier at
        640x480, a loop of frames: 19.8-21.1 frames/s with one lane, 27.9-29.9 with two (2 cores).
        On CUDA the same overlap keeps the GPU busy while the caller smooths and encodes. With one
        lane this runs at once.
        """
        if not images:
            raise ValueError("submit needs at least one frame")
        return self._submit(images, wait=self.lanes == 1)

    def _submit(self, images: Sequence[np.ndarray], wait: bool) -> PendingFrames:
        """Preprocess and run ``images``: at once on lane 0 (``wait``), or started on the next lane."""
        feeds = self._prepare(images)
        count, height, width = len(images), images[0].shape[0], images[0].shape[1]
        if wait:
            job = PendingFrames(self, count, height, width, feeds)
            job._complete([self._run(feeds)], None, "")
            return job
        lane = self._next_lane
        self._next_lane = (lane + 1) % self.lanes
        previous = self._lane_jobs[lane]
        if previous is not None:
            previous.wait()  # round robin: this lane's batch is the oldest in flight
        # made after the wait, so its time in the lane does not include the previous batch's
        job = self._lane_jobs[lane] = PendingFrames(self, count, height, width, feeds)
        return self._start(lane, feeds, job)

    def _start(self, lane: int, feeds: dict[str, np.ndarray], job: PendingFrames) -> PendingFrames:
        # ONNX Runtime runs this on a thread of the lane session's own pool and calls back from there
        session = self._sessions[lane]
        session.run_async([self._output_name], feeds, job._complete, None)  # type: ignore[attr-defined]
        return job

    def wait_idle(self) -> None:
        """Wait for every batch still in the runtime (before the stylizer or its inputs go away)."""
        for job in self._lane_jobs:
            if job is not None:
                job.wait()

    def _finish(self, job: PendingFrames, y: np.ndarray) -> list[np.ndarray]:
        h, w, p, b = job.height, job.width, self.info.output_phases, self.info.border
        if self.graph_io:
            if y.shape != (job.count, h, w, 3) or y.dtype != np.uint8:
                raise ModelError(f"{self.path.name}: output {y.dtype} {tuple(y.shape)} does not match {job.count} frames of {h}x{w}")
        else:
            fits = y.ndim == 4 and y.shape[0] == job.count and y.shape[1] == 3 * p * p
            if not fits or y.shape[2] * p < h + 2 * b or y.shape[3] * p < w + 2 * b:
                raise ModelError(f"{self.path.name}: output shape {tuple(y.shape)} does not match {job.count} frames of "
                                 f"{h}x{w}" + (f" in {p}x{p} phases" if p > 1 else ""))
        t0 = time.perf_counter()
        out = list(y) if self.graph_io else self.postprocess(y, h, w)
        s = self.times.seconds
        s["postprocess"] += time.perf_counter() - t0
        s["inference"] += job.model_seconds
        self.times.frames += job.count
        self.times.calls += 1
        return out

    def describe(self) -> str:
        """One line for the user: which style on which device."""
        where = f"{self.device.upper()}:{self.device_index}" if self.device_index else self.device.upper()
        extra = ", fp16" if self.precision == "fp16" else ""
        text = f"style {self.style_description()!r} on {where} ({self.provider}{extra})"
        return f"{text}; {self.fallback}" if self.fallback else text
