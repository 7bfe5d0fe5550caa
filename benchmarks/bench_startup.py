"""Start-up time of the built application (installer/build.sh) against ``python -m faceapp``.

Three things a user waits for, each timed as a whole process from launch to exit, the two
programs alternating run by run on the same data folder:

1. ``--version``: the bare start (interpreter, argument parsing);
2. ``models list``: a headless command (database opened, model files checked);
3. ``selftest``: the window opened offscreen, models loaded, until the first enrolled face on
   a folder of photos is recognised, then closed.

Run: ``python benchmarks/bench_startup.py --frozen dist/faceapp/faceapp [--runs 3]``.
Writes benchmarks/results/startup.json and startup.md. Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def timed(cmd: list[str], env: dict[str, str]) -> float:
    """Wall seconds of one run; the run must succeed."""
    start = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    took = time.perf_counter() - start
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()[-500:]}")
    return took


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frozen", required=True, type=Path, help="the built executable (dist/faceapp/faceapp)")
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared", help="models/ and faces/")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "startup.json")
    args = ap.parse_args()

    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    frozen_env = {k: v for k, v in env.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    python = [sys.executable, "-m", "faceapp"]
    frozen = [str(args.frozen.resolve())]
    person = args.shared / "faces" / "face_recognition_examples" / "Lin_Manuel_Miranda"
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        home = Path(tmp) / "home"
        subprocess.run([*python, "--home", str(home), "models", "install", "--from", str(args.shared / "models")],
                       check=True, capture_output=True, env=env)
        subprocess.run([*python, "--home", str(home), "enroll", "Lin Manuel Miranda", *map(str, sorted(person.iterdir()))],
                       check=True, capture_output=True, env=env)
        cases = {
            "--version": ["--version"],
            "models list": ["--home", str(home), "models", "list"],
            "window until first recognised face (selftest)": ["--home", str(home), "selftest", str(person)],
        }
        results = {}
        for name, tail in cases.items():
            times: dict[str, list[float]] = {"python -m faceapp": [], "built app": []}
            timed([*frozen, *tail], frozen_env)  # first run of each warms the disk cache
            timed([*python, *tail], env)
            for _ in range(args.runs):
                times["built app"].append(timed([*frozen, *tail], frozen_env))
                times["python -m faceapp"].append(timed([*python, *tail], env))
            med = {k: statistics.median(v) for k, v in times.items()}
            results[name] = {"runs": times, "median_s": med,
                             "ratio_built_to_python": med["built app"] / med["python -m faceapp"]}
            print(f"{name}: python {med['python -m faceapp']:.2f} s, built {med['built app']:.2f} s "
                  f"(x{results[name]['ratio_built_to_python']:.2f})", flush=True)
    load = os.getloadavg()
    app_dir = args.frozen.resolve().parent
    size_mb = sum(p.stat().st_size for p in app_dir.rglob("*") if p.is_file() and not p.is_symlink()) / 1e6
    out = {"results": results, "app_size_mb": round(size_mb, 1), "runs": args.runs,
           "load_average_after": [round(x, 2) for x in load], "cpus": os.cpu_count(),
           "machine": platform.platform()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    lines = ["| what | `python -m faceapp` | built app | built / python |", "| --- | --- | --- | --- |"]
    for name, r in results.items():
        m = r["median_s"]
        lines.append(f"| {name} | {m['python -m faceapp']:.2f} s | {m['built app']:.2f} s | "
                     f"{r['ratio_built_to_python']:.2f} |")
    lines.append(f"\nMedian of {args.runs} alternating runs; application folder {size_mb:.0f} MB; "
                 f"load average afterwards {load[0]:.1f} on {os.cpu_count()} CPUs.")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
