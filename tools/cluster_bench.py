#!/usr/bin/env python
"""Scaling of restyle-video --cluster on this machine: a local multi-node Ray cluster (``ray start
--head`` plus worker nodes, one core each, all on this machine) restyles the same clip with 1 and 2
workers, beside the single-machine run on the same cores.

    python tools/cluster_bench.py                        # 8 s of diver.mov, fast tier, segments of 2 s
    python tools/cluster_bench.py --seconds 4 --nodes 2 --json

The clip (default ../shared/data/videos/diver.mov, else a synthetic one) is cut to ``--seconds`` and
re-encoded at its size with a keyframe every second, so it splits into segments of ``--segment-seconds``.
For each run it prints frames/s over the whole run and after start-up (the workers' model loads and, for
the single run, the model warm-up), the driver's own CPU time per frame (user + system of the driver
process: planning, reading and shipping packets, joining segments, copying audio; Ray's node processes
are separate and not in it, but the driver's idle Ray threads over a slow run are), and the workers' time
per frame. The driver's work per frame is then timed alone (planning, reading and pickling the segments,
joining the output with its audio: ``driver_work``), and from it the estimate of how many workers one
driver core can feed: (1000 / driver work ms per frame) / (frames/s of one worker), for the measured CPU
workers and for a GPU worker of a given speed (``--gpu-fps``: an assumption, stated as such; no GPU
here). Ray's workers run at the nodes' priority (``RAY_worker_niceness=0``; Ray's default is 15).

The Ray nodes are started as ``ray start --block`` children of this script, on 127.0.0.1 without token
authentication, and stopped by their process groups at the end (``ray stop`` would stop every Ray
process on the machine).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
CLIP = REPO.parent / "shared" / "data" / "videos" / "diver.mov"


def make_clip(src: Path | None, dest: Path, seconds: float, gop_seconds: float = 1.0) -> Path:
    """The first ``seconds`` of ``src`` (or a synthetic clip), H.264 with a keyframe every ``gop_seconds``,
    the audio re-encoded to AAC."""
    import av

    if src is None or not src.is_file():
        sys.path.insert(0, str(REPO / "tests"))
        from media import make_video

        make_video(dest, size=(640, 360), frames=int(seconds * 25), audio="aac", gop=int(25 * gop_seconds))
        return dest
    with av.open(str(src)) as inp, av.open(str(dest), "w") as out:
        vs = inp.streams.video[0]
        rate = vs.average_rate or Fraction(25)
        ov = out.add_stream("libx264", rate=rate, options={"preset": "veryfast", "crf": "18"})
        ov.width, ov.height, ov.pix_fmt = vs.codec_context.width, vs.codec_context.height, "yuv420p"
        ov.codec_context.gop_size = max(1, int(round(float(rate) * gop_seconds)))
        oa = None
        if inp.streams.audio:
            a = inp.streams.audio[0]
            oa = out.add_stream("aac", rate=a.codec_context.sample_rate)
        for frame in inp.decode(*([vs] + ([inp.streams.audio[0]] if oa else []))):
            t = float(frame.pts * frame.time_base) if frame.pts is not None else 0.0
            if t >= seconds:
                continue
            if isinstance(frame, av.VideoFrame):
                frame = frame.reformat(format="yuv420p")
                frame.pict_type = av.video.frame.PictureType.NONE
                out.mux(ov.encode(frame))
            else:
                frame.pts = None
                out.mux(oa.encode(frame))
        out.mux(ov.encode(None))
        if oa is not None:
            out.mux(oa.encode(None))
    return dest


def driver_work(clip: Path, restyled: Path, segment_seconds: float, tmp: Path) -> dict[str, float]:
    """CPU ms per frame of what the driver does for each frame, timed alone (Ray's own threads, which
    idle along with a slow run, are not in it): planning, reading and pickling the segments (what Ray
    does to ship them), and joining: the restyled output's packets and the audio copied into a new file
    by the joiner, as it joins the workers' segments."""
    import pickle

    from realtime.cluster.join import SegmentJoiner
    from realtime.cluster.segments import plan, read_segments, stream_info

    def cpu() -> float:
        t = os.times()
        return t.user + t.system

    c0 = cpu()
    info = stream_info(clip)
    plans = plan(clip, max(1, round(segment_seconds * float(info.rate or 25))), 0)
    frames = sum(p.frames for p in plans)
    c1 = cpu()
    shipped = sum(len(pickle.dumps(seg, protocol=5)) for seg in read_segments(clip, 0, plans, info))
    c2 = cpu()
    joiner = SegmentJoiner(tmp / "joined.mp4", streams_from=clip, video_index=info.video_index, origin=info.origin, overwrite=True)
    joiner.add(restyled.read_bytes())
    joiner.close()
    c3 = cpu()
    return {"plan_ms_per_frame": round(1000 * (c1 - c0) / frames, 3),
            "read_and_pickle_ms_per_frame": round(1000 * (c2 - c1) / frames, 3),
            "join_ms_per_frame": round(1000 * (c3 - c2) / frames, 3),
            "driver_work_ms_per_frame": round(1000 * (c3 - c0) / frames, 3),
            "shipped_kb_per_frame": round(shipped / frames / 1024, 2)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_nodes(nodes: int) -> tuple[str, list[subprocess.Popen]]:
    """A head node and ``nodes - 1`` worker nodes, one CPU each, as ``ray start --block`` children."""
    ray_bin = str(Path(sys.executable).parent / "ray")
    port = free_port()
    address = f"127.0.0.1:{port}"
    common = ["--num-cpus", "1", "--block", "--disable-usage-stats"]
    procs = [subprocess.Popen([ray_bin, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port),
                               "--include-dashboard", "false", *common],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)]
    try:
        wait_for_cpus(address, 1)
        for _ in range(nodes - 1):
            procs.append(subprocess.Popen([ray_bin, "start", "--address", address, "--node-ip-address", "127.0.0.1", *common],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
        wait_for_cpus(address, nodes)
    except BaseException:
        stop_nodes(procs, port)
        raise
    return address, procs


def wait_for_cpus(address: str, cpus: int, limit_s: float = 180) -> None:
    import ray

    deadline = time.monotonic() + limit_s
    while True:
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
            have = ray.cluster_resources().get("CPU", 0)
            ray.shutdown()
            if have >= cpus:
                return
        except Exception:  # noqa: BLE001 - not up yet
            if ray.is_initialized():
                ray.shutdown()
        if time.monotonic() > deadline:
            raise SystemExit(f"the local Ray cluster did not reach {cpus} CPUs in {limit_s:.0f}s")
        time.sleep(1)


def stop_nodes(procs: list[subprocess.Popen], port: int) -> None:
    # stop worker nodes first; each `ray start --block` stops the processes it started on SIGTERM
    for p in reversed(procs):
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(p.pid, signal.SIGKILL)  # what is left of the node's process group
            except ProcessLookupError:
                pass
    # `ray start --head` leaves the head's address here, where a later ray.init() without an address
    # would try to join it (``ray stop`` removes it; a stopped process group does not)
    current = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"
    try:
        if current.read_text().strip().endswith(f":{port}"):
            current.unlink()
    except OSError:
        pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clip", type=Path, default=CLIP)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--max-size", type=int, default=None, help="stylize at this long side (as restyle-video --max-size)")
    ap.add_argument("--segment-seconds", type=float, default=2.0)
    ap.add_argument("--style", default=None, help="style (default: the zoo's default, fast tier)")
    ap.add_argument("--nodes", type=int, default=2, help="Ray nodes of one core each (the workers: 1 .. nodes)")
    ap.add_argument("--gpu-fps", type=float, default=150.0,
                    help="assumed frames/s of one GPU worker for the estimate (not measured here)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    # a timeout's SIGTERM must still run the finally that stops the Ray nodes this script started
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    # The nodes listen on 127.0.0.1 only and live for this script: no token authentication (Ray 2.60
    # turns it on by default, and `ray start` and this driver would have to share the token first).
    os.environ["RAY_AUTH_MODE"] = "disabled"
    # Ray starts its workers at niceness 15; on a machine shared with other work that starves them
    # against the single run it is compared with: run them at the nodes' own priority.
    os.environ["RAY_worker_niceness"] = "0"

    if importlib.util.find_spec("ray") is None:  # fail early without the [cluster] extra
        raise SystemExit("cluster_bench: error: Ray is not installed: pip install -e '.[cluster]'")

    from realtime.cluster.run import ClusterOptions, InputJob, restyle_on_cluster
    from realtime.cluster.work import SegmentSettings
    from realtime.models import resolve_style_for_device
    from realtime.pipeline import RestyleOptions, restyle_file
    from realtime.sinks import EncoderSettings

    style = resolve_style_for_device(args.style, "fast", "cpu")
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="cluster-bench-") as tmp:
        tmp_path = Path(tmp)
        clip = make_clip(args.clip, tmp_path / "clip.mp4", args.seconds)
        enc = EncoderSettings()
        for threads in (1, 2):
            s = restyle_file(RestyleOptions(input=clip, output=tmp_path / f"single{threads}.mp4", style=str(style.path),
                                            tier="fast", device="cpu", threads=threads, encoder=enc,
                                            max_size=args.max_size), progress=False)
            rows.append({"run": f"single machine, {threads} thread{'s' if threads > 1 else ''}", "workers": 0,
                         "frames": s.frames, "seconds": s.seconds, "fps": s.fps, "fps_after_startup": s.fps_after_warmup})
        address, procs = start_nodes(args.nodes)
        try:
            for n in range(1, args.nodes + 1):
                out = tmp_path / f"cluster{n}.mp4"
                settings = SegmentSettings(".mp4", enc, max_size=args.max_size)
                s = restyle_on_cluster([InputJob(clip, out)], style.path, settings,
                                       ClusterOptions(address=address, workers=n, threads=1, device="cpu",
                                                      segment_seconds=args.segment_seconds),
                                       check=lambda job: None, progress=False)
                r = s.inputs[0]
                if not r.ok:
                    raise SystemExit(f"cluster run failed: {r.error}")
                d = s.as_dict()
                rows.append({"run": f"cluster, {n} worker{'s' if n > 1 else ''} of 1 core", "workers": n,
                             "frames": s.frames, "seconds": round(s.seconds, 2), "fps": d["fps"],
                             "fps_after_startup": round(s.frames / (s.seconds - s.startup_s), 3),
                             "segments": r.segments, "startup_s": round(s.startup_s, 2),
                             "driver_cpu_ms_per_frame": d["driver_cpu_ms_per_frame"],
                             "worker_ms_per_frame": round(1000 * s.worker_s / s.frames, 2)})
        finally:
            stop_nodes(procs, int(address.rsplit(":", 1)[1]))

        work = driver_work(clip, tmp_path / "cluster1.mp4", args.segment_seconds, tmp_path)

    one = next(r for r in rows if r["workers"] == 1)
    for r in rows:
        r["speedup_vs_1_worker"] = round(float(r["fps_after_startup"]) / float(one["fps_after_startup"]), 2)
    driver_ms = work["driver_work_ms_per_frame"]
    worker_fps = 1000 / float(one["worker_ms_per_frame"])
    estimate = {
        **work,
        "driver_frames_per_core_second": round(1000 / driver_ms, 1),
        "cpu_workers_one_driver_core_feeds": round(1000 / driver_ms / worker_fps, 1),
        "assumed_gpu_worker_fps": args.gpu_fps,
        "gpu_workers_one_driver_core_feeds": round(1000 / driver_ms / args.gpu_fps, 1),
    }
    if args.json:
        print(json.dumps({"rows": rows, "estimate": estimate}, indent=2))
        return
    print(f"clip: {args.seconds:g} s of {args.clip.name if args.clip.is_file() else 'a synthetic clip'}, "
          f"segments of {args.segment_seconds:g} s, style {style.name} (fast tier), CPU")
    print("| run | frames/s | after start-up | speedup vs 1 worker | driver CPU ms/frame | worker ms/frame |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['run']} | {r['fps']:.1f} | {r['fps_after_startup']:.1f} | {r['speedup_vs_1_worker']:.2f} | "
              f"{r.get('driver_cpu_ms_per_frame', '')} | {r.get('worker_ms_per_frame', '')} |")
    print(json.dumps(estimate))


if __name__ == "__main__":
    main()
