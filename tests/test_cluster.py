"""Several inputs and the Ray cluster (realtime/cluster): the same frames, timestamps and audio as a
single-machine run, a worker killed mid-run, a corrupt input among good ones, Ctrl+C; and, without Ray,
several inputs one after another and the one-line error that says what to install."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from conftest import snapshot
from media import probe

from realtime.cluster.segments import plan, plan_packets

LOSSLESS = ("--crf", "0", "--preset", "ultrafast", "--quiet")


def decoded(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def assert_same_output(reference: Path, out: Path) -> None:
    """Every frame equal, in order, at the same timestamps; the audio kept."""
    a, b = probe(reference), probe(out)
    assert b.frames == a.frames and b.times == a.times and b.decode_errors == 0
    assert len(b.audio) == len(a.audio) >= 1
    assert abs(b.audio[0].seconds - a.audio[0].seconds) <= 0.05
    assert b.audio[0].rms > 1e-4
    for i, (fa, fb) in enumerate(zip(decoded(reference), decoded(out))):
        assert np.array_equal(fa, fb), f"frame {i} differs"


@pytest.fixture(scope="module")
def ray_cluster():
    """One local Ray instance for the module (starting one takes many seconds on 2 cores); the CLI and
    the driver use a connection that is already there."""
    from realtime.cluster.run import keep_signal_handlers

    ray = pytest.importorskip("ray", reason="the [cluster] extra (Ray) is not installed")
    for attempt in (1, 2):
        try:
            with keep_signal_handlers():  # Ray's SIGTERM handler would outlive the module (test_train checks it)
                ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
            break
        except Exception:  # noqa: BLE001 - Ray gives its node 30 s to start: a busy machine may need a second try
            ray.shutdown()
            if attempt == 2:
                raise
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 s at 25 frames/s, a keyframe every 5 frames: several segments of 0.2 s."""
    from media import make_video

    path = tmp_path_factory.mktemp("cluster") / "long.mp4"
    make_video(path, size=(64, 48), frames=50, audio="aac", gop=5)
    return path


@pytest.fixture(scope="module")
def references(tmp_path_factory: pytest.TempPathFactory, long_clip: Path, models_dir: Path):
    """Single-machine outputs (lossless), made once: reference(input) -> output path."""
    from realtime.cli import restyle_video_main

    folder = tmp_path_factory.mktemp("single")
    made: dict[Path, Path] = {}

    def get(inp: Path, *extra: str) -> Path:
        key = inp.with_name(inp.name + "".join(extra))
        if key not in made:
            out = folder / f"{len(made)}{inp.suffix}"
            old = os.environ.get("REALTIME_MODELS_DIR")
            os.environ["REALTIME_MODELS_DIR"] = str(models_dir)
            try:
                assert restyle_video_main([str(inp), str(out), *LOSSLESS, *extra]) == 0
            finally:
                if old is None:
                    os.environ.pop("REALTIME_MODELS_DIR")
                else:
                    os.environ["REALTIME_MODELS_DIR"] = old
            made[key] = out
        return made[key]

    return get


# ------------------------------------------------------------------ planning (no Ray)


def test_segments_cut_at_keyframes_and_own_every_frame_once(long_clip: Path) -> None:
    plans = plan(long_clip, 5, 0)
    assert len(plans) == 10
    assert sum(p.frames for p in plans) == 50
    assert plans[0].first_pts is None and plans[-1].end_pts is None
    for a, b in zip(plans, plans[1:]):
        assert a.end_pts == b.first_pts and a.stop == b.start  # no gap, no overlap without warm-up


def test_warm_up_starts_at_an_earlier_keyframe() -> None:
    # keyframes every 4 packets, pts = packet number: the segment at packet 8 warms up on 3 frames
    meta = [(i, i % 4 == 0) for i in range(16)]
    plans = plan_packets(meta, 8, 3)
    assert [(p.start, p.stop, p.first_pts, p.end_pts, p.frames, p.warmup) for p in plans] == [
        (0, 8, None, 8, 8, 0), (4, 16, 8, None, 8, 3)]


