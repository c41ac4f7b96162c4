"""Style and content distances (definitions in ../shared/DESIGN.md) of shipped or given style models over a
folder of photos, with the unstylized input as the reference row. Runs the exported ONNX file through the
runtime stylizer, i.e. exactly what users get.

    python tools/evaluate.py --photos ../shared/data/content/val --styles ../shared/data/styles [MODEL ...]

MODEL is a zoo name or an .onnx path (default: every shipped style). The style image of a model is found
in --styles by the file name its training record (or metadata) gives.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from realtime.models import list_styles, resolve_style  # noqa: E402
from realtime.stylizer import Stylizer  # noqa: E402
from realtime.train.evaluate import EVAL_LONG_SIDE, evaluate_folder, load_style_grams  # noqa: E402
from realtime.train.images import to_uint8  # noqa: E402
from realtime.train.vgg import load_vgg  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="*")
    p.add_argument("--photos", required=True)
    p.add_argument("--styles", required=True, help="folder of the style paintings")
    p.add_argument("--long-side", type=int, default=EVAL_LONG_SIDE)
    a = p.parse_args()
    vgg = load_vgg()
    styles = [resolve_style(m) for m in a.models] if a.models else list_styles()
    print(f"photos: {a.photos} (long side {a.long_side}); style distance = Σ_l mean (G_l(y) − G_l(style))², "
          "content distance = mean (relu3_3(y) − relu3_3(x))²")
    print(f"{'style':<20} {'row':<10} {'style dist':>12} {'content dist':>13} {'s/photo':>8}")
    for style in styles:
        record = json.loads(style.record.read_text()) if style.record.is_file() else {}
        settings = record.get("settings", {})
        image = Path(a.styles) / record.get("style_image", Path(settings.get("style_image", style.name + ".jpg")).name)
        grams = load_style_grams(vgg, image, settings.get("style_size", 384))
        stylizer = Stylizer(style.path, device="auto")

        def run(x: torch.Tensor) -> torch.Tensor:
            out = stylizer.stylize([to_uint8(x)])[0]
            return torch.from_numpy(out.astype(np.float32) / 255.0).permute(2, 0, 1).unsqueeze(0)

        t = time.perf_counter()
        model = evaluate_folder(vgg, run, a.photos, grams, a.long_side)
        per = (time.perf_counter() - t) / max(model["photos"], 1)
        base = evaluate_folder(vgg, lambda x: x, a.photos, grams, a.long_side)
        print(f"{style.name:<20} {'input':<10} {base['style_distance']:>12.4g} {base['content_distance']:>13.4g} {'':>8}")
        print(f"{style.name:<20} {'model':<10} {model['style_distance']:>12.4g} {model['content_distance']:>13.4g} {per:>8.2f}",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
