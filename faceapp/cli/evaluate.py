"""evaluate (accuracy on folders of labelled photos) and bench (speed against plain insightface)."""

from __future__ import annotations

import sys
from pathlib import Path

from faceapp.cli.common import Progress, home_paths, print_json
from faceapp.core.errors import FaceAppError
from faceapp.core.matcher import Aggregate
from faceapp.core.settings import Settings
from faceapp.engine.catalog import CATALOG, get_pack

AGGREGATES = [a.value for a in Aggregate]


def register(sub) -> None:
    p = sub.add_parser(
        "evaluate", help="measure accuracy on folders with one sub-folder of photos per person",
        description="Split the people into known (first K photos enrolled in memory, the rest probed) and "
                    "unknown (probed only) and report rank-1, FNIR at FPIR 1%%/5%%, EER and the error rates "
                    "at the threshold in use. Nothing is written to your database.")
    p.add_argument("dirs", nargs="*", metavar="DIR", help="folder of people (same names in several folders = one person)")
    p.add_argument("--liveness", nargs=2, metavar=("DIR_REAL", "DIR_FAKE"),
                   help="instead: APCER/BPCER/ACER of the liveness models on photos of real faces and of attacks "
                        "(photos or screens shown to a camera), at the liveness threshold in the settings")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--plot", metavar="FILE.png", help="save distance histograms and the DET curve (needs faceapp[plot])")
    p.add_argument("--enroll", type=int, default=3, metavar="K", help="photos enrolled per known person (default 3)")
    p.add_argument("--model", default=None, metavar="PACK[,PACK]",
                   help=f"model pack(s) to evaluate, comma-separated: {', '.join(CATALOG)} (default: the configured pack)")
    p.add_argument("--aggregate", default=None, metavar="AGG[,AGG]",
                   help=f"per-person aggregation(s): {', '.join(AGGREGATES)} or 'all' (default: the configured one)")
    p.add_argument("--folds", type=int, choices=(1, 2), default=2,
                   help="2 (default): run the known/unknown split both ways and pool the searches")
    p.add_argument("--threshold", type=float, default=None,
                   help="threshold for the FNIR/FPIR-at-default numbers (default: the one in use for the model)")
    p.add_argument("--strangers", action="append", default=[], metavar="PATH",
                   help="video, photo or folder of photos of people in none of the DIRs: every face found is an "
                        "extra stranger search (repeatable)")
    p.add_argument("--cluster", action="store_true",
                   help="also group every photo as an unknown event (as visitors are grouped) and report B-cubed "
                        "precision/recall/F against the folders, for each grouping method")
    p.add_argument("--models", metavar="DIR", help="models folder (default: the data folder's models/)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "bench", help="time faceapp's pipeline against plain insightface on the same frames",
        description="Runs insightface's FaceAnalysis(name='buffalo_sc') with its defaults and faceapp's pipeline "
                    "on every frame of the benchmark videos and group photos, compares the labels they give, "
                    "and times one identification against 1k-1M stored embeddings.")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--data", metavar="DIR", help="folder with videos/ and group_photos/ and people to enroll "
                                                 "(default: $FACEAPP_SHARED/faces or ../shared/faces)")
    p.add_argument("--models", metavar="DIR", help="models folder (default: the data folder's models/)")
    p.add_argument("--pack", default="buffalo_sc", help="insightface pack to compare (default buffalo_sc)")
    p.add_argument("--max-frames", type=int, default=None, metavar="N", help="at most N frames per video / N photos")
    p.add_argument("--match-sizes", default="1000,10000,100000,1000000", metavar="N,N",
                   help="gallery sizes for the matching benchmark ('' to skip; 1M needs about 2.5 GB)")
    p.add_argument("--output", metavar="FILE.json", help="also write the JSON result to this file")
    p.set_defaults(func=cmd_bench)


def _models_dir(args) -> Path:
    return Path(args.models) if args.models else home_paths(args).models


def _settings(args) -> Settings:
    """The user's settings if a data folder exists; defaults otherwise (never creates one)."""
    paths = home_paths(args)
    if not paths.db.exists():
        return Settings()
    from faceapp.store.db import Store

    with Store(paths.db) as store:
        return store.load_settings()


def _list(value: str | None, default: str, allowed: list[str], what: str) -> list[str]:
    items = [v.strip() for v in (value or default).split(",") if v.strip()]
    if items == ["all"]:
        return list(allowed)
    bad = [v for v in items if v not in allowed]
    if bad:
        raise FaceAppError(f"unknown {what} {', '.join(bad)}; choose from {', '.join(allowed)}")
    return items


