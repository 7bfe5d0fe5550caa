"""Why not HNSW: the same 1M real-embedding gallery and queries as bench_search.py, searched
through a usearch HNSW graph (int8, connectivity 16, expansion 64 when adding) whose k nearest
templates are re-ranked with their exact float32 embeddings, against exact float32 search.

bench_search.py only times an HNSW build on a subset; this builds the whole 1M graph (about
3 minutes on a quiet 2-core machine, 18 under load) and measures agreement with exact search.

    python benchmarks/bench_hnsw_1m.py [--n 1000000] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_search  # noqa: E402
from results_io import load_avg, write_results  # noqa: E402

from faceapp.core.matcher import Gallery  # noqa: E402

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--out", default=str(HERE / "results" / "hnsw_1m.json"))
    args = parser.parse_args()
    from usearch.index import Index

    gal_emb, pids, tids, names, queries, kinds = bench_search.build_dataset(args.n)
    g = Gallery.build(pids, gal_emb, names, tids)
    del gal_emb
    exact = []
    for s in range(0, len(queries), 64):
        d = np.minimum.reduceat(1.0 - g.embeddings @ queries[s:s + 64].T, g.starts, axis=0)
        exact += [int(p) for p in g.person_ids[np.argmin(d, axis=0)]]
    res: dict = {"templates": g.size, "queries": len(queries), "load_avg_start": load_avg()}
    index = Index(ndim=g.embeddings.shape[1], metric="cos", dtype="i8", connectivity=16, expansion_add=64)
    t0 = time.perf_counter()
    index.add(np.arange(g.size), g.embeddings, threads=2)
    res["build_s"] = round(time.perf_counter() - t0, 1)
    res["index_bytes_per_template"] = round(index.memory_usage / g.size, 1)
    res["load_avg_after_build"] = load_avg()
    for k in (64, 256):
        index.expansion_search = max(k, 64)
        best, times = [], []
        for q in queries:
            t1 = time.perf_counter()
            rows = index.search(q, k).keys
            best.append(int(g.row_person[rows[int(np.argmin(1.0 - g.embeddings[rows] @ q))]]))
            times.append((time.perf_counter() - t1) * 1e3)
        agree = bench_search.agreement(best, exact, kinds)
        res[f"rerank_{k}"] = {**bench_search.summary(times), "agreement": agree, "load_avg": load_avg()}
        print(k, res[f"rerank_{k}"], flush=True)
    write_results(res, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