def test_open_gop_leading_pictures_stay_with_the_segment_they_are_shown_in() -> None:
    # decoding order: I0 P3 B1 B2 | I6 B4 B5 P9 B7 B8: B4 and B5 follow the keyframe I6 but come before it
    pts = [0, 3, 1, 2, 6, 4, 5, 9, 7, 8]
    meta = [(p, p in (0, 6)) for p in pts]
    first, second = plan_packets(meta, 4, 0)
    assert (first.start, first.stop, first.end_pts, first.frames) == (0, 7, 6, 6)  # through B5
    assert (second.start, second.first_pts, second.frames) == (4, 6, 4)


# ------------------------------------------------------------------ several inputs, no cluster


def test_several_inputs_one_after_another_without_ray(clips, run_cli, tmp_path: Path, references) -> None:
    a = clips("tone.mp4", audio="aac", frames=25)
    b = clips("short.mov", size=(48, 32), frames=8, audio="aac")
    bad = tmp_path / "bad.mkv"
    bad.write_bytes(b"\x1a\x45\xdf\xa3" + bytes(range(256)) * 8)  # a Matroska signature, then nonsense
    out = tmp_path / "out"
    code, stdout, err = run_cli(a, bad, b, "-o", out, "--json", *LOSSLESS)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("restyle-video: error: bad.mkv: "), err
    results = json.loads(stdout)["inputs"]
    assert [(Path(r["output"]).name, r["ok"]) for r in results] == [
        ("tone.mp4", True), ("bad.mkv", False), ("short.mov", True)]
    assert_same_output(references(a), out / "tone.mp4")
    assert_same_output(references(b), out / "short.mov")
    assert sorted(snapshot(out)) == ["short.mov", "tone.mp4"]


