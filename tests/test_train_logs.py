"""What a training run leaves for people to read: TensorBoard events, a progress bar, the loss-curve
panels; and that the run is the same, minus those, when tensorboard, tqdm or matplotlib is missing."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
PIL = pytest.importorskip("PIL")
from PIL import Image  # noqa: E402

from realtime.train.config import TrainConfig  # noqa: E402
from realtime.train.logs import TENSORBOARD_DIR, TrainingLog  # noqa: E402
from realtime.train.plots import plot_curves, plotted_losses  # noqa: E402
from realtime.train.trainer import Trainer  # noqa: E402
from realtime.train.vgg import load_vgg  # noqa: E402


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("logs_data")
    rng = np.random.default_rng(0)
    (root / "photos").mkdir()
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (48, 56, 3), dtype=np.uint8)).save(root / "photos" / f"p{i}.png")
    style = (rng.random((48, 48, 3)) * 255).astype(np.uint8)
    style[::6] = 0
    Image.fromarray(style).save(root / "style.png")
    return {"photos": root / "photos", "style": root / "style.png"}


@pytest.fixture(scope="module")
def random_vgg():
    return load_vgg(random_init=True)


def _config(data, out: Path, **kw) -> TrainConfig:
    base = dict(style_image=str(data["style"]), data=str(data["photos"]), val=str(data["photos"]), out=str(out),
                name="tiny", width=8, depth=1, iterations=4, batch=1, crop=32, style_size=48, precision="fp32",
                checkpoint_every=100, preview_every=2, log_every=1)
    base.update(kw)
    return TrainConfig(**base)


def test_tensorboard_gets_every_loss_and_the_previews(data, random_vgg, tmp_path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    Trainer(_config(data, tmp_path), vgg=random_vgg, progress=lambda s: None).run()
    events = EventAccumulator(str(tmp_path / "tiny" / TENSORBOARD_DIR), size_guidance={"images": 0})
    events.Reload()
    tags = events.Tags()
    for loss in ("total", "content", "style", "tv", "temporal", "distill"):
        assert [e.step for e in events.Scalars(f"loss/{loss}")] == [1, 2, 3, 4], loss
    total = [e.value for e in events.Scalars("loss/total")]
    content = [e.value for e in events.Scalars("loss/content")]
    assert total[0] > 0 and total[0] >= content[0]
    assert [e.step for e in events.Images("preview")] == [2, 4], tags
    assert (tmp_path / "tiny" / "losses.csv").is_file() and (tmp_path / "tiny" / "losses.png").is_file()


def test_the_run_is_the_same_without_tensorboard_tqdm_and_matplotlib(data, random_vgg, tmp_path, monkeypatch) -> None:
    for module in ("torch.utils.tensorboard", "tqdm", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, module, None)  # importing it now raises ImportError
    lines: list[str] = []
    result = Trainer(_config(data, tmp_path), vgg=random_vgg, progress=lines.append).run()
    assert result.iterations == 4
    assert [line.split()[1] for line in lines] == ["1/4", "2/4", "3/4", "4/4"]  # our own progress lines
    run = tmp_path / "tiny"
    assert not (run / TENSORBOARD_DIR).exists()
    assert (run / "losses.csv").read_text().count("\n") == 5 and not (run / "losses.png").exists()
    assert sorted(p.name for p in (run / "previews").iterdir()) == ["iter_000002.png", "iter_000004.png"]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_terminal_and_lines_elsewhere(tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    losses = {"total": 12.5, "content": 2.5, "style": 10.0, "temporal": 0.0}
    if pytest.importorskip("tqdm"):
        lines: list[str] = []
        terminal = _Terminal()
        log = TrainingLog(tmp_path, "tiny", 10, 4, lines.append, stream=terminal)  # resumed at iteration 4
        assert log.bar is not None
        log.step()
        log.report(5, losses, "[tiny] 5/10 ...")
        log.close()
        assert lines == []  # the bar stands in for our line...
        shown = terminal.getvalue()
        assert "5/10" in shown and "style 10" in shown and "temporal" not in shown  # ...with the losses
    for stream, bar in ((io.StringIO(), True), (_Terminal(), False)):  # not a terminal; the caller has its own lines
        lines = []
        log = TrainingLog(tmp_path, "tiny", 10, 0, lines.append, stream=stream, bar=bar)
        assert log.bar is None
        log.report(1, losses, "[tiny] 1/10 ...")
        log.close()
        assert lines == ["[tiny] 1/10 ..."] and stream.getvalue() == ""
    monkeypatch.setitem(sys.modules, "tqdm", None)
    lines = []
    log = TrainingLog(tmp_path, "tiny", 10, 0, lines.append, stream=_Terminal())
    assert log.bar is None
    log.report(1, losses, "line")
    assert lines == ["line"]


def test_loss_curves_get_a_panel_each() -> None:
    pytest.importorskip("matplotlib")
    history = [{"iteration": 10 * i, "seconds": i, "total": 100.0 / i + 1e-3 * i, "content": 5.0 + i, "style": 100.0 / i,
                "tv": 1e-4 * i, "temporal": 0.0} for i in range(1, 30)]
    assert plotted_losses(history) == ["total", "content", "style", "tv"]  # zero losses get no panel
    four = plot_curves(history)
    two = plot_curves([{k: r[k] for k in ("iteration", "content", "style")} for r in history])
    assert four.dtype == np.uint8 and four.ndim == 3 and four.shape[1] == two.shape[1]
    assert four.shape[0] > 1.5 * two.shape[0]  # two rows of panels instead of one
    assert (four < 128).any() and (four > 250).mean() > 0.5  # drawn, on white
