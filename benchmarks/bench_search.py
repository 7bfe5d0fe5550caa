"""Search at scale: one query against up to 1M templates built from REAL embeddings.

Gallery: the shared photos' people (3 photos each, buffalo_sc embeddings) plus distractor
people made from the real video-face embeddings: each distractor person is a real video face
moved by noise (cosine ~0.6 to it: a look-alike), with 5 templates scattered around that centre
like one person's photos (same-person distances 0.2-0.6, as measured on our photos). Queries: the
photos not enrolled (enrolled people, known) + every video face (strangers whose look-alikes are in
the gallery: the hard case) + photos of people never enrolled.

Methods, all in the same run against exact float32 (one matrix product + per-person min):
flat float16 and flat int8 scans (faiss, every template) with exact re-ranking, the inverted file
(faceapp's TemplateIndex, int8 and float16 codes) with exact re-ranking, and an HNSW graph
(usearch, int8) whose build is timed on a subset (building 1M does not fit the session).
Also: loading a 1M-template gallery from SQLite through App.gallery() and appending one person.

    python benchmarks/bench_search.py [--n 1000000] [--queries 600] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import real_embeddings  # noqa: E402
from results_io import load_avg, write_results  # noqa: E402

from faceapp.core.matcher import Gallery  # noqa: E402
from faceapp.core.search import IndexConfig, TemplateIndex  # noqa: E402
from faceapp.service.bench import cpu_name, peak_rss_mb  # noqa: E402

HERE = Path(__file__).resolve().parent
PER_PERSON = 5


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def noisy(base: np.ndarray, cos: float, rng: np.random.Generator) -> np.ndarray:
    """Unit vectors at about cosine ``cos`` from the unit rows of ``base``."""
    noise = unit(rng.standard_normal(base.shape, dtype=np.float32))
    noise -= (noise * base).sum(1, keepdims=True) * base      # orthogonal part only
    noise = unit(noise)
    return unit(cos * base + np.sqrt(1 - cos * cos) * noise)


def build_dataset(n: int, seed: int = 0):
    """(gallery embeddings, person ids, template ids, names, queries, query kinds)."""
    real = real_embeddings.load()
    rng = np.random.default_rng(seed)
    labels = real["photo_label"]
    photos = real["photo_emb"]
    emb, pid, names, queries, kinds = [], [], {}, [], []
    next_pid = 1
    for lab in sorted(set(labels)):
        rows = np.flatnonzero(labels == lab)
        if rows.size >= 2:          # enrolled with up to 3 photos, probed with the rest
            enrolled, probes = rows[:3], rows[3:] if rows.size > 3 else rows[-1:]
            if rows.size <= 3:
                enrolled = rows[:-1]
            emb.append(photos[enrolled])
            pid += [next_pid] * enrolled.size
            names[next_pid] = str(lab)
            next_pid += 1
            queries.append(photos[probes])
            kinds += ["known"] * probes.size
        else:                        # never enrolled
            queries.append(photos[rows])
            kinds += ["stranger_photo"] * rows.size
    video = real["video_emb"]
    queries.append(video)
    kinds += ["video_face"] * video.shape[0]
    real_rows = sum(e.shape[0] for e in emb)
    n_distractors = max(0, (n - real_rows) // PER_PERSON)
    gal = np.empty((real_rows + n_distractors * PER_PERSON, video.shape[1]), np.float32)
    gal[:real_rows] = np.vstack(emb)
    pids = np.empty(gal.shape[0], np.int64)
    pids[:real_rows] = pid
    pos = real_rows
    for s in range(0, n_distractors, 20000):
        m = min(20000, n_distractors - s)
        # Half look-alikes of the video people (cosine 0.5 to one of them), half other people
        # (cosine 0.3, i.e. distance 0.7: like two different real people on our photos).
        cos = np.where(rng.random((m, 1)) < 0.5, 0.5, 0.3).astype(np.float32)
        centre = noisy(video[rng.integers(0, video.shape[0], m)], cos, rng)
        block = noisy(np.repeat(centre, PER_PERSON, axis=0), 0.8, rng)
        gal[pos:pos + m * PER_PERSON] = block
        pids[pos:pos + m * PER_PERSON] = next_pid + s + np.repeat(np.arange(m), PER_PERSON)
        pos += m * PER_PERSON
    return gal, pids, np.arange(1, gal.shape[0] + 1, dtype=np.int64), names, unit(np.vstack(queries)), np.array(kinds)


def timed(fn, queries: np.ndarray) -> tuple[list, list[float]]:
    out, times = [], []
    for q in queries:
        t0 = time.perf_counter()
        out.append(fn(q))
        times.append((time.perf_counter() - t0) * 1e3)
    return out, times


def summary(times: list[float]) -> dict:
    return {"p50_ms": round(float(np.median(times)), 2), "p95_ms": round(float(np.percentile(times, 95)), 2)}


def agreement(best: list[int], exact: list[int], kinds: np.ndarray) -> dict:
    same = np.array(best) == np.array(exact)
    out = {"all": round(float(same.mean()), 5), "disagreements": int((~same).sum())}
    for k in sorted(set(kinds)):
        out[k] = round(float(same[kinds == k].mean()), 5)
    return out


def rerank_best(gallery: Gallery, rows: np.ndarray, q: np.ndarray) -> int:
    rows = rows[rows >= 0]
    d = 1.0 - gallery.embeddings[rows] @ q
    return int(gallery.row_person[rows[int(np.argmin(d))]])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=0, help="use only this many queries (0 = all)")
    parser.add_argument("--timed", type=int, default=100, help="queries timed one by one for exact float32")
    parser.add_argument("--configs", default="int8:24:256,float16:24:256",
                        help="inverted-file variants codes:nprobe:rerank")
    parser.add_argument("--hnsw-subset", type=int, default=20_000)
    parser.add_argument("--skip-load", action="store_true", help="skip the SQLite load measurement")
    parser.add_argument("--only-load", action="store_true",
                        help="only the SQLite load measurement, on random unit embeddings (faster to make)")
    parser.add_argument("--out", default=str(HERE / "results" / "search.json"))
    args = parser.parse_args()
    import faiss

    res: dict = {"cpu": cpu_name(), "python": platform.python_version(), "numpy": np.__version__,
                 "faiss": faiss.__version__, "load_avg_start": load_avg()}
    if args.only_load:
        from faceapp.service.bench import synthetic_gallery

        res["sqlite_load"] = sqlite_load(synthetic_gallery(args.n))
        print("load", res["sqlite_load"], flush=True)
        out = Path(args.out).with_name("search_load.json")
        out.write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
        print(f"written to {out}")
        return 0
    t0 = time.perf_counter()
    gal_emb, pids, tids, names, queries, kinds = build_dataset(args.n)
    if args.queries:
        pick = np.random.default_rng(1).choice(len(queries), min(args.queries, len(queries)), replace=False)
        queries, kinds = queries[pick], kinds[pick]
    gallery = Gallery.build(pids, gal_emb, names, tids)
    del gal_emb
    res["gallery"] = {"templates": gallery.size, "people": gallery.n_people, "queries": len(queries),
                      "query_kinds": {k: int((kinds == k).sum()) for k in sorted(set(kinds))},
                      "build_s": round(time.perf_counter() - t0, 1)}
    print(res["gallery"], flush=True)

    def exact(q):
        return int(gallery.person_ids[int(np.argmin(np.minimum.reduceat(1.0 - gallery.embeddings @ q,
                                                                          gallery.starts)))])

    exact(queries[0])
    _, exact_t = timed(exact, queries[:args.timed])
    res["exact_float32"] = {**summary(exact_t), "timed_queries": args.timed,
                            "bytes_per_template": 4 * gallery.embeddings.shape[1] + 16, "load_avg": load_avg()}
    # Exact answers for every query (timed above one by one; answered here in blocks, same arithmetic).
    exact_best = []
    for s in range(0, len(queries), 64):
        d = np.minimum.reduceat(1.0 - gallery.embeddings @ queries[s:s + 64].T, gallery.starts, axis=0)
        exact_best += [int(p) for p in gallery.person_ids[np.argmin(d, axis=0)]]
    print("exact", res["exact_float32"], flush=True)
    faiss.omp_set_num_threads(1)
    methods = {}
    for name, qt, nbytes in (("flat_float16", faiss.ScalarQuantizer.QT_fp16, 2), ("flat_int8", faiss.ScalarQuantizer.QT_8bit, 1)):
        idx = faiss.IndexScalarQuantizer(gallery.embeddings.shape[1], qt, faiss.METRIC_INNER_PRODUCT)
        idx.train(gallery.embeddings[:50_000])
        for s in range(0, gallery.size, 65536):
            idx.add(gallery.embeddings[s:s + 65536])
        sub = queries[:100]
        best, t = timed(lambda q: rerank_best(gallery, idx.search(q[None], 64)[1][0], q), sub)
        methods[name] = {**summary(t), "rerank": 64, "agreement_first_100": agreement(best, exact_best[:100], kinds[:100]),
                         "bytes_per_template": nbytes * 512 + 2048 + 16, "load_avg": load_avg()}
        print(name, methods[name], flush=True)
        del idx
    for spec in args.configs.split(","):
        codes, nprobe, rerank = spec.split(":")[0], *map(int, spec.split(":")[1:])
        if True:
            cfg = IndexConfig(nprobe=nprobe, rerank=rerank, codes=codes)
            index = TemplateIndex(gallery.embeddings.shape[1], cfg)
            t1 = time.perf_counter()
            index.sync(gallery.template_ids, gallery.embeddings)
            build_s = time.perf_counter() - t1
            g = Gallery(gallery.embeddings, gallery.row_person, gallery.person_ids, gallery.starts, names,
                        gallery.template_ids, index=index)
            g.person_distances(queries[:1])   # row lookups worked out once per snapshot

            def ivf(q, g=g):
                return int(g.person_ids[int(np.argmin(g.person_distances(q[None])[0]))])

            wide_calls = []
            plain = index.candidates

            def counted(q, wide=False, plain=plain):
                wide_calls.append(wide)
                return plain(q, wide=wide)

            index.candidates = counted
            best, t = timed(ivf, queries)
            t = np.array(t)
            key = f"ivf_{codes}_nprobe{nprobe}_rerank{rerank}"
            methods[key] = {**summary(t), "build_s": round(build_s, 1), "cells": index._index.nlist,
                            "wide_nprobe": cfg.wide_nprobe, "wide_above": cfg.wide_above,
                            "searched_wider": round(sum(wide_calls) / len(queries), 4),
                            "p50_ms_by_kind": {k: round(float(np.median(t[kinds == k])), 2) for k in sorted(set(kinds))},
                            "agreement": agreement(best, exact_best, kinds),
                            "index_bytes_per_template": round(index.bytes_per_template(), 1),
                            "bytes_per_template": round(index.bytes_per_template() + 2048 + 16, 1),
                            "load_avg": load_avg()}
            print(key, methods[key], flush=True)
            del g, index
    # HNSW: build rate and query time on a subset (a 1M build does not fit the session).
    from usearch.index import Index

    m = min(args.hnsw_subset, gallery.size)
    sub_rows = np.arange(m)
    hidx = Index(ndim=512, metric="cos", dtype="i8", connectivity=16, expansion_add=64, expansion_search=64)
    t1 = time.perf_counter()
    hidx.add(sub_rows, gallery.embeddings[:m], threads=2)
    hbuild = time.perf_counter() - t1
    _, ht = timed(lambda q: hidx.search(q, 64), queries[:200])
    methods["hnsw_int8_usearch"] = {**summary(ht), "subset": m, "build_s": round(hbuild, 1),
                                    "build_per_template_ms": round(hbuild / m * 1e3, 3),
                                    "extrapolated_1M_build_min": round(hbuild / m * 1e6 / 60, 1),
                                    "bytes_per_template": round(hidx.memory_usage / m + 2048 + 16, 1),
                                    "load_avg": load_avg()}
    print("hnsw", methods["hnsw_int8_usearch"], flush=True)
    res["methods"] = methods
    if not args.skip_load:
        res["sqlite_load"] = sqlite_load(gallery)
        print("load", res["sqlite_load"], flush=True)
    res["peak_rss_mb"] = round(peak_rss_mb(), 1)
    res["load_avg_end"] = load_avg()
    write_results(res, args.out)
    return 0


def sqlite_load(gallery: Gallery) -> dict:
    """Write the gallery into a real faceapp database, then time App.gallery() (cold, with the
    index) and the incremental load after enrolling one more person."""
    from faceapp.service.app import App
    from faceapp.store.common import utc_now

    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        app = App(Path(tmp) / "home")
        model = app.model_id
        now = utc_now()
        t0 = time.perf_counter()
        with app.store.transaction() as conn:
            conn.executemany("INSERT INTO people (id, name, active, created) VALUES (?, ?, 1, ?)",
                             ((int(p), f"person {int(p)}", now) for p in gallery.person_ids))
            conn.executemany("INSERT INTO templates (id, person_id, model_id, embedding, created) VALUES (?, ?, ?, ?, ?)",
                             ((int(t), int(p), model, e.tobytes(), now)
                              for t, p, e in zip(gallery.template_ids, gallery.row_person, gallery.embeddings)))
        write_s = time.perf_counter() - t0
        app.close()
        app = App(Path(tmp) / "home")
        t0 = time.perf_counter()
        g = app.gallery()
        cold = time.perf_counter() - t0
        loader = app._gallery_loaders[False]
        info = dict(loader.last_load)
        with app.store.transaction() as conn:
            conn.execute("INSERT INTO people (name, active, created) VALUES ('new person', 1, ?)", (now,))
            new_pid = conn.execute("SELECT MAX(id) FROM people").fetchone()[0]
            for e in unit(np.random.default_rng(5).standard_normal((3, 512), dtype=np.float32)):
                conn.execute("INSERT INTO templates (person_id, model_id, embedding, created) VALUES (?, ?, ?, ?)",
                             (new_pid, model, e.tobytes(), now))
        app.invalidate_gallery()
        t0 = time.perf_counter()
        g2 = app.gallery()
        append = time.perf_counter() - t0
        shared = bool(np.shares_memory(g.embeddings, g2.embeddings)) if g2.size > g.size else None
        out = {"templates": g.size, "write_s": round(write_s, 1), "cold_load_s": round(cold, 1),
               "read_s": round(info.get("read_seconds", float("nan")), 1),
               "index_s": round(cold - info.get("read_seconds", 0.0), 1),
               "append_one_person_s": round(append, 3), "append_kind": loader.last_load.get("kind"),
               "append_shares_rows_with_previous": shared,
               "indexed": g.index is not None, "load_avg": load_avg()}
        app.close()
        return out


if __name__ == "__main__":
    raise SystemExit(main())
