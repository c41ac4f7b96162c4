"""restyle-image: image I/O (EXIF, alpha), tiling (seams, memory), folder mode, bad input, the sheet."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import REPO, in_process, snapshot
from realtime.cli_image import main as restyle_image_main
from realtime.image_io import decode_image, read_image, write_image
from realtime.tiles import axis_weights, stylize_tiled, tile_spans

PROG = "restyle-image"


# ------------------------------------------------------------------------------------------------ helpers


def photo(h: int = 90, w: int = 120, seed: int = 0) -> np.ndarray:
    """A synthetic photo: gradients, a bright square and noise (RGB uint8)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([255 * yy / h, 255 * xx / w, 128 + 100 * np.sin(xx / 7)], -1)
    img[h // 4: h // 2, w // 3: w // 2] = (240, 220, 30)
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def texture(h: int, w: int, seed: int = 1) -> np.ndarray:
    """A statistically stationary texture (random gratings plus noise): every large window has about the
    same mean and variance, as a photo of grass or sand would."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.zeros((h, w, 3), np.float32)
    for c in range(3):
        for _ in range(6):
            fx, fy = rng.uniform(0.01, 0.2, 2)
            img[..., c] += np.sin(fx * xx + fy * yy + rng.uniform(0, 6.3))
    img += rng.normal(0, 0.8, img.shape).astype(np.float32)
    return ((img - img.min()) / (img.max() - img.min()) * 255).astype(np.uint8)


def save(path: Path, image: np.ndarray) -> Path:
    write_image(path, image, overwrite=True)
    return path


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]):
    """Run restyle-image in this process: (exit code, stdout, stderr)."""
    return in_process(restyle_image_main, capsys)


def one_line_error(code: int, err: str, expect: str, exit_code: int = 1) -> None:
    assert code == exit_code, (code, err)
    lines = [ln for ln in err.splitlines() if ln.startswith(f"{PROG}: error:")]
    assert len(lines) == 1, err
    assert expect in lines[0], lines[0]
    assert "Traceback" not in err


def stylize_whole(model: Path, image: np.ndarray) -> np.ndarray:
    from realtime.stylizer import Stylizer

    return Stylizer(model, device="cpu").stylize([image])[0]


# ------------------------------------------------------------------------------------------------ image I/O


def test_exif_orientation_is_applied(tmp_path: Path, run, tiny_model: Path) -> None:
    from PIL import Image

    # 40 wide, 20 high, left half red; orientation 6 means "rotate 90° clockwise to display"
    a = np.zeros((20, 40, 3), np.uint8)
    a[:, :20] = (255, 0, 0)
    a[:, 20:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "JPEG", exif=exif.tobytes(), quality=95)
    path = tmp_path / "rotated.jpg"
    path.write_bytes(buf.getvalue())

    img = read_image(path)
    assert img.shape == (40, 20, 3)  # upright: portrait
    top, bottom = img[:15].reshape(-1, 3).mean(0), img[-15:].reshape(-1, 3).mean(0)
    assert top[0] > 200 and top[2] < 60  # the left (red) half is now on top
    assert bottom[2] > 200 and bottom[0] < 60

    out = tmp_path / "out.png"
    code, _, err = run(path, out, "--style", tiny_model, "-q")
    assert code == 0, err
    assert read_image(out).shape == (40, 20, 3)


def test_alpha_grey_and_16_bit_inputs(tmp_path: Path) -> None:
    rgba = np.zeros((8, 10, 4), np.uint8)
    rgba[..., 2] = 255  # red in BGRA, fully transparent on the left half
    rgba[:, 5:, 3] = 255
    ok, enc = cv2.imencode(".png", rgba)
    img = decode_image(enc.tobytes())
    assert img.shape == (8, 10, 3)
    assert (img[:, :5] == 255).all()  # transparent → white
    assert (img[:, 5:] == (255, 0, 0)).all()  # opaque red stays red (RGB)

    grey = np.tile(np.arange(0, 250, 25, dtype=np.uint8), (6, 1))
    ok, enc = cv2.imencode(".png", grey)
    g = decode_image(enc.tobytes())
    assert g.shape == (6, 10, 3) and (g[..., 0] == grey).all()

    deep = (np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000)[..., None].repeat(3, 2)
    ok, enc = cv2.imencode(".png", deep)
    d = decode_image(enc.tobytes())
    assert d.dtype == np.uint8 and abs(int(d[2, 3, 0]) - round(55000 / 257)) <= 1


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp"])
def test_output_formats(tmp_path: Path, run, tiny_model: Path, suffix: str) -> None:
    src = save(tmp_path / "in.png", photo())
    out = tmp_path / f"out{suffix}"
    code, _, err = run(src, out, "--style", tiny_model, "-q")
    assert code == 0, err
    data = out.read_bytes()
    magic = {".png": b"\x89PNG", ".jpg": b"\xff\xd8\xff", ".webp": b"RIFF"}[suffix]
    assert data.startswith(magic)
    assert read_image(out).shape == (90, 120, 3)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left


# ------------------------------------------------------------------------------------------------ tiles


def test_tile_spans_cover_overlap_and_align() -> None:
    for tile, overlap, multiple in [(64, 8, 4), (1024, 128, 4), (100, 30, 4), (40, 10, 1)]:
        for length in range(1, 2500, 37):
            spans = tile_spans(length, tile, overlap, multiple)
            assert spans[0][0] == 0 and spans[-1][1] == length
            for a, b in spans:
                assert a % multiple == 0 and 0 < b - a <= tile
            for (a0, b0), (a1, b1) in zip(spans, spans[1:]):
                assert a1 > a0 and b1 >= b0 and b0 - a1 >= overlap  # overlapping by at least `overlap`
            total = np.zeros(length)
            for (a, b), w in zip(spans, axis_weights(length, spans)):
                total[a:b] += w
            np.testing.assert_allclose(total, 1.0, atol=1e-5)  # a partition of unity: no bright/dark seams


def test_feathering_turns_per_tile_shifts_into_gradients() -> None:
    """Tiles that disagree (as instance norm makes them do) must not leave an edge: give every tile its own
    brightness offset (up to 40 levels apart); the output may drift but never jumps between neighbours."""
    h, w = 300, 400
    flat = np.full((h, w, 3), 100, np.uint8)
    offsets = iter(range(0, 1000, 20))

    def shifted(tile: np.ndarray) -> np.ndarray:
        return (tile.astype(np.int16) + (next(offsets) % 60)).clip(0, 255).astype(np.uint8)

    out = stylize_tiled(flat, shifted, tile=128, overlap=48, multiple=4).astype(np.int16)
    step = max(np.abs(np.diff(out, axis=0)).max(), np.abs(np.diff(out, axis=1)).max())
    # a hard cut would jump by up to 40; the cosine ramp over 24 px spreads the biggest jump to ~40·π/48 ≈ 2.6
    assert step <= 4, step
    assert out.max() - out.min() >= 20  # the tiles did differ (the test can see seams)

    # the same offsets with hard tile edges (no overlap, no blending) do show as a jump: the check works
    hard = flat.astype(np.int16).copy()
    for i, y in enumerate(range(0, h, 100)):
        for j, x in enumerate(range(0, w, 100)):
            hard[y:y + 100, x:x + 100] += (20 * (i * 4 + j)) % 60
    assert np.abs(np.diff(hard, axis=1)).max() > 4


def test_tiled_output_matches_untiled(tmp_path: Path, tiny_model: Path) -> None:
    """A 900×1200 image in 12 tiles of 384 px through the tiny model (reflection padding, instance norm,
    a strided convolution) against one pass over the whole image.

    Tolerance: instance norm normalises each tile with its own mean and variance instead of the whole
    image's, so tiles cannot match exactly; on a statistically stationary texture the per-tile statistics
    differ from the global ones by sampling error only, which moves outputs by well under one grey level
    on average (measured 0.48 mean, 5 at the 99.9th percentile, with the 384-px tiles). The bounds
    leave about 2× headroom; a seam (padding artefacts, misaligned strides, weights not summing to one,
    a hard cut) shows as a larger error in the overlap bands than away from them."""
    from realtime.stylizer import Stylizer

    image = texture(900, 1200)
    stylizer = Stylizer(tiny_model, device="cpu")
    whole = stylizer.stylize([image])[0].astype(np.float32)
    tiled = stylize_tiled(image, lambda t: stylizer.stylize([t])[0], tile=384, overlap=64, multiple=4).astype(np.float32)
    err = np.abs(tiled - whole).mean(axis=2)

    ys, xs = tile_spans(900, 384, 64, 4), tile_spans(1200, 384, 64, 4)
    assert len(ys) * len(xs) >= 9
    seams = np.zeros(err.shape, bool)
    for (_, stop), (start, _) in zip(xs, xs[1:]):
        seams[:, start:stop] = True
    for (_, stop), (start, _) in zip(ys, ys[1:]):
        seams[start:stop, :] = True
    across, away = err[seams].mean(), err[~seams].mean()
    assert away < 1.0, away
    assert across < 1.0, across
    assert across < 1.5 * away + 0.25, (across, away)
    assert np.percentile(err, 99.9) <= 10
    # a column or row of the output exactly at a tile border must not stand out either
    for _, stop in xs[:-1]:
        assert err[:, stop - 2: stop + 2].mean() < 1.5 * away + 0.25
    for start, _ in ys[1:]:
        assert err[start - 2: start + 2].mean() < 1.5 * away + 0.25

    # sensitivity: abutting tiles without overlap or blending show their borders (padding artefacts)
    naive = whole.copy()
    for y0 in range(0, 900, 300):
        for x0 in range(0, 1200, 300):
            naive[y0:y0 + 300, x0:x0 + 300] = stylizer.stylize([np.ascontiguousarray(image[y0:y0 + 300, x0:x0 + 300])])[0]
    naive_err = np.abs(naive - whole).mean(axis=2)
    assert naive_err[:, 298:302].mean() > 2 * (1.5 * away + 0.25)


@pytest.mark.slow
def test_8000x6000_image_is_tiled_with_bounded_memory() -> None:
    """An 8000×6000 image: no network call sees more than tile² pixels, and the extra memory stays far
    below a full-size float accumulator (8000·6000·3·4 bytes = 576 MB)."""
    h, w, tile = 6000, 8000, 1024
    image = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    seen: list[tuple[int, ...]] = []

    def invert(t: np.ndarray) -> np.ndarray:  # pointwise: tiling must reproduce it exactly
        seen.append(t.shape)
        return 255 - t

    tracemalloc.start()
    try:
        out = stylize_tiled(image, invert, tile=tile, overlap=128, multiple=4)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert max(s[0] for s in seen) <= tile and max(s[1] for s in seen) <= tile
    assert len(seen) > 40
    assert np.array_equal(out, 255 - image)
    output_bytes, band_bytes = h * w * 3, tile * w * 3 * 4
    assert peak < output_bytes + 2 * band_bytes + 8 * tile * tile * 3 * 4, peak / 1e6
    assert peak < output_bytes + h * w * 3 * 4  # less than the output plus a full-size accumulator


def test_cli_tiles_large_images(tmp_path: Path, run, tiny_model: Path) -> None:
    src = save(tmp_path / "big.png", texture(300, 420))
    code, _, err = run(src, tmp_path / "tiled.png", "--style", tiny_model, "--tile-size", "160", "--tile-overlap", "32")
    assert code == 0, err
    assert "tiles" in err or "tile" in err  # progress over tiles (stderr is not a terminal: a final line)
    code, _, err = run(src, tmp_path / "whole.png", "--style", tiny_model, "--tile-size", "0", "-q")
    assert code == 0, err
    tiled, whole = read_image(tmp_path / "tiled.png"), read_image(tmp_path / "whole.png")
    assert tiled.shape == whole.shape == (300, 420, 3)
    assert np.abs(tiled.astype(int) - whole.astype(int)).mean() < 2.0
    code, _, err = run(src, tmp_path / "x.png", "--style", tiny_model, "--tile-size", "40", "--tile-overlap", "32")
    one_line_error(code, err, "--tile-size", exit_code=2)


# ------------------------------------------------------------------------------------------------ the method


def test_strength_and_preserve_color(tmp_path: Path, run, tiny_model: Path) -> None:
    image = photo()
    src = save(tmp_path / "in.png", image)
    code, _, err = run(src, tmp_path / "none.png", "--style", tiny_model, "--strength", "0", "-q")
    assert code == 0, err
    assert np.array_equal(read_image(tmp_path / "none.png"), image)

    code, _, err = run(src, tmp_path / "full.png", "--style", tiny_model, "-q")
    assert code == 0, err
    full = read_image(tmp_path / "full.png")
    assert np.array_equal(full, stylize_whole(tiny_model, image))  # the same stylizer as restyle-video

    code, _, err = run(src, tmp_path / "colour.png", "--style", tiny_model, "--preserve-color", "-q")
    assert code == 0, err
    colour = read_image(tmp_path / "colour.png")
    chroma = lambda im: cv2.cvtColor(im, cv2.COLOR_RGB2YCrCb)[..., 1:].astype(int)  # noqa: E731
    luma = lambda im: cv2.cvtColor(im, cv2.COLOR_RGB2YCrCb)[..., 0].astype(int)  # noqa: E731
    assert np.abs(chroma(colour) - chroma(image)).mean() < np.abs(chroma(full) - chroma(image)).mean() / 3
    # luminance from the stylized image (not exactly: recombined colours outside the RGB gamut are clipped)
    assert np.abs(luma(colour) - luma(full)).mean() < np.abs(luma(image) - luma(full)).mean() / 2


def test_max_size_keeps_the_input_size(tmp_path: Path, run, tiny_model: Path) -> None:
    src = save(tmp_path / "in.png", photo(200, 300))
    code, _, err = run(src, tmp_path / "o.png", "--style", tiny_model, "--max-size", "100", "-q")
    assert code == 0, err
    assert read_image(tmp_path / "o.png").shape == (200, 300, 3)


def test_sheet_of_styles(tmp_path: Path, run, models_dir: Path) -> None:
    src = save(tmp_path / "in.png", photo())
    out = tmp_path / "sheet.png"
    code, _, err = run(src, out, "--sheet", "--style", "tiny,tiny255", "-q")
    assert code == 0, err
    sheet = read_image(out)
    # one row: original + 2 styles, each tile scaled to the image height (90 < 256) under a 22-px label
    assert sheet.shape[0] == 90 + 22 + 6
    assert sheet.shape[1] >= 3 * 120
    label_band = sheet[:22]
    assert (label_band < 100).any()  # dark label text on white

    code, _, err = run(src, tmp_path / "zoo.png", "--sheet", "--sheet-columns", "2", "-q")  # the whole zoo
    assert code == 0, err
    assert read_image(tmp_path / "zoo.png").shape[0] > sheet.shape[0]  # more than one row


# ------------------------------------------------------------------------------------------------ folders


def test_folder_skips_bad_files_and_continues(tmp_path: Path, run, tiny_model: Path) -> None:
    inp, out = tmp_path / "in", tmp_path / "out"
    inp.mkdir()
    save(inp / "a.png", photo(seed=1))
    (inp / "b.jpg").write_bytes(os.urandom(2000))  # corrupt image
    (inp / "c.txt").write_text("notes")  # not an image
    good = cv2.imencode(".png", photo(seed=2))[1].tobytes()
    (inp / "d.png").write_bytes(good[: len(good) // 2])  # truncated
    save(inp / "e.webp", photo(seed=3))
    save(inp / "f.jpg", photo(seed=4))

    code, _, err = run(inp, out, "--style", tiny_model)
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "e.webp", "f.jpg"]
    warnings = [ln for ln in err.splitlines() if ln.startswith(f"{PROG}: warning:")]
    assert len(warnings) == 3, err
    for name in ("b.jpg", "c.txt", "d.png"):
        assert any(name in ln for ln in warnings), (name, err)
    assert "Traceback" not in err
    assert np.array_equal(read_image(out / "a.png"), stylize_whole(tiny_model, read_image(inp / "a.png")))

    # again: every output exists → refused before any work, nothing touched
    before = snapshot(out)
    code, _, err = run(inp, out, "--style", tiny_model)
    one_line_error(code, err, "--overwrite")
    assert snapshot(out) == before
    code, _, err = run(inp, out, "--style", tiny_model, "--overwrite", "--format", "png", "-q")
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "e.png", "e.webp", "f.jpg", "f.png"]


def test_folder_errors(tmp_path: Path, run, tiny_model: Path) -> None:
    inp = tmp_path / "in"
    inp.mkdir()
    (inp / "x.jpg").write_bytes(b"not an image at all")
    out = tmp_path / "out"
    code, _, err = run(inp, out, "--style", tiny_model)
    one_line_error(code, err, "could be read")
    assert not out.exists()  # nothing written, not even the folder

    code, _, err = run(inp, inp, "--style", tiny_model)
    one_line_error(code, err, "is the input folder")

    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run(empty, out, "--style", tiny_model)
    one_line_error(code, err, "no image files")

    save(inp / "a.png", photo())
    save(inp / "a.jpg", photo())
    code, _, err = run(inp, out, "--style", tiny_model, "--format", "png")
    one_line_error(code, err, "would both be written")


# ------------------------------------------------------------------------------------------------ bad input


def test_bad_single_inputs(tmp_path: Path, run, tiny_model: Path) -> None:
    src = save(tmp_path / "in.png", photo())

    code, _, err = run(tmp_path / "missing.png", tmp_path / "o.png", "--style", tiny_model)
    one_line_error(code, err, "does not exist")
    code, _, err = run(src, src, "--style", tiny_model, "--overwrite")
    one_line_error(code, err, "is the input")
    code, _, err = run(src, tmp_path / "o.gif", "--style", tiny_model)
    one_line_error(code, err, "cannot write .gif")
    code, _, err = run(src, tmp_path / "nofolder" / "o.png", "--style", tiny_model)
    one_line_error(code, err, "does not exist")
    code, _, err = run(src, tmp_path / "o.png", "--style", "no_such_style")
    one_line_error(code, err, "unknown style")
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff" + os.urandom(500))
    before = snapshot(tmp_path)
    code, _, err = run(corrupt, tmp_path / "o.png", "--style", tiny_model)
    one_line_error(code, err, "corrupt.jpg")
    assert snapshot(tmp_path) == before

    existing = save(tmp_path / "exists.png", photo(seed=9))
    before = snapshot(tmp_path)
    code, _, err = run(src, existing, "--style", tiny_model)
    one_line_error(code, err, "use --overwrite")
    assert snapshot(tmp_path) == before
    code, _, err = run(src, existing, "--style", tiny_model, "--overwrite", "-q")
    assert code == 0, err
    assert np.array_equal(read_image(existing), stylize_whole(tiny_model, photo()))
    assert np.array_equal(read_image(src), photo())  # the input is untouched

    code, _, err = run(src, tmp_path / "o.png", "--style", "tiny", "--style", "tiny255")
    one_line_error(code, err, "--sheet", exit_code=2)
    code, _, err = run(src, tmp_path / "o.png", "--style-image", src)
    one_line_error(code, err, "--optimize", exit_code=2)


def test_corrupt_png_gives_our_line_only(tmp_path: Path, tiny_model: Path, capfd: pytest.CaptureFixture[str]) -> None:
    # OpenCV's log ("[ERROR:0@0.2] ... IHDR chunk shall be first") and libpng ("libpng error: IHDR: CRC
    # error") wrote to file descriptor 2 before our message: capfd sees what reaches the descriptor
    good = save(tmp_path / "good.png", photo()).read_bytes()
    bad_header = tmp_path / "bad_header.png"
    bad_header.write_bytes(good[:12] + b"XXXX" + good[16:])  # the first chunk is not IHDR
    bad_crc = tmp_path / "bad_crc.png"
    bad_crc.write_bytes(good[:16] + b"\xff" * 8 + good[24:])  # width and height changed, CRC not
    for bad, why in ((bad_header, "corrupt, or not PNG/JPEG/WebP/BMP/TIFF"), (bad_crc, "libpng error: IHDR: CRC error")):
        code = restyle_image_main([str(bad), str(tmp_path / "o.png"), "--style", str(tiny_model), "-q"])
        err = capfd.readouterr().err
        assert err.splitlines() == [f"{PROG}: error: {bad} is not an image OpenCV can read ({why})"], err
        assert code == 1
    assert not (tmp_path / "o.png").exists()


def test_interrupt_leaves_complete_outputs_only(tmp_path: Path, run, tiny_model: Path, monkeypatch) -> None:
    from realtime.stylizer import Stylizer

    inp, out = tmp_path / "in", tmp_path / "out"
    inp.mkdir()
    for i in range(3):
        save(inp / f"{i}.png", photo(seed=i))
    calls = {"n": 0}
    real = Stylizer.stylize

    def stylize(self, images):  # noqa: ANN001, ANN202
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(self, images)

    monkeypatch.setattr(Stylizer, "stylize", stylize)
    code, _, err = run(inp, out, "--style", tiny_model, "-q")
    one_line_error(code, err, "interrupted; 1 of 3 images written", exit_code=130)
    assert [p.name for p in out.iterdir()] == ["0.png"]  # complete, and no temporary file beside it
    assert read_image(out / "0.png").shape == (90, 120, 3)


def test_works_without_torch(tmp_path: Path, models_dir: Path) -> None:
    """The runtime (restyle-image with an ONNX style) must not need torch: run it with torch unimportable."""
    src = save(tmp_path / "in.png", photo())
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch' or name.startswith('torch.'):\n"
        "            raise ImportError('torch blocked for this test')\n"
        "sys.meta_path.insert(0, Block())\n"
        "from realtime.cli_image import main\n"
        f"rc = main([{str(src)!r}, {str(tmp_path / 'o.png')!r}, '-q'])\n"
        f"rc2 = main([{str(src)!r}, {str(tmp_path / 'p.png')!r}, '--optimize', '--style-image', {str(src)!r}])\n"
        "sys.exit(rc * 10 + rc2)\n"
    )
    env = dict(os.environ, REALTIME_MODELS_DIR=str(models_dir))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=str(REPO), env=env)
    assert proc.returncode == 1, proc.stderr  # the model run succeeded (0), --optimize failed cleanly (1)
    assert (tmp_path / "o.png").is_file()
    one_line_error(1, proc.stderr, 'pip install -e ".[train]"')
    assert not (tmp_path / "p.png").exists()


def test_device_takes_what_restyle_video_takes(run, tmp_path: Path, tiny_model: Path) -> None:
    """--device cuda:N and tensorrt[:N] as the other commands take them (it allowed auto|cpu|cuda);
    where they cannot run, one line says so; the optimisation (PyTorch) refuses TensorRT by name."""
    import onnxruntime as ort

    src = tmp_path / "in.png"
    cv2.imwrite(str(src), photo())
    code, _, err = run(src, tmp_path / "a.png", "--style", tiny_model, "--device", "CPU", "-q")
    assert code == 0, err
    code, _, err = run(src, tmp_path / "b.png", "--style", tiny_model, "--device", "gpu7")
    one_line_error(code, err, "unknown device", exit_code=2)
    code, _, err = run(src, tmp_path / "c.png", "--optimize", "--style-image", src, "--device", "tensorrt:1",
                       "--iterations", "1")
    one_line_error(code, err, "does not apply here")
    assert not (tmp_path / "c.png").exists()
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return
    from realtime.provider_probe import cuda_usable

    if not cuda_usable(str(tiny_model), "cuda:1"):
        code, _, err = run(src, tmp_path / "d.png", "--style", tiny_model, "--device", "cuda:1", "-q")
        assert code != 0 and "Traceback" not in err and "cuda:1" in err, err
        assert not (tmp_path / "d.png").exists()
