"""Added cost of liveness at the door, on the Hamilton clip.

Two pipelines on one app (Lin-Manuel Miranda and Alex Lacamoire enrolled) process every frame of
the clip in the same run, alternating in blocks of 20 frames so that load changes on this shared
machine hit both alike: one for a door with liveness ``off``, one for a ``passive`` door. Reported:
per-frame time p50/p95/mean of both and the difference, the time of the liveness step itself on
frames where it ran, and the cost per face scored. A separate loop times one face (both models)
on the live spoof sample.

    python benchmarks/bench_liveness.py [--models DIR] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from faceapp.capture.images import iter_image_files
from faceapp.capture.sources import Frame, VideoFileSource
from faceapp.engine.installer import install_pack
from faceapp.service.app import App
from faceapp.service.bench import cpu_name
from faceapp.service.enroll import enroll_files
from faceapp.service.pipeline import Pipeline
from faceapp.store.attendance import AttendanceStore

HERE = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("FACEAPP_SHARED", HERE.parent.parent / "shared"))
BLOCK = 20


def _pct(values, q) -> float | None:
    return round(float(np.percentile(values, q)), 2) if len(values) else None


def _mean(values) -> float | None:
    return round(float(np.mean(values)), 2) if len(values) else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", help="models folder with buffalo_sc and minifasnet (default: installed "
                                         "from $FACEAPP_SHARED/models into a temp folder)")
    parser.add_argument("--out", default=str(HERE / "results" / "liveness.json"))
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-liveness-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        if args.models:
            (home / "models").symlink_to(Path(args.models).resolve(), target_is_directory=True)
        else:
            for pack in ("buffalo_sc", "minifasnet"):
                install_pack(pack, home / "models", SHARED / "models")
        with App(home) as app:
            for folder in ("Lin_Manuel_Miranda", "Alex_Lacamoire"):
                enroll_files(app, folder.replace("_", " "),
                             iter_image_files(SHARED / "faces" / "face_recognition_examples" / folder))
            att = AttendanceStore(app.store)
            att.add_door("Off door")
            att.add_door("Passive door")
            att.set_door_liveness("Passive door", "passive")
            src = VideoFileSource(SHARED / "faces" / "videos" / "face_recognition_short_hamilton_clip.mp4")
            src.open()
            frames = []
            while (f := src.read()) is not None:
                frames.append(f)
            src.close()
            pipes = {"off": Pipeline(app, door="Off door"), "passive": Pipeline(app, door="Passive door")}
            for p in pipes.values():   # warm up both (models loaded, first-run allocations)
                p.process(Frame(frames[0].image, 0, frames[0].captured - 10.0, None))
                p.reset()
            total = {k: [] for k in pipes}
            step_ms, live_ms, scored, faces = [], [], [], 0
            for start in range(0, len(frames), BLOCK):
                block = frames[start:start + BLOCK]
                order = ("off", "passive") if (start // BLOCK) % 2 == 0 else ("passive", "off")
                for name in order:
                    for fr in block:
                        r = pipes[name].process(fr)
                        total[name].append(r.total_ms)
                        if name == "passive":
                            faces += len(r.faces)
                            step_ms.append(r.liveness_ms)
                            if r.live_scored:
                                live_ms.append(r.liveness_ms)
                                scored.append(r.live_scored)
            per_face = [m / n for m, n in zip(live_ms, scored)]
            scorer = app.liveness()
            assert scorer is not None
            img = cv2.imread(str(SHARED / "faces" / "spoof_samples" / "image_T1.jpg"))
            det = app.engine.detect(img)[0]
            one = []
            for _ in range(100):
                t0 = time.perf_counter()
                scorer.score(img, det.bbox, det.landmarks)
                one.append((time.perf_counter() - t0) * 1e3)
    load_after = os.getloadavg()
    diff = [p - o for p, o in zip(total["passive"], total["off"])]
    result = {
        "cpu": cpu_name(), "python": platform.python_version(),
        "load_average": [round(load_before[0], 2), round(load_after[0], 2)],
        "frames": len(frames), "faces_in_passive_run": faces,
        "frames_with_liveness_work": len(live_ms), "faces_scored": int(sum(scored)),
        "off_ms": {"p50": _pct(total["off"], 50), "p95": _pct(total["off"], 95), "mean": _mean(total["off"])},
        "passive_ms": {"p50": _pct(total["passive"], 50), "p95": _pct(total["passive"], 95),
                       "mean": _mean(total["passive"])},
        # The liveness step timed inside the pipeline, every frame (0 where nothing needed a check):
        # the added cost itself. The totals' difference is the same plus the machine's noise.
        "added_ms_per_frame": {"p50": _pct(step_ms, 50), "p95": _pct(step_ms, 95), "mean": _mean(step_ms)},
        "totals_paired_difference_ms": {"p50": _pct(diff, 50), "mean": _mean(diff)},
        "liveness_step_ms_when_models_ran": {"p50": _pct(live_ms, 50), "p95": _pct(live_ms, 95)},
        "ms_per_face_in_pipeline": {"p50": _pct(per_face, 50), "mean": _mean(per_face)},
        "ms_per_face_alone": {"p50": _pct(one, 50), "p95": _pct(one, 95)},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
