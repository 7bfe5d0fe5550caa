"""Visitors and search by face at scale, through the real store (SQLite files on disk).

1. Grouping 100,000 stored unknown events from scratch (``service.visitors.regroup_all``: read
   every embedding, connected components under the threshold, write the visitors): time and
   peak memory (tracemalloc, numpy's buffers included).
2. Adding one new unknown event as a station does (``FaceEventLog.log``: insert the entry and its
   face, compare it with every stored unknown face, join or create its visitor), against the
   full regroup of the same run (the baseline it replaces).
3. Search of one face against 1,000,000 stored events (``search_embedding``: streams the
   embeddings from the database in chunks), and the same product on a matrix already in memory
   against a plain L2 scan (``np.linalg.norm``) in the same run.

Synthetic identities: random unit 512-d centres, 10 events each with noise that puts
same-person distances near 0.4 (different people near 1.0), like real ArcFace embeddings.

    python benchmarks/bench_visitors.py [--group 100000] [--search 1000000] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_io import write_results  # noqa: E402

from faceapp.service.app import App
from faceapp.service.bench import cpu_name, peak_rss_mb
from faceapp.service.visitors import FaceEventLog, entry_face, regroup_all, search_embedding
from faceapp.store.attendance import NewEntry, utc_iso
from faceapp.store.visitors import to_blob

HERE = Path(__file__).resolve().parent
DIM = 512
PER_PERSON = 10
NOISE = 0.036   # per-dimension noise: cosine between two events of one person about 0.6


def events(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, 512) unit embeddings of n // PER_PERSON people, and the person of each row, shuffled."""
    rng = np.random.default_rng(seed)
    people = max(1, n // PER_PERSON)
    centres = rng.normal(size=(people, DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    who = rng.permutation(np.arange(n) % people)
    emb = centres[who] + NOISE * rng.normal(size=(n, DIM)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    return emb.astype(np.float32), who


def fill(app: App, emb: np.ndarray, batch: int = 20_000) -> None:
    """Store one unknown entry with a face per row (no snapshots: they do not take part)."""
    model_id = app.model_id
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for start in range(0, len(emb), batch):
        with app.store.transaction() as conn:
            for i in range(start, min(len(emb), start + batch)):
                cur = conn.execute("INSERT INTO entries (time, door, decision, distance) VALUES (?, ?, ?, ?)",
                                   (utc_iso(t0 + timedelta(seconds=i)), "Main entrance", "unknown", 0.9))
                conn.execute("INSERT INTO entry_faces (entry_id, model_id, embedding, det_score, face_px) "
                             "VALUES (?, ?, ?, 0.8, 100)", (cur.lastrowid, model_id, to_blob(emb[i])))


def median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def bench_grouping(root: Path, n: int) -> dict:
    emb, who = events(n + 50, seed=1)
    app = App(root / "group")
    t0 = time.perf_counter()
    fill(app, emb[:n])
    fill_s = time.perf_counter() - t0
    tracemalloc.start()
    t0 = time.perf_counter()
    visitors = regroup_all(app)
    regroup_s = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    log = FaceEventLog(app)
    now = datetime.now(timezone.utc)

    def add(i: int) -> None:
        log.log(NewEntry(now, "Main entrance", None, None, "unknown", 0.9, face=entry_face(app, emb[i], 0.8, 100)))

    t0 = time.perf_counter()
    add(n)                               # the first event also loads the station's index
    first_ms = (time.perf_counter() - t0) * 1e3
    it = iter(range(n + 1, n + 50))
    add_ms = median_ms(lambda: add(next(it)), 40)
    app.close()
    return {"events": n, "people": n // PER_PERSON, "fill_s": round(fill_s, 1), "visitors": visitors,
            "regroup_s": round(regroup_s, 2), "regroup_peak_mb": round(peak / 2 ** 20, 1),
            "add_first_ms": round(first_ms, 1), "add_one_ms": round(add_ms, 2),
            "regroup_over_add": round(regroup_s * 1e3 / add_ms, 1)}


def bench_search(root: Path, n: int) -> dict:
    emb, _ = events(n, seed=2)
    app = App(root / "search")
    t0 = time.perf_counter()
    fill(app, emb)
    fill_s = time.perf_counter() - t0
    db_mb = sum(p.stat().st_size for p in (root / "search").glob("faceapp.db*")) / 2 ** 20
    query = emb[123] + NOISE * np.random.default_rng(3).normal(size=DIM).astype(np.float32)
    query /= np.linalg.norm(query)
    hits = search_embedding(app, query)
    store_ms = median_ms(lambda: search_embedding(app, query), 3)
    app.close()
    matrix_ms = median_ms(lambda: 1.0 - emb @ query, 5)
    l2_ms = median_ms(lambda: np.linalg.norm(emb - query, axis=1), 5)
    return {"events": n, "fill_s": round(fill_s, 1), "db_mb": round(db_mb), "hits": len(hits),
            "search_store_ms": round(store_ms, 1), "search_in_memory_ms": round(matrix_ms, 1),
            "l2_scan_ms": round(l2_ms, 1), "in_memory_vs_l2": round(l2_ms / matrix_ms, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--group", type=int, default=100_000, help="stored unknown events to group")
    parser.add_argument("--search", type=int, default=1_000_000, help="stored events to search")
    parser.add_argument("--dir", help="folder for the temporary databases (default: a temp folder)")
    parser.add_argument("--out", default=str(HERE / "results" / "visitors.json"))
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="faceapp-bench-visitors-", dir=args.dir))
    load_before = os.getloadavg()
    try:
        grouping = bench_grouping(root, args.group)
        print(json.dumps(grouping), flush=True)
        search = bench_search(root, args.search)
        print(json.dumps(search), flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    result = {"cpu": cpu_name(), "python": platform.python_version(), "numpy": np.__version__,
              "load_average": [round(load_before[0], 1), round(os.getloadavg()[0], 1)],
              "grouping": grouping, "search": search, "peak_rss_mb": round(peak_rss_mb(), 1)}
    write_results(result, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