def cmd_evaluate(args) -> int:
    from faceapp.service.evaluate import (
        TABLE_HEADER, EvalConfig, Evaluator, cluster_quality, format_cluster, format_report, format_table_row,
        save_plot)

    settings = _settings(args)
    if args.liveness:
        return _evaluate_liveness(args, settings)
    if not args.dirs:
        raise FaceAppError("give at least one folder of people (or --liveness DIR_REAL DIR_FAKE)")
    packs = _list(args.model, settings.pack, list(CATALOG), "model pack")
    aggs = _list(args.aggregate, settings.aggregate, AGGREGATES, "aggregation")
    if args.enroll < 1:
        raise FaceAppError("--enroll must be at least 1")
    if args.plot and not args.plot.lower().endswith(".png"):
        raise FaceAppError("--plot needs a file name ending in .png")
    ev = Evaluator(args.dirs, _models_dir(args), threads=settings.threads, providers=tuple(settings.providers),
                   strangers=args.strangers)
    print(f"{len(ev.identities)} people, {len(ev.photos)} photos", file=sys.stderr)
    results = []
    for pack in packs:
        bar = Progress(f"embedding with {pack}")
        threshold = args.threshold if args.threshold is not None else settings.threshold_for(get_pack(pack).recognizer_id)
        for agg in aggs:
            cfg = EvalConfig(enroll=args.enroll, aggregate=agg, folds=args.folds)
            results.append(ev.evaluate(pack, cfg, threshold, progress=bar))
    clusters = None
    if args.cluster:
        first = results[0]
        clusters = cluster_quality(ev.identities, ev.faces(first.pack), first.default_threshold)
    if args.plot:
        path = save_plot(results[0], args.plot)
        print(f"plot saved to {path}", file=sys.stderr)
    if args.json:
        obj = results[0].to_dict()
        if len(results) > 1:
            obj["comparison"] = [r.to_dict() for r in results]
        if clusters is not None:
            obj.update(clusters)
        print_json(obj)
        return 0
    for r in results:
        print(format_report(r))
    if len(results) > 1:
        print()
        print(TABLE_HEADER)
        for r in results:
            print(format_table_row(r))
    if clusters is not None:
        print()
        print(format_cluster(clusters))
    return 0


def _evaluate_liveness(args, settings: Settings) -> int:
    from faceapp.engine.engine import EngineConfig, FaceEngine
    from faceapp.engine.liveness import LivenessConfig, LivenessScorer
    from faceapp.service.liveness import evaluate_liveness

    if args.dirs:
        raise FaceAppError("--liveness takes its two folders itself; leave out the other DIR arguments")
    models = _models_dir(args)
    engine = FaceEngine(EngineConfig(pack=settings.pack, models_dir=models, providers=tuple(settings.providers),
                                     threads=settings.threads, det_threshold=settings.det_threshold,
                                     det_max_side=settings.det_max_side)).prepare()
    scorer = LivenessScorer(LivenessConfig.from_pack(models, providers=tuple(settings.providers)),
                            run_lock=engine.run_lock).prepare()
    threshold = settings.liveness_threshold
    result = evaluate_liveness(engine, scorer, args.liveness[0], args.liveness[1], threshold,
                               progress=Progress("liveness"))
    if args.json:
        print_json(result.to_dict())
    else:
        print(result.describe())
    return 0


def cmd_bench(args) -> int:
    import json

    from faceapp.service.bench import default_data_dir, run_bench

    data = Path(args.data) if args.data else default_data_dir()
    if not data.is_dir():
        raise FaceAppError(f"benchmark data not found at {data}; give the folder with --data")
    models = _models_dir(args)
    try:
        sizes = [int(s) for s in args.match_sizes.split(",") if s.strip()]
    except ValueError:
        raise FaceAppError("--match-sizes takes numbers separated by commas, e.g. 1000,100000") from None
    if any(s < 1 for s in sizes):
        raise FaceAppError("--match-sizes must be positive")
    result = run_bench(models, data, pack=args.pack, max_frames=args.max_frames, match_sizes=sizes,
                       progress=Progress("bench"))
    obj = result.to_dict()
    if args.output:
        Path(args.output).write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")
    if args.json:
        print_json(obj)
        return 0
    print(format_bench(obj))
    return 0


def format_bench(d: dict) -> str:
    """Human-readable bench summary."""
    lines = [f"{d['frames']} frames, gallery of {d['gallery_people']} people ({d['gallery_templates']} templates), "
             f"threshold {d['threshold']}, {d['cpu']}, load average {d['load_average'][0]} -> {d['load_average'][1]}",
             f"{'source':<44}{'frames':>7}{'insightface':>13}{'faceapp':>10}{'speedup':>9}{'agree':>8}"]
    for s in d["sources"]:
        lines.append(f"{s['name']:<44}{s['frames']:>7}{_ms(s['baseline_ms_p50']):>13}{_ms(s['faceapp_ms_p50']):>10}"
                     f"{_x(s['speedup']):>9}{_pct(s['label_agreement']):>8}")
    lines.append(f"{'all (p50 per frame)':<44}{d['frames']:>7}{_ms(d['baseline_ms_p50']):>13}"
                 f"{_ms(d['faceapp_ms_p50']):>10}{_x(d['speedup']):>9}{_pct(d['label_agreement']):>8}")
    lines.append(f"video frames only: {_x(d['video_speedup'])} faster; label agreement on the faces insightface "
                 f"named: {_pct(d['label_agreement_known'])}")
    for m in d.get("match", []):
        loop = f", Python loop {m['python_loop_ms']:.1f} ms" if m["python_loop_ms"] is not None else ""
        lines.append(f"one query vs {m['n']:>9,} embeddings: {m['faceapp_ms']:.2f} ms "
                     f"(L2 scan {m['l2_scan_ms']:.1f} ms{loop})")
    lines.append(f"peak memory: {d['peak_rss_mb_pipeline']:.0f} MB for the pipelines, {d['peak_rss_mb']:.0f} MB "
                 f"with the matching benchmark")
    return "\n".join(lines)


def _ms(x) -> str:
    return "n/a" if x is None else f"{x:.1f} ms"


def _x(x) -> str:
    return "n/a" if x is None else f"{x:.2f}x"


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"

