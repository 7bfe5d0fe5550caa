"""Many doors, one site: propagation latency, joining a big site, entry upload throughput.

Starts its own throw-away PostgreSQL 15 cluster (tests/pg_cluster.py; as root through
``runuser -u postgres``) and measures, each against a baseline in the same run:

1. ``propagation``: an enrollment (and a removal) committed at station A until station B's
   gallery has it (B runs the real SiteSync thread: LISTEN/NOTIFY, pull, gallery rebuild).
   Baseline: a bare NOTIFY from one connection to a LISTENing one.
2. ``join``: a new station joining a site of 10,000 people with 50,000 templates (and as many
   photos: small synthetic crops, see the note in the output). Baseline: reading the same rows
   with one plain SELECT per table into Python, without writing them anywhere.
3. ``upload``: 20 stations (20 processes) each uploading 1,000 entries to one server at once;
   checks that every entry arrived exactly once. Baseline: one connection inserting 20,000 rows.

    python benchmarks/bench_site.py [--people 10000] [--templates-per-person 5] [--stations 20]

Writes benchmarks/results/site.json and site.md. Not a test.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests"))

from pg_cluster import PgCluster  # noqa: E402


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))]


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def tiny_crop(rng) -> np.ndarray:
    return rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)


def unit(rng, n: int = 512) -> np.ndarray:
    v = rng.standard_normal(n).astype(np.float32)
    return v / np.linalg.norm(v)


# -- 1. propagation ------------------------------------------------------------------------------
def bench_propagation(cluster: PgCluster, rounds: int) -> dict:
    import psycopg

    from faceapp.service.app import App
    from faceapp.service.site import SiteSync, create_site, join_site
    from faceapp.store.db import NewPhoto

    db = cluster.new_database()
    url = cluster.url(db)
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as tmp:
        a, b = App(Path(tmp) / "a"), App(Path(tmp) / "b")
        create_site(a, url, import_local=True, station="A")
        join_site(b, url, station="B")
        sync = SiteSync(b).start()
        while not sync.status().connected:
            time.sleep(0.05)
        model = b.model_id
        add, remove = [], []
        for i in range(rounds):
            t0 = time.perf_counter()
            pid = a.store.add_person(f"P{i}", model, [NewPhoto(tiny_crop(rng), unit(rng))])
            t1 = time.perf_counter()
            while pid not in b.gallery().person_ids:
                time.sleep(0.002)
            add.append(time.perf_counter() - t1)
            a.store.remove_person(pid)
            t2 = time.perf_counter()
            while pid in b.gallery().person_ids:
                time.sleep(0.002)
            remove.append(time.perf_counter() - t2)
            _ = t0
        sync.stop()
        a.close()
        b.close()
    # Baseline: NOTIFY -> LISTEN on the same server.
    base = []
    with psycopg.connect(url, autocommit=True) as lis, psycopg.connect(url, autocommit=True) as talk:
        lis.execute("LISTEN bench")
        for _ in range(rounds):
            t0 = time.perf_counter()
            talk.execute("NOTIFY bench")
            for _n in lis.notifies(timeout=5, stop_after=1):
                pass
            base.append(time.perf_counter() - t0)
    ms = lambda v: round(v * 1000, 1)  # noqa: E731
    return {"rounds": rounds,
            "enroll_p50_ms": ms(pct(add, 50)), "enroll_p95_ms": ms(pct(add, 95)),
            "remove_p50_ms": ms(pct(remove, 50)), "remove_p95_ms": ms(pct(remove, 95)),
            "notify_baseline_p50_ms": ms(pct(base, 50)),
            "enroll_p50_over_notify": round(pct(add, 50) / max(pct(base, 50), 1e-6), 1)}


# -- 2. join -------------------------------------------------------------------------------------
def bench_join(cluster: PgCluster, people: int, per_person: int) -> dict:
    import psycopg

    from faceapp.service.app import App
    from faceapp.service.site import create_site, join_site
    from faceapp.store.blobs import encode_png

    db = cluster.new_database()
    url = cluster.url(db)
    rng = np.random.default_rng(2)
    crop = encode_png(tiny_crop(rng))
    with tempfile.TemporaryDirectory() as tmp:
        first = App(Path(tmp) / "first")
        create_site(first, url, import_local=False)
        model = first.model_id
        first.close()
        now = datetime.now(timezone.utc).isoformat()
        t0 = time.perf_counter()
        with psycopg.connect(url) as pg, pg.cursor() as cur:
            cur.executemany("INSERT INTO people (id, name, active, created) VALUES (%s, %s, 1, %s)",
                            [(i, f"Person {i:05d}", now) for i in range(1, people + 1)])
            photos, templates = [], []
            n = 0
            for i in range(1, people + 1):
                for _ in range(per_person):
                    n += 1
                    photos.append((n, i, crop, now))
                    templates.append((n, i, n, model, unit(rng).tobytes(), now))
            cur.executemany("INSERT INTO photos (id, person_id, crop, created) VALUES (%s, %s, %s, %s)", photos)
            cur.executemany("INSERT INTO templates (id, person_id, photo_id, model_id, embedding, created) "
                            "VALUES (%s, %s, %s, %s, %s, %s)", templates)
        fill = time.perf_counter() - t0
        # Baseline: the same rows read with plain SELECTs, written nowhere.
        t0 = time.perf_counter()
        raw = 0
        with psycopg.connect(url) as pg:
            for table in ("people", "photos", "templates"):
                for row in pg.execute(f"SELECT * FROM {table}"):
                    raw += sum(len(v) if isinstance(v, (bytes, str)) else 8 for v in row)
        baseline = time.perf_counter() - t0
        station = App(Path(tmp) / "new")
        t0 = time.perf_counter()
        report = join_site(station, url, station="new")
        join = time.perf_counter() - t0
        t0 = time.perf_counter()
        gallery = station.gallery()
        first_gallery = time.perf_counter() - t0
        ok = gallery.size == people * per_person
        db_mb = (Path(tmp) / "new" / "faceapp.db").stat().st_size / 1e6
        station.close()
    return {"people": people, "templates": people * per_person, "photos": people * per_person,
            "photo_bytes_each": len(crop), "fill_site_s": round(fill, 1),
            "join_s": round(join, 1), "transferred_mb": round(report.bytes / 1e6, 1),
            "replica_db_mb": round(db_mb, 1), "first_gallery_s": round(first_gallery, 2),
            "baseline_select_s": round(baseline, 1), "baseline_mb": round(raw / 1e6, 1),
            "join_over_select": round(join / max(baseline, 1e-6), 1), "gallery_complete": ok}


# -- 3. upload -------------------------------------------------------------------------------------
def _station_upload(home: str, barrier, out) -> None:
    from faceapp.service.app import App

    with App(home) as app:
        link = app.store.site
        pg = link.connect()
        barrier.wait()
        t0 = time.perf_counter()
        sent = link.upload(app.store, pg)     # the upload alone (a station also pulls the others' entries)
        out.put((home, sent, time.perf_counter() - t0))
        pg.close()


def bench_upload(cluster: PgCluster, stations: int, per_station: int) -> dict:
    import psycopg

    from faceapp.service.app import App
    from faceapp.service.site import create_site, join_site
    from faceapp.store.attendance import AttendanceStore, NewEntry

    db = cluster.new_database()
    url = cluster.url(db)
    t = datetime(2026, 1, 5, 8, tzinfo=timezone.utc)
    with tempfile.TemporaryDirectory() as tmp:
        first = App(Path(tmp) / "s0")
        create_site(first, url, import_local=True, station="s0")
        first.close()
        homes = []
        for s in range(stations):
            home = Path(tmp) / f"st{s}"
            with App(home) as app:
                join_site(app, url, station=f"st{s}")
                log = AttendanceStore(app.store)
                for i in range(per_station):
                    log.add_entry(NewEntry(t + timedelta(seconds=i), "Lobby", None, None, "unknown", 0.9, None, i))
            homes.append(str(home))
        ctx = multiprocessing.get_context("spawn")
        barrier, out = ctx.Barrier(stations + 1), ctx.Queue()
        procs = [ctx.Process(target=_station_upload, args=(h, barrier, out)) for h in homes]
        for p in procs:
            p.start()
        barrier.wait()
        t0 = time.perf_counter()
        results = [out.get(timeout=600) for _ in procs]
        wall = time.perf_counter() - t0
        for p in procs:
            p.join()
        total, distinct = cluster.sql("SELECT count(*), count(DISTINCT uid) FROM entries WHERE station LIKE 'st%'",
                                      db)[0]
        pending = sum(App(h).store.query("SELECT COUNT(*) AS n FROM site_outbox WHERE kind='entry'")[0]["n"]
                      for h in homes)
    # Baseline: one connection, one executemany of the same number of rows.
    rows = [(f"b{i}", "base", (t + timedelta(seconds=i)).isoformat(), "Lobby", "unknown")
            for i in range(stations * per_station)]
    with psycopg.connect(url) as pg, pg.cursor() as cur:
        t0 = time.perf_counter()
        cur.executemany("INSERT INTO entries (uid, station, time, door, decision) VALUES (%s, %s, %s, %s, %s)", rows)
        pg.commit()
        base = time.perf_counter() - t0
    expected = stations * per_station
    return {"stations": stations, "entries_each": per_station, "wall_s": round(wall, 2),
            "entries_per_s": round(expected / wall), "arrived": total, "distinct": distinct,
            "lost": expected - distinct, "duplicates": total - distinct, "left_waiting": pending,
            "baseline_single_insert_s": round(base, 2), "baseline_entries_per_s": round(expected / base),
            "slowest_station_s": round(max(r[2] for r in results), 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--templates-per-person", type=int, default=5)
    parser.add_argument("--stations", type=int, default=20)
    parser.add_argument("--entries", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--only", choices=("propagation", "join", "upload"),
                        help="run one part; the others are kept from the previous results file")
    parser.add_argument("--out", default=str(HERE / "results" / "site.json"))
    args = parser.parse_args()
    cluster = PgCluster()
    out = Path(args.out)
    result: dict = json.loads(out.read_text()) if args.only and out.exists() else {}
    result["load_before"] = load()
    parts = {"propagation": lambda: bench_propagation(cluster, args.rounds),
             "join": lambda: bench_join(cluster, args.people, args.templates_per_person),
             "upload": lambda: bench_upload(cluster, args.stations, args.entries)}
    try:
        cluster.init()
        cluster.start()
        for name, run in parts.items():
            if args.only in (None, name):
                result[name] = {**run(), "load_after": load()}
                print(name, result[name], flush=True)
    finally:
        cluster.destroy()
    result["load_after"] = load()
    result["cpus"] = os.cpu_count()
    out.write_text(json.dumps(result, indent=2) + "\n")
    p, j, u = result["propagation"], result["join"], result["upload"]
    md = f"""# Site benchmark (benchmarks/bench_site.py)

