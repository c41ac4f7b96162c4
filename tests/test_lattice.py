"""The measure and the training penalty of the 4-pixel grid locked to the networks' stride
(realtime.train.losses.stride_lattice, lattice_share, lattice_loss)."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from realtime.train.losses import LATTICE_TILE, lattice_loss, lattice_share, stride_lattice  # noqa: E402


def _smooth(h: int = 128, w: int = 192) -> torch.Tensor:
    """A photo-like picture without pixel-level detail: two ramps and a soft disc."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    disc = torch.exp(-((yy - 0.5) ** 2 + (xx - 0.4) ** 2) / 0.05)
    return torch.stack([0.2 + 0.6 * yy, 0.3 + 0.4 * xx, 0.1 + 0.8 * disc])[None]


def _grid(h: int = 128, w: int = 192, seed: int = 0) -> torch.Tensor:
    """A zero-mean pattern that repeats every 4 pixels."""
    g = torch.Generator().manual_seed(seed)
    cell = torch.rand(1, 3, 4, 4, generator=g)
    return (cell - cell.mean(dim=(2, 3), keepdim=True)).repeat(1, 1, h // 4, w // 4)


def test_share_is_one_for_a_pure_grid_and_near_zero_for_a_smooth_picture() -> None:
    assert lattice_share(_grid() + 0.5) > 0.99  # all but the 2-px edge, where the local mean is cut short
    assert lattice_share(_smooth()) < 0.002
    assert float(stride_lattice(torch.full((1, 3, 64, 64), 0.3))[0]) < 1e-12
    # white noise: each phase of a tile averages (64/4)² pixels, so about 1/256 of its variance is left
    noise = torch.rand(2, 3, 256, 256, generator=torch.Generator().manual_seed(1))
    assert 0.5 / 256 < lattice_share(noise) < 2 / 256
    # a faint grid over the picture shows: 0.05 of amplitude is a few grey levels
    assert lattice_share(_smooth() + 0.05 * _grid()) > 10 * lattice_share(_smooth())
    # a grid of another period is not the stride's (5 pixels: no phase of 4 repeats)
    five = torch.rand(1, 3, 5, 5, generator=torch.Generator().manual_seed(2)).repeat(1, 1, 26, 39)[:, :, :128, :192]
    assert lattice_share(five) < 0.05
    assert math.isnan(lattice_share(torch.rand(1, 3, LATTICE_TILE - 4, 200)))
    with pytest.raises(ValueError, match="tile"):
        stride_lattice(torch.rand(1, 3, 8, 8))


def test_the_penalty_removes_the_grid_and_leaves_the_picture() -> None:
    """Gradient steps on lattice_loss alone take the grid out of a picture and nothing else: the penalty
    has no gradient for what does not repeat with the stride's phase."""
    picture, grid = _smooth(), 0.1 * _grid()
    x = (picture + grid).requires_grad_(True)
    before = float(lattice_loss(x.detach()))
    # the loss is a mean over every pixel and channel: this step size removes about half of it a step
    optimiser = torch.optim.SGD([x], lr=x.numel() / 4)
    for _ in range(30):
        optimiser.zero_grad()
        lattice_loss(x).backward()
        optimiser.step()
    assert float(lattice_loss(x.detach())) < 1e-3 * before
    # what is left is the picture: the grid is gone, the picture's own variation kept to 1 % of the grid's
    assert float(((x.detach() - picture) ** 2).mean()) < 0.01 * float((grid ** 2).mean()) + 1e-5
    # crops smaller than a tile are measured as one tile (a 32-px training crop), and a crop a tile does
    # not divide by tiles that do: a grid in the bottom-right corner of a 96-px crop counts
    assert float(lattice_loss(_grid(32, 32) + 0.5)) > 0
    corner = torch.full((1, 3, 96, 96), 0.5)
    corner[:, :, 64:, 64:] += _grid(32, 32)
    assert float(lattice_loss(corner)) > 0.02 * float((_grid(32, 32) ** 2).mean())  # 0 with a 64-px tile


def test_the_evaluation_reports_the_grid_share_of_each_output() -> None:
    """evaluate_photos gives each photo's grid share (the column "grid" of tools/evaluate.py): the photo
    itself near 0, the same photo with a 4-pixel grid laid over it clearly above."""
    from realtime.train.evaluate import evaluate_photos, summarise
    from realtime.train.vgg import load_vgg
    import numpy as np
    from PIL import Image
    import tempfile
    from pathlib import Path

    vgg = load_vgg(random_init=True)
    with tempfile.TemporaryDirectory() as tmp:
        photo = Path(tmp) / "smooth.png"
        Image.fromarray((_smooth()[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(photo)
        grams = {n: torch.zeros(1, c, c) for n, c in (("relu1_2", 64), ("relu2_2", 128), ("relu3_3", 256), ("relu4_3", 512))}
        own = summarise(evaluate_photos(vgg, lambda x: x, [photo], grams, long_side=192))
        gridded = summarise(evaluate_photos(vgg, lambda x: (x + 0.1 * _grid(*x.shape[-2:])).clamp(0, 1), [photo], grams,
                                            long_side=192))
    assert own["grid"] < 0.002 and gridded["grid"] > 0.03
