#!/usr/bin/env python
"""Write a float16 copy of a style model: weights and arithmetic in float16, the float32 ``input``,
``style`` and ``output`` kept (casts at the edges), metadata as it was. Any consumer of the model
contract (realtime.modelmeta) runs it as it runs the original; it is half the size.

    python tools/to_fp16.py trained/paintings.onnx paintings_fp16.onnx [--overwrite]

``restyle-video --precision fp16`` does the same conversion at load time (realtime.graph_io.to_fp16),
so a file is only needed elsewhere (another runtime, a smaller download). fp16 is for GPUs: ONNX
Runtime's CPU provider runs most float16 ops in float32 between casts, slower than the original.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main(argv: list[str] | None = None) -> int:
    from realtime.argtypes import OneLineParser

    p = OneLineParser(prog="to_fp16", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", type=Path)
    p.add_argument("output", type=Path)
    p.add_argument("--overwrite", "-y", action="store_true")
    a = p.parse_args(argv)

    from realtime.errors import OutputError, RealtimeError
    from realtime.outputs import discard, partial_file, publish
    from realtime.pipeline import check_output_folder, same_file

    tmp = None
    try:
        if a.output.suffix.lower() != ".onnx":
            raise OutputError(f"output {a.output} must end in .onnx")
        if same_file(a.model, a.output):
            raise OutputError(f"output {a.output} is the input model; choose another name")
        if a.output.exists() and not a.overwrite:
            raise OutputError(f"output {a.output} exists; use --overwrite to replace it")
        check_output_folder(a.output.parent)
        import onnx

        from realtime import graph_io
        from realtime.stylizer import Stylizer

        Stylizer(a.model, device="cpu", lanes=1, graph_io=False)  # a style model, or a one-line ModelError
        half = graph_io.to_fp16(onnx.load(str(a.model)))
        fd, tmp = partial_file(a.output)
        os.close(fd)
        onnx.save(half, str(tmp))
        Stylizer(tmp, device="cpu", lanes=1, graph_io=False)  # it loads as a style model before it gets its name
        publish(tmp, a.output, a.overwrite)
        tmp = None
    except RealtimeError as exc:
        print(f"to_fp16: error: {exc}", file=sys.stderr)
        return 1
    finally:
        discard(tmp)
    print(f"wrote {a.output} ({a.output.stat().st_size / 1e6:.1f} MB, from {a.model.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
