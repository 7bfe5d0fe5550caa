"""What every benchmark script writes the same way: the load average beside each number, and
its results as JSON in benchmarks/results/ (run the scripts as `python benchmarks/NAME.py`)."""

from __future__ import annotations

import json
import os
from pathlib import Path


def load_avg() -> str:
    """The 1, 5 and 15 minute load averages: timings on a shared machine mean little without them."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def write_results(results: dict, path: Path | str) -> Path:
    """Write ``results`` as indented JSON to ``path`` (folders created) and say where."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"written to {out}")
    return out
