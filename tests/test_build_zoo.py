"""tools/build_zoo.py hands each config the loss network that config names."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

from realtime.train.vgg import load_vgg  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _build_zoo_module():
    spec = importlib.util.spec_from_file_location("build_zoo_under_test", ROOT / "tools" / "build_zoo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


class _Stop(Exception):
    pass


def test_each_config_is_trained_against_the_loss_network_it_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    zoo = _build_zoo_module()
    conf = tmp_path / "conf"
    conf.mkdir()
    common = {"style_image": "p.png", "width": 8, "depth": 1, "iterations": 1}
    (conf / "a16.json").write_text(json.dumps(common | {"name": "a16"}))
    (conf / "b19.json").write_text(json.dumps(common | {"name": "b19", "loss_net": "vgg19",
                                                        "content_layers": ["relu4_2"], "style_layer_weights": {"relu1_1": 1.0}}))
    (conf / "c16.json").write_text(json.dumps(common | {"name": "c16"}))
    loaded: list[str] = []
    given: dict[str, str] = {}

    def fake_load_vgg(weights=None, arch="vgg16", **kw):  # noqa: ANN001, ANN003, ANN202
        loaded.append(arch)
        return load_vgg(random_init=True, arch=arch)

    class RecordingTrainer:
        def __init__(self, cfg, resume=None, vgg=None):  # noqa: ANN001
            given[cfg.name] = vgg.arch
            raise _Stop

    monkeypatch.setattr(zoo, "load_vgg", fake_load_vgg)
    monkeypatch.setattr(zoo, "Trainer", RecordingTrainer)
    for only in ("a16", "b19", "c16"):
        monkeypatch.setattr(sys, "argv", ["build_zoo.py", "--data", str(tmp_path), "--val", str(tmp_path), "--styles",
                                          str(tmp_path), "--conf", str(conf), "--out", str(tmp_path / "runs"),
                                          "--trained", str(tmp_path / "trained"), "--only", only])
        with pytest.raises(_Stop):
            zoo.main()
    assert given == {"a16": "vgg16", "b19": "vgg19", "c16": "vgg16"}
    assert loaded == ["vgg16", "vgg19", "vgg16"]  # each loaded when first needed (one main() per style here)
