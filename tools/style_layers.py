"""Issue 18's style distance split by loss-network layer: which of the four Gram terms a model's remaining
distance to a painting is made of (tools/evaluate.py prints only their sum).

    python tools/style_layers.py composition_viii trained/fast/paintings.onnx trained/paintings.onnx

Each term is ÷ the unstylized photos' total, so a model's terms add up to evaluate.py's "style/in" column
for the same photos, long side and painting size (defaults: the first 4 of ../shared/data/content/val at
384 px, the painting at 512 px). A layer where a model stays far from the painting while another model
gets close says where its strokes fall short (relu1_2, relu2_2: colour and fine texture; relu3_3,
relu4_3: shapes and larger patterns).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from realtime.errors import RealtimeError  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"


def layer_distances(style: str, models: list[Path], photos: Path, styles: Path, long_side: int, first: int,
                    style_size: int) -> dict[str, list[float]]:
    """Per row ("input", then each model): the Gram distance of each style layer, summed over the photos
    and ÷ the input's total (the terms realtime.train.evaluate computes for its style distance)."""
    import numpy as np

    from realtime.stylizer import Stylizer
    from realtime.train.evaluate import evaluate_styles, load_style_grams, stylizer_method
    from realtime.train.images import list_images
    from realtime.train.vgg import load_vgg

    painting = next((p for p in sorted(styles.glob(f"{style}.*"))), None)
    if painting is None:
        raise RealtimeError(f"no painting named {style} in {styles}")
    vgg = load_vgg().eval()
    grams = load_style_grams(vgg, painting, style_size)
    methods = {"input": (lambda x: x, grams)}
    for model in models:
        s = Stylizer(model, device="cpu")
        if style not in s.info.style_names:
            raise RealtimeError(f"{model} has no style {style!r}")
        s.set_style(style)
        methods[str(model)] = (stylizer_method(s), grams)
    chosen = list_images(str(photos))[:first]
    if not chosen:
        raise RealtimeError(f"no photos in {photos}")
    rows = evaluate_styles(vgg, methods, chosen, long_side)
    totals = {name: np.sum([r["style_terms"] for r in per_photo], axis=0) for name, per_photo in rows.items()}
    scale = totals["input"].sum()
    return {name: list(v / scale) for name, v in totals.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("style", help="the painting's name (its file name in --styles, no extension)")
    p.add_argument("models", nargs="+", type=Path, help="ONNX models that hold that style")
    p.add_argument("--photos", type=Path, default=SHARED / "content" / "val")
    p.add_argument("--styles", type=Path, default=SHARED / "styles")
    p.add_argument("--long-side", type=int, default=384)
    p.add_argument("--first", type=int, default=4, help="the first N photos")
    p.add_argument("--style-size", type=int, default=512, help="the painting's long side for its Gram targets")
    a = p.parse_args(argv)
    from realtime.train.losses import STYLE_LAYERS

    try:
        rows = layer_distances(a.style, a.models, a.photos, a.styles, a.long_side, a.first, a.style_size)
    except (RealtimeError, OSError) as exc:
        print(f"style_layers: error: {exc}", file=sys.stderr)
        return 1
    width = max(len(n) for n in rows)
    print(f"{'row':{width}}  " + "  ".join(f"{n:>8}" for n in STYLE_LAYERS) + "     total")
    for name, terms in rows.items():
        print(f"{name:{width}}  " + "  ".join(f"{t:8.4f}" for t in terms) + f"  {sum(terms):8.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