def test_cluster_without_ray_is_one_line_saying_what_to_install(clips, tmp_path: Path) -> None:
    src = clips("tone.mp4", audio="aac", frames=25)
    code = (
        "import sys; sys.modules['ray'] = None\n"  # import ray -> ImportError, as without the extra
        "from realtime.cli import restyle_video_main\n"
        f"sys.exit(restyle_video_main([{str(src)!r}, '-o', {str(tmp_path / 'o')!r}, '--cluster', '--quiet']))"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'realtime[cluster]'" in lines[0], res.stderr
    assert not (tmp_path / "o" / "tone.mp4").exists()


# ------------------------------------------------------------------ on a local Ray cluster


@pytest.mark.slow
def test_starting_ray_keeps_our_signal_handlers() -> None:
    # ray.init installs a SIGTERM handler that calls sys.exit and stays after ray.shutdown: a SIGTERM
    # during a cluster run would skip realtime.signals (one line, exit 143) and the handler leak
    ray = pytest.importorskip("ray", reason="the [cluster] extra (Ray) is not installed")
    from realtime.cluster.run import connect

    if ray.is_initialized():
        pytest.skip("Ray is already up in this process")

    def ours(signum, frame) -> None:  # noqa: ANN001
        pass

    before = signal.signal(signal.SIGTERM, ours)
    try:
        for attempt in (1, 2):
            try:
                assert connect(ray, None)
                break
            except Exception:  # noqa: BLE001 - Ray gives its node 30 s to start: a busy machine may need a second try
                ray.shutdown()
                if attempt == 2:
                    raise
        assert signal.getsignal(signal.SIGTERM) is ours
    finally:
        ray.shutdown()
        signal.signal(signal.SIGTERM, before)


@pytest.mark.slow
def test_cluster_restyles_two_inputs_like_one_machine(ray_cluster, clips, long_clip: Path, run_cli, tmp_path: Path,
                                                      references) -> None:
    short = clips("short.mov", size=(48, 32), frames=8, audio="aac")
    out = tmp_path / "out"
    code, stdout, err = run_cli(long_clip, short, "-o", out, "--cluster", "--workers", "2", "--threads", "1",
                                "--segment-seconds", "0.2", "--json", *LOSSLESS)
    assert code == 0, err
    summary = json.loads(stdout)
    results = summary["inputs"]
    assert [Path(r["input"]).name for r in results] == ["long.mp4", "short.mov"]
    assert results[0]["segments"] >= 5 and results[0]["frames"] == 50 and results[1]["frames"] == 8
    assert results[0]["audio"][0]["mode"] == "copy"
    assert_same_output(references(long_clip), out / "long.mp4")
    assert_same_output(references(short), out / "short.mov")
    assert sorted(snapshot(out)) == ["long.mp4", "short.mov"]  # nothing else left in the folder


@pytest.mark.slow
def test_a_killed_worker_is_replaced_and_the_output_is_exact(ray_cluster, long_clip: Path, tiny_model: Path,
                                                             tmp_path: Path, references) -> None:
    from realtime.cluster.run import ClusterOptions, InputJob, restyle_on_cluster
    from realtime.cluster.work import SegmentSettings
    from realtime.sinks import EncoderSettings

    killed: list[int] = []

    def kill_a_worker(result) -> None:  # noqa: ANN001
        # the worker that sent this segment has its next one queued or running: kill it now
        if not killed:
            pid = int(result.worker.rsplit(":", 1)[1])
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    out = tmp_path / "long.mp4"
    settings = SegmentSettings(suffix=".mp4", encoder=EncoderSettings(crf=0, preset="ultrafast"))
    summary = restyle_on_cluster([InputJob(long_clip, out)], tiny_model, settings,
                                 ClusterOptions(workers=2, threads=1, segment_seconds=0.2, device="cpu"),
                                 check=lambda job: None, progress=False, on_segment=kill_a_worker)
    assert killed and summary.retries >= 1, summary.as_dict()
    assert summary.inputs[0].ok, summary.inputs[0].error
    assert_same_output(references(long_clip), out)


@pytest.mark.slow
def test_a_corrupt_input_fails_alone_and_leaves_nothing(ray_cluster, clips, long_clip: Path, run_cli,
                                                       tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    data = long_clip.read_bytes()
    bad.write_bytes(data[: len(data) // 3])  # cut short: the index at the end is missing
    short = clips("short.mov", size=(48, 32), frames=8, audio="aac")
    out = tmp_path / "out"
    code, stdout, err = run_cli(long_clip, bad, short, "-o", out, "--cluster", "--segment-seconds", "0.2", *LOSSLESS)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("restyle-video: error: bad.mp4: "), err
    assert "Traceback" not in err
    assert sorted(snapshot(out)) == ["long.mp4", "short.mov"]  # the good ones, whole; nothing for bad.mp4
    assert probe(out / "long.mp4", audio=False).frames == 50


@pytest.mark.slow
def test_ctrl_c_stops_the_workers_and_leaves_nothing(ray_cluster, long_clip: Path, tiny_model: Path,
                                                     tmp_path: Path) -> None:
    from realtime.cluster.run import ClusterOptions, InputJob, restyle_on_cluster
    from realtime.cluster.work import SegmentSettings
    from realtime.errors import Interrupted
    from realtime.sinks import EncoderSettings

    def press_ctrl_c(result) -> None:  # noqa: ANN001
        raise KeyboardInterrupt

    out = tmp_path / "long.mp4"
    with pytest.raises(Interrupted):
        restyle_on_cluster([InputJob(long_clip, out)], tiny_model, SegmentSettings(".mp4", EncoderSettings()),
                           ClusterOptions(workers=1, threads=1, segment_seconds=0.2, device="cpu"),
                           check=lambda job: None, progress=False, on_segment=press_ctrl_c)
    assert list(tmp_path.iterdir()) == []
    # the workers were killed: their cores come back to the cluster (Ray frees them asynchronously)
    import time

    import ray

    deadline = time.monotonic() + 60
    while ray.available_resources().get("CPU", 0) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ray.available_resources().get("CPU", 0) == 2


@pytest.mark.slow
def test_flow_smoothing_is_as_steady_at_segment_boundaries_as_inside(ray_cluster, long_clip: Path, tiny_model: Path,
                                                                     tmp_path: Path, references) -> None:
    # Warping error per pair of frames, of the clustered run over the single run's on the same pair
    # (the content makes some pairs harder than others): at segment boundaries no higher than inside.
    from realtime.cluster.run import ClusterOptions, InputJob, restyle_on_cluster
    from realtime.cluster.work import SegmentSettings
    from realtime.sinks import EncoderSettings
    from realtime.temporal_metrics import pair_flows, warping_errors_per_pair

    flows = pair_flows(decoded(long_clip))
    single = np.array(warping_errors_per_pair(flows, decoded(references(long_clip, "--smooth", "flow"))))
    plans = plan(long_clip, 5, 10)
    starts = np.cumsum([p.frames for p in plans])[:-1]  # index of each segment's first frame
    at = np.zeros(len(single), bool)
    at[starts - 1] = True  # errors[t - 1] is the pair (t - 1, t)
    assert at.sum() >= 5

    def ratios(warmup: int) -> tuple[float, float]:
        out = tmp_path / f"warm{warmup}.mp4"
        settings = SegmentSettings(".mp4", EncoderSettings(crf=0, preset="ultrafast"), smooth="flow")
        summary = restyle_on_cluster([InputJob(long_clip, out, audio=False)], tiny_model, settings,
                                     ClusterOptions(workers=1, threads=1, segment_seconds=0.2, device="cpu", warmup=warmup),
                                     check=lambda job: None, progress=False)
        assert summary.inputs[0].ok and summary.inputs[0].segments == len(plans)
        ratio = np.array(warping_errors_per_pair(flows, decoded(out))) / single
        return float(ratio[at].mean()), float(ratio[~at].mean())

    boundary, inside = ratios(10)
    assert boundary <= inside + 0.05, (boundary, inside)
    # the measure sees a boundary: without the warm-up the smoother starts afresh there, and it shows
    cold_boundary, cold_inside = ratios(0)
    assert cold_boundary > cold_inside + 0.2, (cold_boundary, cold_inside)


@pytest.mark.slow
def test_cluster_keeps_a_single_runs_timing_and_streams(ray_cluster, run_cli, tmp_path: Path, references) -> None:
    # A recording that starts at 10 s whose container stored B-frames' decode times as presentation
    # times (sources.FileSource repairs both; so must each worker), and a Matroska file with subtitles
    # and a font (copied by remux.StreamCopier, as in a single run).
    from media import make_clip_with_streams, make_video, subtitle_lines

    late = tmp_path / "late.mp4"
    make_video(late, size=(64, 48), frames=40, audio="aac", gop=8, start=10.0, bframes=2, pts_from_dts=True)
    subbed = tmp_path / "subbed.mkv"
    make_clip_with_streams(subbed, subtitles=("subrip",), font=True)
    out = tmp_path / "out"
    code, stdout, err = run_cli(late, subbed, "-o", out, "--cluster", "--workers", "2", "--threads", "1",
                                "--segment-seconds", "0.2", "--json", *LOSSLESS)
    assert code == 0, err
    results = json.loads(stdout)["inputs"]
    assert results[0]["segments"] >= 3 and results[0]["frames"] == 40
    reference = references(late)
    assert probe(reference).times[0] == 0.0  # the single run counts from the file's origin
    assert_same_output(reference, out / "late.mp4")
    assert_same_output(references(subbed), out / "subbed.mkv")
    assert subtitle_lines(out / "subbed.mkv") == subtitle_lines(references(subbed)) != [[]]
    with av.open(str(out / "subbed.mkv")) as c:
        assert len(c.streams.attachments) == 1


def test_a_cut_file_is_reported_as_a_single_run_reports_it(ray_cluster, run_cli, tmp_path: Path) -> None:
    """The end-of-file check of a single run (pipeline.check_complete) on a cluster run: a Matroska
    recording cut near its end gets one warning line; an intact one none."""
    from media import make_video

    full = tmp_path / "full.mkv"
    make_video(full, frames=50, audio="aac", gop=10)
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(full.read_bytes()[: int(full.stat().st_size * 0.9)])
    intact = tmp_path / "intact.mkv"
    make_video(intact, frames=50, audio="aac", gop=10)
    out = tmp_path / "out"
    code, stdout, err = run_cli(cut, intact, "-o", out, "--cluster", "--workers", "2", "--threads", "1",
                                "--segment-seconds", "0.4", "--json", *LOSSLESS)
    assert code == 0, err
    lines = [ln for ln in err.splitlines() if "warning:" in ln]
    assert len(lines) == 1, err
    assert "cut.mkv" in lines[0] and "truncated" in lines[0] and "of 2.00s" in lines[0]
    results = {Path(r["input"]).name: r for r in json.loads(stdout)["inputs"]}
    assert results["cut.mkv"]["segments"] >= 2 and results["cut.mkv"]["frames"] == probe(cut).frames
    assert not any("truncated" in w for w in results["intact.mkv"].get("warnings", []))
