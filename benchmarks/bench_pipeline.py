"""faceapp's pipeline against plain insightface, plus where the milliseconds go.

1. The full ``faceapp bench`` (every frame of the Hamilton clip, the 1080p street video and
   the group photos; both sides in the same run) -> results/bench.json.
2. A per-stage breakdown on Hamilton frames: the baseline's two detector passes, detection at
   the frame's own aspect and at smaller sizes, and embedding one face vs a batch
   -> results/stages.json (see results/README.md).

    python benchmarks/bench_pipeline.py --models ~/.local/share/faceapp/models [--data ../shared/faces]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from faceapp.capture.sources import VideoFileSource
from faceapp.engine.engine import EngineConfig, FaceEngine
from faceapp.service.bench import Baseline, cpu_name, default_data_dir, run_bench

HERE = Path(__file__).resolve().parent


def stages(models: Path, data: Path, every: int = 5, rounds: int = 3) -> dict:
    """Median milliseconds of each model stage on every ``every``-th Hamilton frame.

    All stages run on each frame in turn (``rounds`` times), so a busy moment of a shared
    machine slows every stage alike instead of whichever happened to run then."""
    src = VideoFileSource(data / "videos" / "face_recognition_short_hamilton_clip.mp4")
    src.open()
    frames = []
    while (f := src.read()) is not None:
        if f.index % every == 0:
            frames.append(f.image)
    src.close()
    engine = FaceEngine(EngineConfig(pack="buffalo_sc", models_dir=models)).prepare()
    base = Baseline(models)
    det = base.fa.det_model
    rec = base.fa.models["recognition"]
    for img in frames[:3]:   # warm-up of every session size used below
        det.detect(img)
        engine.detect(img)
    stage_fns = {
        "baseline_get": lambda im, d, bf, c: base.fa.get(im),
        "baseline_detect_128_and_640": lambda im, d, bf, c: det.detect(im),
        "baseline_detect_640x640_only": lambda im, d, bf, c: det.detect(im, input_size=(640, 640)),
        "baseline_detect_128x128_only": lambda im, d, bf, c: det.detect(im, input_size=(128, 128)),
        "faceapp_detect_aspect_640": lambda im, d, bf, c: engine.detect(im),
        "faceapp_detect_aspect_480": lambda im, d, bf, c: engine.detect(im, max_side=480),
        "faceapp_detect_aspect_320": lambda im, d, bf, c: engine.detect(im, max_side=320),
    }
    face_fns = {
        "baseline_embed_one_face": lambda im, d, bf, c: rec.get(im, bf),
        "faceapp_align_and_embed_one_face": lambda im, d, bf, c: engine.embed(im, [d]),
        "faceapp_embed_one_crop": lambda im, d, bf, c: engine.embed_crops([c]),
        "faceapp_embed_batch_of_4": lambda im, d, bf, c: engine.embed_crops([c] * 4),
    }
    times: dict[str, list[float]] = {k: [] for k in (*stage_fns, *face_fns)}
    for _ in range(rounds):
        for img in frames:
            dets = engine.detect(img)
            bfaces = base.fa.get(img)
            d = dets[0] if dets else None
            crop = engine.align(img, d) if d is not None else None
            fns = dict(stage_fns)
            if d is not None and bfaces:
                fns.update(face_fns)
            for name, fn in fns.items():
                t0 = time.perf_counter()
                fn(img, d, bfaces[0] if bfaces else None, crop)
                times[name].append((time.perf_counter() - t0) * 1e3)
    out: dict = {"frames": len(frames), "rounds": rounds, "frame_size": list(frames[0].shape[1::-1])}
    out.update({k: round(float(np.median(v)), 2) for k, v in times.items() if v})
    if "faceapp_embed_batch_of_4" in out:
        out["faceapp_embed_batch_of_4_per_face"] = round(out["faceapp_embed_batch_of_4"] / 4, 2)
    out["faces_found_at_640_480_320"] = [sum(len(engine.detect(im, max_side=s)) for im in frames)
                                         for s in (640, 480, 320)]
    out["baseline_faces_found"] = sum(len(det.detect(im)[0]) for im in frames)
    out["load_average"] = list(os.getloadavg())
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", required=True, help="models folder with buffalo_sc installed")
    parser.add_argument("--data", default=None, help="../shared/faces or equivalent")
    parser.add_argument("--out-dir", default=str(HERE / "results"))
    parser.add_argument("--skip-full", action="store_true", help="only the per-stage breakdown")
    args = parser.parse_args()
    models, data = Path(args.models), Path(args.data) if args.data else default_data_dir()
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    st = stages(models, data)
    st["cpu"] = cpu_name()
    (out_dir / "stages.json").write_text(json.dumps(st, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(st, indent=2))
    if not args.skip_full:
        result = run_bench(models, data).to_dict()
        (out_dir / "bench.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(json.dumps({k: v for k, v in result.items() if k not in ("sources", "match")}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
