"""Identification time of one query against 1k / 10k / 100k / 1M stored embeddings.

faceapp's matcher (one matrix product over every template + a per-person ``reduceat``) is
timed against two baselines on the same gallery and query, in the same run: a plain L2
scan with ``np.linalg.norm`` and a per-person Python loop (up to 100k). Random unit
512-d embeddings, 5 per person; 1M rows take 2 GB (the run peaks near 3 GB).

    python benchmarks/bench_match.py [--sizes 1000,10000,100000,1000000] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import numpy as np

from faceapp.service.bench import cpu_name, match_benchmark, peak_rss_mb

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000,1000000")
    parser.add_argument("--out", default=str(HERE / "results" / "match.json"))
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    timings = match_benchmark(sizes)
    rows = [{"n": t.n, "people": t.people, "faceapp_ms": round(t.faceapp_ms, 3),
             "l2_scan_ms": round(t.l2_scan_ms, 3),
             "python_loop_ms": None if t.python_loop_ms is None else round(t.python_loop_ms, 3),
             "speedup_vs_l2": round(t.speedup_vs_l2, 2)} for t in timings]
    result = {"cpu": cpu_name(), "python": platform.python_version(), "numpy": np.__version__,
              "dim": 512, "templates_per_person": 5, "timings": rows, "peak_rss_mb": round(peak_rss_mb(), 1)}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"{'embeddings':>12} {'faceapp':>10} {'L2 scan':>10} {'Py loop':>10} {'vs L2':>7}")
    for r in rows:
        loop = "-" if r["python_loop_ms"] is None else f"{r['python_loop_ms']:.2f}"
        print(f"{r['n']:>12,} {r['faceapp_ms']:>10.3f} {r['l2_scan_ms']:>10.2f} {loop:>10} {r['speedup_vs_l2']:>6.1f}x")
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