Load average (1, 5, 15 min) after each part: propagation {p['load_after']}, join {j['load_after']},
upload {u['load_after']} ({result['cpus']} CPUs shared with other work: the machine was very loaded).

| what | result | baseline (same run) |
|---|---|---|
| enrollment at A in use at B | p50 {p['enroll_p50_ms']} ms, p95 {p['enroll_p95_ms']} ms ({p['rounds']} rounds) | bare NOTIFY p50 {p['notify_baseline_p50_ms']} ms |
| removal at A no longer matched at B | p50 {p['remove_p50_ms']} ms, p95 {p['remove_p95_ms']} ms | |
| new station joins {j['people']:,} people / {j['templates']:,} templates | {j['join_s']} s, {j['transferred_mb']} MB | plain SELECT of the same rows {j['baseline_select_s']} s ({j['join_over_select']}x) |
| {u['stations']} stations x {u['entries_each']:,} entries uploaded at once | {u['wall_s']} s, {u['entries_per_s']:,} entries/s; lost {u['lost']}, duplicates {u['duplicates']} | one connection, one INSERT batch: {u['baseline_entries_per_s']:,} entries/s |

Photos in the join test are {j['photo_bytes_each']}-byte synthetic crops; real aligned crops are
about 20-30 kB each as PNG, so a real site of that size transfers roughly 1-1.5 GB on join.
"""
    out.with_suffix(".md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
