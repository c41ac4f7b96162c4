"""Temporal smoothing and temporal metrics on synthetic video: a textured canvas seen through a moving
window, with a fake "stylizer" that adds fresh noise to every frame (the shimmer smoothing must remove)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from realtime.temporal import (
    BlendSmoother,
    FlowSmoother,
    NoSmoothing,
    SceneCutDetector,
    make_smoother,
)
from realtime.temporal_metrics import (
    ghosting,
    pair_flow,
    pair_flows,
    pair_warping_error,
    warping_error,
    warping_error_pair,
    warping_error_with_flows,
)

H, W = 180, 320  # flow runs at long side 320, so the smoother sees these at full resolution...
H2, W2 = 360, 640  # ...and these downscaled by 2, the path real 640×360 video takes


def texture(h: int, w: int, seed: int) -> np.ndarray:
    """Smooth random colour texture, contrast-stretched to 0..255: trackable by optical flow."""
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.normal(size=(h, w, 3)).astype(np.float32), (0, 0), 2.5)
    img = (img - img.min()) / (img.max() - img.min()) * 255
    return img.astype(np.uint8)


def pan(canvas: np.ndarray, n: int, h: int, w: int, dx: int, dy: int = 0) -> list[np.ndarray]:
    """Frames of a camera moving right/down by (dx, dy) px per frame over ``canvas``: the scene moves
    left, and new content enters at the right (bottom) edge."""
    return [np.ascontiguousarray(canvas[t * dy : t * dy + h, t * dx : t * dx + w]) for t in range(n)]


def shimmer(frames: list[np.ndarray], seed: int, amplitude: int = 25) -> list[np.ndarray]:
    """The fake stylizer: a fixed colour change plus independent noise per frame."""
    rng = np.random.default_rng(seed)
    out = []
    for f in frames:
        styled = 255 - f.astype(np.int16)  # deterministic "style": invert colours
        styled += rng.integers(-amplitude, amplitude + 1, size=f.shape, dtype=np.int16)
        out.append(np.clip(styled, 0, 255).astype(np.uint8))
    return out


def run(smoother, contents: list[np.ndarray], stylized: list[np.ndarray]) -> list[np.ndarray]:
    return [smoother.process(c, s) for c, s in zip(contents, stylized)]


@pytest.fixture(scope="module")
def panning():
    """12 frames of 640×360 panning 4 px/frame right and 1 px/frame down, and their shimmering styling."""
    canvas = texture(H2 + 20, W2 + 60, seed=1)
    frames = pan(canvas, 12, H2, W2, dx=4, dy=1)
    return frames, shimmer(frames, seed=2)


# ---------------------------------------------------------------------------------------------- metric


def test_warping_error_is_zero_for_a_consistent_shift_and_positive_for_an_unrelated_output():
    canvas = texture(H + 10, W + 10, seed=3)
    inputs = pan(canvas, 2, H, W, dx=5, dy=2)
    styled_canvas = texture(H + 10, W + 10, seed=4)  # any output that moves exactly with the input
    outputs = pan(styled_canvas, 2, H, W, dx=5, dy=2)
    assert warping_error(inputs, inputs) < 1e-4
    assert warping_error(inputs, outputs) < 1e-4
    unrelated = [texture(H, W, seed=5), texture(H, W, seed=6)]
    assert warping_error(inputs, unrelated) > 0.01
    assert pair_warping_error(inputs[0], inputs[1], outputs[0], outputs[1]) < 1e-4
    assert pair_warping_error(inputs[0], inputs[1], unrelated[0], unrelated[1]) > 0.01


def test_warping_error_masks_the_newly_entered_edge():
    canvas = texture(H, W + 8, seed=7)
    inputs = pan(canvas, 2, H, W, dx=8)
    motion = pair_flow(inputs[0], inputs[1])
    # The last 8 columns of frame 1 were outside frame 0: nothing there to compare with.
    assert not motion.valid[:, -8:].any()
    assert motion.valid[:, 20:-20].mean() > 0.9
    # An output whose new edge differs wildly still scores ~0: only what was seen twice counts.
    out1 = inputs[1].copy()
    out1[:, -8:] = 0
    assert warping_error_pair(inputs[0], out1, motion) < 1e-4


def test_ghosting_is_zero_for_identical_and_positive_otherwise():
    a = [texture(32, 32, seed=s) for s in range(3)]
    assert ghosting(a, a) == 0.0
    assert ghosting(a, [255 - x for x in a]) > 0.1


# -------------------------------------------------------------------------------------------- smoothers


def test_make_smoother_modes():
    assert isinstance(make_smoother("off"), NoSmoothing)
    assert isinstance(make_smoother("blend"), BlendSmoother)
    assert isinstance(make_smoother("flow"), FlowSmoother)
    hq = make_smoother("flow-hq")
    assert isinstance(hq, FlowSmoother) and hq.max_grey_residual > make_smoother("flow").max_grey_residual
    with pytest.raises(ValueError):
        make_smoother("optical")


def test_off_is_identity_and_blend_is_the_exponential_average():
    a, b = texture(16, 16, seed=8), texture(16, 16, seed=9)
    assert make_smoother("off").process(a, b) is b
    blend = make_smoother("blend", 0.75)
    assert np.array_equal(blend.process(a, a), a)  # first frame passes through
    out = blend.process(b, b).astype(np.float32)
    assert np.abs(out - (0.75 * a + 0.25 * b.astype(np.float32))).max() <= 1


@pytest.mark.parametrize("mode", ["flow", "flow-hq"])
def test_flow_smoothing_removes_shimmer_on_moving_texture(panning, mode):
    frames, styled = panning
    flows = pair_flows(frames)
    per_frame = warping_error_with_flows(flows, styled)
    smoothed = warping_error_with_flows(flows, run(make_smoother(mode, 0.5), frames, styled))
    # Independent noise per frame: per-frame error ≈ 2σ²; an aligned average at 0.5 leaves ≈ σ²/3.
    assert smoothed < 0.4 * per_frame, (smoothed, per_frame)


def test_flow_smoothing_never_touches_content_that_just_entered_the_frame(panning):
    frames, styled = panning
    smoother = make_smoother("flow", 0.9)
    outputs = run(smoother, frames, styled)
    for out, sty in zip(outputs[1:], styled[1:]):
        # The camera moves 4 px right and 1 px down per frame: those edges are new in every frame.
        assert np.array_equal(out[:, -4:], sty[:, -4:])
        assert np.array_equal(out[-1:, :], sty[-1:, :])
        # ...while the interior really is smoothed (the test would pass trivially otherwise).
        assert np.abs(out[40:-40, 40:-40].astype(int) - sty[40:-40, 40:-40]).mean() > 5


@pytest.mark.parametrize("mode", ["flow", "flow-hq"])
def test_flow_smoothing_does_not_smear_a_moving_object_over_the_background_it_uncovers(mode):
    background = texture(H, W, seed=10)
    patch = texture(60, 60, seed=11)
    frames, boxes = [], []
    for t in range(8):
        f = background.copy()
        x0 = 40 + 12 * t  # object moves right 12 px/frame over a still background
        f[60:120, x0 : x0 + 60] = patch
        frames.append(f)
        boxes.append(x0)
    styled = shimmer(frames, seed=12)
    smoother = make_smoother(mode, 0.9)
    outputs = run(smoother, frames, styled)
    for t in range(1, len(frames)):
        # Background uncovered this frame: the 12 columns the object left (rows inside, away from
        # its top and bottom edges, where the occlusion boundary itself is fuzzy).
        strip = np.s_[66:114, boxes[t - 1] : boxes[t]]
        diff = np.abs(outputs[t][strip].astype(int) - styled[t][strip])
        assert diff.max() <= 1, (t, diff.max(), diff.mean())


def test_occlusion_margin_spreads_failed_regions_but_not_lone_pixels():
    from realtime.temporal import with_occlusion_margin

    valid = np.ones((40, 60), np.uint8)
    valid[10:18, 10:18] = 0  # an occlusion: a failed region
    valid[30, 45] = 0  # a lone failed pixel
    out = with_occlusion_margin(valid, np.ones((7, 7), np.uint8), np.ones((3, 3), np.uint8))
    assert out[7:21, 7:21].sum() == 0 and out[6, 10] == 1 and out[10, 21] == 1  # a 3-px margin, no more
    assert out[30, 45] == 0 and out[29:32, 44:47].sum() == 8  # the lone pixel stays failed, alone
    assert with_occlusion_margin(valid, np.ones((7, 7), np.uint8))[27:34, 42:49].sum() == 0  # without the opening it spreads


def test_a_hard_cut_resets_the_flow_smoother(panning):
    frames, styled = panning
    other = texture(H2, W2, seed=13)
    contents = frames[:6] + [other, other]
    stylized = styled[:6] + shimmer([other, other], seed=14)
    smoother = make_smoother("flow", 0.9)
    outputs = run(smoother, contents, stylized)
    assert np.array_equal(outputs[6], stylized[6])  # no trail of the previous shot at all
    assert smoother.cuts == 1
    assert not np.array_equal(outputs[7], stylized[7])  # and smoothing resumes within the new shot


def test_reset_makes_the_next_frame_pass_through(panning):
    frames, styled = panning
    smoother = make_smoother("flow")
    run(smoother, frames[:3], styled[:3])
    smoother.reset()
    assert np.array_equal(smoother.process(frames[3], styled[3]), styled[3])


def test_flow_ghosts_less_than_blend_at_the_same_strength(panning):
    frames, styled = panning
    clean = [255 - f for f in frames]  # the stylizer without shimmer, to isolate trailing content
    ghost_flow = ghosting(run(make_smoother("flow", 0.7), frames, clean), clean)
    ghost_blend = ghosting(run(make_smoother("blend", 0.7), frames, clean), clean)
    assert ghost_flow < 0.3 * ghost_blend, (ghost_flow, ghost_blend)


@pytest.mark.parametrize("mode", ["flow", "flow-hq"])
@pytest.mark.parametrize("h,w", [(1, 1), (1, 64), (64, 1), (8, 8), (16, 2000), (2000, 16), (24, 300), (2, 300)])
def test_flow_smoothing_takes_frames_too_small_or_too_thin_for_dis(mode, h, w):
    # DIS raises below 12 pixels a side and crashed the process on wide frames under 32 pixels high;
    # the resize to the flow resolution refused 2000×16
    canvas = texture(h + 4, w + 8, seed=3)
    frames = pan(canvas, 4, h, w, dx=2, dy=1)
    smoother = make_smoother(mode)
    out = run(smoother, frames, shimmer(frames, seed=4))
    assert [o.shape for o in out] == [f.shape for f in frames]


def test_smoother_rejects_mismatched_sizes():
    with pytest.raises(ValueError):
        make_smoother("flow").process(texture(20, 30, 1), texture(20, 32, 1))


# ----------------------------------------------------------------------------------------- scene cuts


def test_scene_cut_detector_fires_on_a_cut_only():
    canvas = texture(H + 40, W + 200, seed=15)
    shot_a = pan(canvas, 20, H, W, dx=8, dy=2)  # fast but smooth motion
    shot_b = pan(texture(H + 40, W + 200, seed=16), 3, H, W, dx=8)
    detector = SceneCutDetector()
    fired = [detector.is_cut(f) for f in shot_a + shot_b]
    assert fired == [False] * 20 + [True, False, False]


def test_scene_cut_detector_ignores_brightness_flicker_and_noise():
    base = texture(H, W, seed=17).astype(np.float32)
    rng = np.random.default_rng(18)
    detector = SceneCutDetector()
    for _ in range(30):
        gain, offset = rng.uniform(0.6, 1.3), rng.uniform(-30, 30)
        frame = base * gain + offset + rng.normal(0, 8, base.shape)
        assert not detector.is_cut(np.clip(frame, 0, 255).astype(np.uint8))


def test_scene_cut_detector_on_flat_frames():
    detector = SceneCutDetector()
    black, grey = np.zeros((H, W, 3), np.uint8), np.full((H, W, 3), 128, np.uint8)
    assert not detector.is_cut(black)
    assert not detector.is_cut(black)
    assert detector.is_cut(grey)  # flat to flat, large level jump
    assert detector.is_cut(texture(H, W, seed=19))  # flat to textured
    detector.reset()
    assert not detector.is_cut(black)  # first frame after reset is never a cut


def test_temporal_eval_tool_prints_every_mode_and_both_summaries(tiny_model, clips, capsys, monkeypatch) -> None:
    """tools/temporal_eval.py end to end on a synthetic clip, the tiny model standing in for both models."""
    from conftest import load_tool

    tool = load_tool("temporal_eval", monkeypatch)
    clip = clips("eval.mp4", size=(96, 64), frames=8)
    assert tool.main([str(tiny_model), "--clips", str(clip), "--frames", "6", "--size", "96",
                      "--temporal-model", str(tiny_model)]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[1]: line.split() for line in out.splitlines() if line.startswith("eval.mp4 ")}
    assert set(rows) == {"input", "off", "blend", "flow", "flow-hq", "T:off", "T:flow", "T:flow-hq"}, out
    assert rows["off"][3] == "1.000" and rows["T:off"][3] == "1.000"
    # the same model twice: its rows agree, and against the first model's per-frame output T:off is 1
    assert rows["T:flow"][2] == rows["flow"][2]
    assert "warping error ÷ per-frame, mean over the clips: blend" in out
    assert "÷ the first model's per-frame output, mean over the clips: T:off 1.000, T:flow" in out


def test_warping_error_on_a_thin_frame_does_not_crash() -> None:
    """DIS segfaults on wide images under 32 px high; the metric pads them as the smoother does. In a
    child process, so a crash fails this test instead of ending the run."""
    import subprocess
    import sys

    code = (
        "import numpy as np\n"
        "from realtime.temporal_metrics import pair_warping_error\n"
        "rng = np.random.default_rng(0)\n"
        "a = rng.integers(0, 255, (12, 300, 3), dtype=np.uint8); b = np.roll(a, 2, axis=1)\n"
        "print(pair_warping_error(a, b, a, b))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-500:])
    float(proc.stdout.strip())  # a number (NaN allowed where no pixel is valid)
