"""Seconds per training iteration of the trainer on this machine: fp32 vs bf16 autocast at several crops.

    python tools/train_speed.py --crops 128 192 256 --batch 4 --iterations 5
    python tools/train_speed.py --crops 256 --batch 1 --precisions fp32 [--plain-output-conv]
Prints one table (median seconds per iteration after one warm-up iteration).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from realtime.train.config import TrainConfig
from realtime.train.model import TransformNet
from realtime.train.vgg import load_vgg
from realtime.train.losses import STYLE_LAYERS, content_loss, gram, style_loss, total_variation
from realtime.train.trainer import _autocast


def measure(vgg, crop: int, batch: int, precision: str, iterations: int) -> float:
    torch.manual_seed(0)
    cfg = TrainConfig()
    model = TransformNet(cfg.width, cfg.depth)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    grams = {n: gram(torch.rand(1, c, 8, 8)) for n, c in zip(STYLE_LAYERS, (64, 128, 256, 512))}
    weights = {n: 1.0 for n in STYLE_LAYERS}
    times = []
    for i in range(iterations + 1):
        x = torch.rand(batch, 3, crop, crop)
        t = time.perf_counter()
        with _autocast(precision, torch.device("cpu")):
            y = model(x)
            fy = vgg(y, STYLE_LAYERS)
            with torch.no_grad():
                fx = vgg(x, ["relu2_2"])
            loss = 1e5 * content_loss(fy, fx, ["relu2_2"]) + 1e10 * style_loss(fy, grams, weights) + total_variation(y.float())
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i:
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--crops", type=int, nargs="+", default=[128, 192, 256])
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--iterations", type=int, default=5)
    p.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    p.add_argument("--plain-output-conv", action="store_true",
                   help="train the 9×9 output convolution in the default layout (model.ChannelsLastConv2d's baseline)")
    a = p.parse_args()
    if a.plain_output_conv:
        from torch import nn

        from realtime.train.model import ChannelsLastConv2d

        ChannelsLastConv2d.forward = nn.Conv2d.forward  # type: ignore[method-assign]
    vgg = load_vgg(random_init=True)  # speed does not depend on the weights' values
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability {torch.backends.cpu.get_cpu_capability()}, batch {a.batch}")
    print(f"{'crop':>6} " + " ".join(f"{p + ' s/it':>12}" for p in a.precisions))
    for crop in a.crops:
        row = [measure(vgg, crop, a.batch, prec, a.iterations) for prec in a.precisions]
        print(f"{crop:>6} " + " ".join(f"{v:>12.2f}" for v in row), flush=True)


if __name__ == "__main__":
    main()
