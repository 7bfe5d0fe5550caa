"""Several cameras on one PC: N cameras of 640x360 at 15 fps in ONE process (one engine, one gallery,
the fair scheduler of service/stations.py) against the same cameras as N separate processes, in
the same run. Per camera: label latency (frame captured -> its labels ready) p50/p95 and the
recognition fps; per run: CPU use (all cores = 200% here) and peak memory. Then how many cameras
fit in one process before a camera's p95 passes 250 ms.

The camera is the Hamilton clip (640x360) re-timed to 15 fps (every second frame), looped, played
in real time; the people of the clip are enrolled.

    python benchmarks/bench_multicam.py [--seconds 30] [--cameras 4] [--scale 1,2,4,6] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_io import load_avg, write_results  # noqa: E402

HERE = Path(__file__).resolve().parent
# A person crossing a door's view in about 2 s is then looked at 10 times or more.
MIN_FPS = 5.0


def make_clip(src: Path, out: Path, fps: float = 15.0) -> Path:
    cap = cv2.VideoCapture(str(src))
    writer = None
    k = 0
    while True:
        ok, image = cap.read()
        if not ok:
            break
        if image.shape[:2] != (360, 640):
            image = cv2.resize(image, (640, 360), interpolation=cv2.INTER_AREA)
        if k % 2 == 0:
            if writer is None:
                writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"MJPG"), fps, (640, 360))
            writer.write(image)
        k += 1
    cap.release()
    writer.release()
    return out


def prepare_home(home: Path, shared: Path) -> None:
    from faceapp.engine.installer import install_pack
    from faceapp.service import enroll
    from faceapp.service.app import App

    install_pack("buffalo_sc", home / "models", source=shared / "models")
    with App(home) as app:
        ex = shared / "faces" / "face_recognition_examples"
        enroll.enroll_files(app, "Lin-Manuel Miranda", sorted((ex / "Lin_Manuel_Miranda").iterdir()))
        enroll.enroll_files(app, "Alex Lacamoire", sorted((ex / "Alex_Lacamoire").iterdir())[:2])


def add_distractors(home: Path, n: int) -> None:
    """``n`` random unit templates, 5 per made-up person, written straight into the database (a
    search-cost stand-in for a big site: random faces are far from everyone, so every stranger
    of the clip takes the index's wider search, the expensive case)."""
    from faceapp.service.app import App
    from faceapp.service.bench import synthetic_gallery
    from faceapp.store.common import utc_now

    g = synthetic_gallery(n)
    with App(home) as app:
        model, now = app.model_id, utc_now()
        base = int(app.store.query("SELECT COALESCE(MAX(id), 0) AS m FROM people")[0]["m"]) + 1
        with app.store.transaction() as conn:
            conn.executemany("INSERT INTO people (id, name, active, created) VALUES (?, ?, 1, ?)",
                             ((base + int(p), f"distractor {int(p)}", now) for p in g.person_ids))
            conn.executemany("INSERT INTO templates (person_id, model_id, embedding, created) VALUES (?, ?, ?, ?)",
                             ((base + int(p), model, e.tobytes(), now) for p, e in zip(g.row_person, g.embeddings)))


def run_station(home: Path, clip: Path, n: int, seconds: float) -> dict:
    """n cameras of ``clip`` in this process; per-camera numbers."""
    from faceapp.service.app import App
    from faceapp.service.stations import CameraSpec, Station

    with App(home) as app:
        # Loaded before the clock starts: a big gallery takes longer to load than a run lasts.
        t0 = time.monotonic()
        gallery = app.gallery(include_inactive=True)
        load_s = time.monotonic() - t0
        station = Station(app, [CameraSpec(str(clip), f"Door {i + 1}") for i in range(n)], log_entries=False,
                          loop=True)
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.monotonic()
        station.run(seconds=seconds)
        wall = time.monotonic() - t0
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        cams = []
        for i, s in enumerate(station.stats):
            lat = np.array(s.latencies[5:] or [np.nan]) * 1e3      # the first frames wait for warm-up
            cams.append({"camera": i + 1, "frames": s.frames, "fps": round(s.frames / wall, 2),
                         "latency_p50_ms": round(float(np.nanmedian(lat)), 1),
                         "latency_p95_ms": round(float(np.nanpercentile(lat, 95)), 1),
                         "camera_frames": station.feeds[i].frames_read})
        cpu = (r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime) / wall * 100
        return {"cameras": cams, "cpu_percent": round(cpu, 1), "gallery_templates": gallery.size,
                "gallery_load_s": round(load_s, 1),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "seconds": round(wall, 1), "load_avg": load_avg()}


def summarise(cams: list[dict]) -> dict:
    fps = [c["fps"] for c in cams]
    return {"worst_p95_ms": max(c["latency_p95_ms"] for c in cams),
            "fps_min": min(fps), "fps_max": max(fps),
            "fps_ratio_max_over_min": round(max(fps) / max(min(fps), 1e-9), 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--scale", default="1,2,4,6,8,12,16,24",
                        help="camera counts for the 'how many fit' run (stops at the first past 250 ms)")
    parser.add_argument("--distractors", type=int, default=0,
                        help="random templates added to the gallery (e.g. 1000000 for a big site)")
    parser.add_argument("--skip-separate", action="store_true", help="no N-processes comparison")
    parser.add_argument("--child", nargs=3, metavar=("HOME", "CLIP", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(HERE / "results" / "multicam.json"))
    args = parser.parse_args()
    if args.child:
        home, clip, out = args.child
        Path(out).write_text(json.dumps(run_station(Path(home), Path(clip), 1, args.seconds)))
        return 0
    shared = Path(os.environ.get("FACEAPP_SHARED", HERE.parent.parent / "shared"))
    res: dict = {"load_avg_start": load_avg(), "cpus": os.cpu_count(), "seconds_per_run": args.seconds}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clip = make_clip(shared / "faces" / "videos" / "face_recognition_short_hamilton_clip.mp4", tmp / "cam15.avi")
        home = tmp / "home"
        prepare_home(home, shared)
        if args.distractors:
            add_distractors(home, args.distractors)
        n = args.cameras
        one = run_station(home, clip, n, args.seconds)
        res["one_process"] = {**one, **summarise(one["cameras"])}
        print("one process", json.dumps(res["one_process"]), flush=True)
        if not args.skip_separate:
            # The same cameras as n separate processes, started together.
            procs, outs = [], []
            t0 = time.monotonic()
            for i in range(n):
                out = tmp / f"child{i}.json"
                outs.append(out)
                procs.append(subprocess.Popen([sys.executable, __file__, "--seconds", str(args.seconds),
                                               "--child", str(home), str(clip), str(out)]))
            for p in procs:
                p.wait()
            children = [json.loads(o.read_text()) for o in outs]
            cams = [dict(c["cameras"][0], camera=i + 1) for i, c in enumerate(children)]
            res["separate_processes"] = {"cameras": cams, **summarise(cams),
                                         "cpu_percent": round(sum(c["cpu_percent"] for c in children), 1),
                                         "peak_rss_mb_sum": round(sum(c["peak_rss_mb"] for c in children), 1),
                                         "seconds": round(time.monotonic() - t0, 1), "load_avg": load_avg()}
            print("separate", json.dumps(res["separate_processes"]), flush=True)
        scale = []
        for k in [int(x) for x in args.scale.split(",") if x.strip()]:
            r = run_station(home, clip, k, args.seconds)
            scale.append({"cameras": k, **summarise(r["cameras"]), "cpu_percent": r["cpu_percent"],
                          "load_avg": r["load_avg"]})
            print("scale", json.dumps(scale[-1]), flush=True)
            if scale[-1]["worst_p95_ms"] > 250:
                break
        res["scaling"] = scale
        fit = [s["cameras"] for s in scale if s["worst_p95_ms"] <= 250]
        res["cameras_within_p95_250ms"] = max(fit) if fit else 0
        # Latency stays low as cameras are added because each camera's newest frame is taken and
        # older ones are dropped: what runs out is how often each camera is looked at.
        fit = [s["cameras"] for s in scale if s["worst_p95_ms"] <= 250 and s["fps_min"] >= MIN_FPS]
        res[f"cameras_within_p95_250ms_and_{MIN_FPS:g}_fps_each"] = max(fit) if fit else 0
    res["load_avg_end"] = load_avg()
    write_results(res, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
