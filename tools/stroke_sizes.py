"""A contact sheet of one frame stylized at several stroke sizes, to judge the look a size gives.

    python tools/stroke_sizes.py PHOTO OUT.png [--style NAME|FILE.onnx[@style]] [--height 1080]
        [--strokes 2 1.5 1 0.5] [--detail 0 0.6 1]

The photo is first scaled to ``--height`` (a 1080p frame by default), then for each ``--stroke`` value
stylized at the size restyle-video would pick (``realtime.strokes``) and scaled back up with each
``--detail`` amount of the frame's own luminance detail (0: plain cubic upscale); the last column is
``--full-size``. Each cell shows the whole frame shrunk, and a 1:1 crop of its centre below it, so the
strokes and the edges can be seen at the size a viewer sees them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("photo", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--style", default=None)
    p.add_argument("--height", type=int, default=1080)
    p.add_argument("--strokes", type=float, nargs="+", default=[2.0, 1.0, 0.5])
    p.add_argument("--detail", type=float, nargs="+", default=[0.0, 0.6])
    p.add_argument("--cell", type=int, default=480, help="width of each cell")
    a = p.parse_args()
    import cv2
    import numpy as np

    from realtime.image_io import read_image, write_image
    from realtime.models import resolve_style
    from realtime.pipeline import processing_size, stroke_short_side_for
    from realtime.sheet import contact_sheet
    from realtime.strokes import upscale_with_detail
    from realtime.stylizer import Stylizer

    style = resolve_style(a.style, "full")
    stylizer = Stylizer(style.path, device="cpu", lanes=1, style=style.mix or None)
    photo = read_image(a.photo)
    h0, w0 = photo.shape[:2]
    frame = cv2.resize(photo, (round(w0 * a.height / h0), a.height), interpolation=cv2.INTER_CUBIC)
    h, w = frame.shape[:2]
    cw = a.cell
    rows = []
    for detail in a.detail:
        row = []
        for stroke in [*a.strokes, None]:
            size = processing_size(w, h, None, stroke_short_side_for(stylizer, None, stroke))
            content = cv2.resize(frame, size, interpolation=cv2.INTER_AREA) if size != (w, h) else frame
            styled = stylizer.stylize([content])[0]
            out = upscale_with_detail(frame, content, styled, detail) if size != (w, h) else styled
            whole = cv2.resize(out, (cw, round(h * cw / w)), interpolation=cv2.INTER_AREA)
            y, x = (h - cw // 2) // 2, (w - cw) // 2
            crop = out[y:y + cw // 2, x:x + cw]
            label = (f"stroke {stroke:g}: {size[0]}x{size[1]}" if stroke is not None else f"full size {w}x{h}") + f", detail {detail:g}"
            row.append((label, np.vstack([whole, crop])))
        rows.append(row)
    sheet = contact_sheet(rows, tile_height=rows[0][0][1].shape[0])
    write_image(a.out, sheet, overwrite=True)
    print(f"wrote {a.out} ({stylizer.info.style_name})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
