"""Temporal stability of a style model with each smoothing mode, on real clips: one table.

For every clip: decode the first N frames, scale to --size on the long side, stylize each frame alone
(the per-frame output), then run the smoothers (off, blend, flow) over the per-frame output and
measure, as defined in DESIGN.md ("How we measure"):

- warping error (Lai et al. 2018; :mod:`realtime.temporal_metrics`), with the flow computed once per
  clip on the input frames; the row "input" is the input video's own warping error, the floor that
  real motion, noise and flow error leave;
- ghosting: distance of the smoothed output to the per-frame output of the same frame: "ghost L1" is
  the mean absolute pixel difference in [0, 1] (mean over frames, and the worst frame, which is where
  trails after fast motion or a cut show); with --vgg also the VGG16 relu3_3 feature MSE (the content
  distance of DESIGN.md), when the loss network's weights are installed;
- the smoother's own cost in ms per frame (median), beside the model's ms per frame.

With --temporal-model, a second model (e.g. trained with a temporal loss) adds rows "T:off", "T:flow"
and "T:flow-hq" whose ghosting and "÷ off" are measured against *its own* per-frame output; a last line
gives its warping error ÷ the first model's per-frame output as well (the two changes together).

    python tools/temporal_eval.py candy --frames 60
    python tools/temporal_eval.py path/to/model.onnx --clips bikes.mp4 --temporal-model other.onnx
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from realtime.temporal import MODES, make_smoother  # noqa: E402
from realtime.temporal_metrics import (  # noqa: E402
    PairFlow,
    ghosting_per_frame,
    pair_flows,
    warping_error_with_flows,
)

DEFAULT_CLIPS = ("diver.mov", "vtest.avi", "cup.mp4", "bikes.mp4")
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "videos"


def read_frames(path: Path, count: int, long_side: int) -> list[np.ndarray]:
    """The first ``count`` frames as RGB uint8, scaled (area) so the long side is ``long_side``."""
    import av

    frames: list[np.ndarray] = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            img = frame.to_ndarray(format="rgb24")
            h, w = img.shape[:2]
            k = long_side / max(h, w)
            if k != 1:
                size = (max(1, round(w * k)), max(1, round(h * k)))
                img = cv2.resize(img, size, interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR)
            frames.append(img)
            if len(frames) >= count:
                break
    if len(frames) < 2:
        raise SystemExit(f"{path}: fewer than two frames decoded")
    return frames


def load_stylizer(spec: str, tier: str = "full") -> tuple[Callable[[np.ndarray], np.ndarray], str]:
    """A per-frame stylize function for a zoo name (in ``tier``) or .onnx path, and its label."""
    from realtime.models import resolve_style
    from realtime.stylizer import Stylizer

    style = resolve_style(spec, tier)
    # A style of a multi-style file (``zoo.onnx@the_scream``, or a zoo name that lives in one) is
    # picked by its mix; without it the stylizer would run the file's default style.
    stylizer = Stylizer(style.path, device="auto", style=style.mix or None)
    return (lambda img: stylizer.stylize([img])[0]), f"{style.name} ({style.path})"


def vgg_relu3_3() -> Callable[[np.ndarray], np.ndarray] | None:
    """VGG16 relu3_3 features of an H×W×3 float RGB [0, 1] image, or None when the trainer's loss
    network or its weights are not available (then only the pixel ghosting column is shown)."""
    try:
        import torch

        from realtime.train.vgg import load_vgg

        net = load_vgg(allow_download=False)
    except Exception as exc:  # torch missing, weights missing: say so and carry on without
        print(f"note: VGG features unavailable ({type(exc).__name__}: {exc}); ghost VGG column omitted")
        return None

    def features(image: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None].float()
        with torch.inference_mode():
            return net(x, ["relu3_3"])["relu3_3"][0].numpy()

    return features


@dataclass
class Row:
    clip: str
    name: str
    warp: float
    ghost: float | None = None
    ghost_max: float | None = None
    ghost_vgg: float | None = None
    ms: float | None = None
    note: str = ""
    ratio: float | None = None  # warp ÷ the same model's per-frame ("off") warp


def smooth(mode: str, strength: float, inputs: Sequence[np.ndarray],
           perframe: Sequence[np.ndarray]) -> tuple[list[np.ndarray], float, str]:
    """Run one smoother; returns outputs, median ms/frame and a note (cuts the flow smoother saw)."""
    smoother = make_smoother(mode, strength)
    outputs, times = [], []
    for content, stylized in zip(inputs, perframe):
        t0 = time.perf_counter()
        outputs.append(smoother.process(content, stylized))
        times.append(time.perf_counter() - t0)
    note = f"resets={smoother.cuts}" if hasattr(smoother, "cuts") else ""
    return outputs, 1000 * statistics.median(times[1:]), note


def evaluate_clip(clip: Path, inputs: list[np.ndarray], models: list[tuple[str, Callable]], strength: float,
                  flows: list[PairFlow], features: Callable | None) -> tuple[list[Row], list[float]]:
    rows = [Row(clip.name, "input", warping_error_with_flows(flows, inputs))]
    model_ms: list[float] = []
    for prefix, stylize in models:
        t0 = time.perf_counter()
        perframe = [stylize(f) for f in inputs]
        model_ms.append(1000 * (time.perf_counter() - t0) / len(inputs))
        # Features of the per-frame output are the reference for every mode: compute them once.
        ref_features = [features(f.astype(np.float32) / 255.0) for f in perframe] if features else None
        modes = MODES if prefix == "" else tuple(m for m in MODES if m != "blend")
        off_warp = None
        for mode in modes:
            outputs, ms, note = smooth(mode, strength, inputs, perframe)
            ghosts = ghosting_per_frame(outputs, perframe)
            vgg = None
            if ref_features is not None:
                vgg = 0.0 if mode == "off" else float(np.mean([
                    np.mean(np.square(features(o.astype(np.float32) / 255.0) - r))
                    for o, r in zip(outputs, ref_features)]))
            warp = warping_error_with_flows(flows, outputs)
            off_warp = warp if mode == "off" else off_warp
            rows.append(Row(clip.name, prefix + mode, warp, float(np.mean(ghosts)), float(np.max(ghosts)), vgg, ms, note,
                            warp / off_warp if off_warp else None))
    return rows, model_ms


def print_table(rows: list[Row], with_vgg: bool) -> None:
    head = ["clip", "output", "warp err ×1e3", "÷ off", "ghost L1 ×1e3", "ghost L1 max ×1e3"]
    head += ["ghost VGG r3_3"] if with_vgg else []
    head += ["smooth ms/frame", "note"]
    fmt = lambda v, k=1000.0, d=2: "—" if v is None else f"{v * k:.{d}f}"  # noqa: E731
    lines = []
    for r in rows:
        cells = [r.clip, r.name, fmt(r.warp), fmt(r.ratio, 1.0, 3), fmt(r.ghost), fmt(r.ghost_max)]
        cells += [fmt(r.ghost_vgg, 1.0, 4)] if with_vgg else []
        cells += [fmt(r.ms, 1.0, 2), r.note]
        lines.append(cells)
    widths = [max(len(str(c)) for c in col) for col in zip(head, *lines)]
    print("  ".join(h.ljust(w) for h, w in zip(head, widths)))
    print("  ".join("-" * w for w in widths))
    last_clip = None
    for cells in lines:
        if last_clip is not None and cells[0] != last_clip:
            print()
        last_clip = cells[0]
        print("  ".join(str(c).ljust(w) for c, w in zip(cells, widths)))
    print_means("\nwarping error ÷ per-frame", [(r.name, r.ratio) for r in rows
                                              if r.ratio is not None and r.name not in ("off", "T:off")])
    # The temporal model against the first model's per-frame output: what the two changes give together.
    first_off = {r.clip: r.warp for r in rows if r.name == "off"}
    print_means("warping error ÷ the first model's per-frame output",
                [(r.name, r.warp / first_off[r.clip]) for r in rows if r.name.startswith("T:") and first_off.get(r.clip)])


def print_means(label: str, values: list[tuple[str, float]]) -> None:
    """One line: ``label``, then the mean over the clips of each output's values, in first-seen order."""
    by_name: dict[str, list[float]] = {}
    for name, v in values:
        by_name.setdefault(name, []).append(v)
    if by_name:
        print(f"{label}, mean over the clips: " + ", ".join(f"{n} {np.mean(v):.3f}" for n, v in by_name.items()))


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("style", help="zoo style name or path to a .onnx model")
    p.add_argument("--temporal-model", help="a second model (e.g. trained with a temporal loss) to compare")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of the clips (default: %(default)s)")
    p.add_argument("--clips", nargs="+", default=list(DEFAULT_CLIPS), help="clip file names or paths")
    p.add_argument("--frames", type=int, default=60, help="frames per clip from the start (default: %(default)s)")
    p.add_argument("--tier", choices=("full", "fast"), default="full", help="tier of a zoo style (default: %(default)s)")
    p.add_argument("--size", type=int, default=640, help="long side in pixels (default: %(default)s)")
    p.add_argument("--strength", type=float, default=0.8, help="smoothing strength (default: %(default)s)")
    p.add_argument("--flow-method", choices=("dis", "farneback"), default="dis",
                   help="flow for the warping-error metric (default: %(default)s)")
    p.add_argument("--vgg", action="store_true", help="also report ghosting as VGG16 relu3_3 feature MSE (slow on CPU)")
    args = p.parse_args(argv)

    models: list[tuple[str, Callable]] = []
    stylize, label = load_stylizer(args.style, args.tier)
    models.append(("", stylize))
    print(f"model: {label}")
    if args.temporal_model:
        t_stylize, t_label = load_stylizer(args.temporal_model)
        models.append(("T:", t_stylize))
        print(f"temporal model (rows T:...): {t_label}")
    features = vgg_relu3_3() if args.vgg else None

    rows: list[Row] = []
    for name in args.clips:
        clip = Path(name) if Path(name).is_file() else args.data / name
        inputs = read_frames(clip, args.frames, args.size)
        h, w = inputs[0].shape[:2]
        t0 = time.perf_counter()
        flows = pair_flows(inputs, args.flow_method)
        valid = np.mean([f.valid_fraction for f in flows])
        clip_rows, model_ms = evaluate_clip(clip, inputs, models, args.strength, flows, features)
        rows += clip_rows
        per_model = ", ".join(f"{ms:.0f}" for ms in model_ms)
        print(f"{clip.name}: {len(inputs)} frames at {w}×{h}; metric flow valid on {valid:.0%} of pixels; "
              f"model ms/frame: {per_model}; clip took {time.perf_counter() - t0:.0f} s", flush=True)
    print(f"\nstrength {args.strength}; warping error on RGB in [0, 1] with {args.flow_method} flow; "
          "ghost = distance of smoothed to per-frame output (0 for off by definition)\n")
    print_table(rows, features is not None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
