"""tools/device_train.py: the one command a lent GPU machine runs. It must work the first time there, so
its whole path (pack, train, stop, bring back a model ``restyle-train --resume`` reads) runs here on the CPU."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
Image = pytest.importorskip("PIL.Image")

from conftest import load_tool  # noqa: E402

from realtime.train.config import TrainConfig  # noqa: E402
from realtime.train.trainer import Trainer  # noqa: E402
from realtime.train.vgg import load_vgg  # noqa: E402


@pytest.fixture()
def shared_like(tmp_path: Path) -> Path:
    """A ../shared/data in miniature: content/train, content/val and two paintings (one PNG, one JPEG)."""
    rng = np.random.default_rng(0)
    root = tmp_path / "data"
    for sub, n in (("train", 3), ("val", 2)):
        (root / "content" / sub).mkdir(parents=True)
        for k in range(n):
            Image.fromarray((rng.random((72, 96, 3)) * 255).astype(np.uint8)).save(root / "content" / sub / f"p{k}.jpg")
    (root / "styles").mkdir()
    Image.fromarray((rng.random((80, 120, 3)) * 255).astype(np.uint8)).save(root / "styles" / "b_stripes.png")
    Image.fromarray((rng.random((90, 60, 3)) * 255).astype(np.uint8)).save(root / "styles" / "a_dots.jpg")
    return root


@pytest.fixture()
def tool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201 - a module
    module = load_tool("device_train", monkeypatch)
    monkeypatch.setattr(module, "PACK", tmp_path / "pack")
    monkeypatch.setattr(module, "STYLE_SIZE", 64)
    vgg = tmp_path / "vgg.pt"
    torch.save(load_vgg(random_init=True).state_dict(), vgg)
    module.test_vgg = vgg
    return module


def test_pack_writes_what_training_reads(tool, shared_like: Path, tmp_path: Path) -> None:
    assert tool.main(["pack", "--data", str(shared_like), "--vgg-weights", str(tool.test_vgg)]) == 0
    pack = tmp_path / "pack"
    assert sorted(p.name for p in (pack / "styles").iterdir()) == ["a_dots.jpg", "b_stripes.png"]  # names kept
    # the painting at the training size, a PNG one exactly as the trainer's own resize makes it
    from realtime.train.images import open_rgb, resize_long_side

    packed = np.asarray(open_rgb(pack / "styles" / "b_stripes.png"))
    assert np.array_equal(packed, np.asarray(resize_long_side(open_rgb(shared_like / "styles" / "b_stripes.png"), 64)))
    assert len(list((pack / "photos").iterdir())) == 3 and len(list((pack / "val").iterdir())) == 2
    vgg = torch.load(pack / "vgg16_relu4_3_fp16.pt", weights_only=True)
    assert all(v.dtype == torch.float16 for v in vgg.values()) and "21.weight" in vgg and "24.weight" not in vgg  # to relu4_3
    assert tool.main(["pack", "--data", str(tmp_path / "nowhere")]) == 1


def test_run_trains_stops_and_brings_back_a_resumable_model(tool, shared_like: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    assert tool.main(["run", "--out", str(out)]) == 1  # nothing packed yet
    assert tool.main(["pack", "--data", str(shared_like), "--vgg-weights", str(tool.test_vgg)]) == 0
    monkeypatch.setattr(tool, "newest_stage", lambda: None)  # from scratch: the real stage is another size
    code = tool.main(["run", "--out", str(out), "--work", str(tmp_path / "work"), "--iterations", "3", "--batch", "2",
                      "--leave-out", "--", "--width", "8", "--depth", "1", "--crop", "32", "--precision", "fp32"])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["iteration"] == 3 and summary["trainer_exit"] == 0
    assert summary["packed_at_commit"] == json.loads((tmp_path / "pack" / "manifest.json").read_text())["commit"]
    assert (out / "losses.csv").is_file()
    slim = torch.load(out / "joint12_gpu.pt", weights_only=False)
    assert set(slim) == {"model", "config", "iteration", "seconds"}  # no optimizer state: a small file
    assert all(v.dtype == torch.float16 for k, v in slim["model"].items() if v.is_floating_point() and not k.endswith(".eps"))
    assert all(v.dtype == torch.float32 for k, v in slim["model"].items() if k.endswith(".eps"))  # floors kept exact
    assert slim["config"]["out"] == "runs" and [Path(p).name for p in slim["config"]["styles"]] == ["a_dots.jpg", "b_stripes.png"]
    # here, it resumes (and exports with --iterations 0) as any checkpoint does
    again = Trainer(TrainConfig(iterations=0), resume=out / "joint12_gpu.pt", vgg=load_vgg(random_init=True),
                    progress=lambda s: None)
    assert again.iteration == 3 and again.style_names == ["a_dots", "b_stripes"]


def test_the_newest_stage_is_the_latest_stage_then_the_most_iterations(tool, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "stages" / "multi"
    folder.mkdir(parents=True)
    for name, iteration in (("joint12_full_stage2_5692", 5692), ("joint12_full_stage3_400", 400),
                            ("joint12_full_stage3_2800", 2800), ("joint12_full_stage10_5", 5)):
        torch.save({"model": {}, "config": {}, "iteration": iteration}, folder / f"{name}.pt")
    monkeypatch.setattr(tool, "ROOT", tmp_path)
    assert tool.newest_stage().name == "joint12_full_stage10_5.pt"  # each stage counts afresh; 10 is after 3
    (folder / "joint12_full_stage10_5.pt").unlink()
    assert tool.newest_stage().name == "joint12_full_stage3_2800.pt"
    # a fast-tier stage is never the full recipe's start, however far it went
    torch.save({"model": {}, "config": {"arch": "fast"}, "iteration": 9000}, folder / "fast12_stage4_9000.pt")
    assert tool.newest_stage().name == "joint12_full_stage3_2800.pt"
