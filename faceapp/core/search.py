"""Approximate candidate search for large galleries, with exact float32 re-ranking.

Below :data:`INDEX_FROM` templates the matcher compares a query with every template in one
float32 matrix product (exact, and fast enough: ~13 ms per query at 100k on a quiet 2-core
machine). Above it, streaming 2 KB per template for every query no longer fits 20 ms (1M
templates are 2 GB: 130+ ms), so a :class:`TemplateIndex` finds the candidates first:

* an inverted file (k-means cells, faiss ``IndexIVFScalarQuantizer``) holding each template as
  512 int8 codes (512 bytes, a quarter of float32), searched in ``nprobe`` cells;
* the ``rerank`` nearest candidates are then compared again with their float32 templates, and
  only these exact distances reach the per-person aggregation, so a distance the matcher reports
  is always exact; only which people are looked at is approximate.

Why this and not the others (benchmarks/bench_search.py, README "Speed"): a flat float16 or int8
scan of 1M templates still streams 0.5-1 GB per query (25-50 ms here); an HNSW graph answers in
~1-2 ms but building it took ~3 ms per template on this machine (an hour for 1M) and every
start-up would need it; the inverted file trains in seconds on a sample and adds a template by
one nearest-cell lookup, so enrolling one person never rebuilds anything.

The index is keyed by template id and shared by successive gallery snapshots: :meth:`sync` adds the
templates it lacks and drops those gone. faiss is imported on first use only.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

# Gallery size from which the matcher searches through the index (exact float32 below).
INDEX_FROM = 100_000


@dataclass(frozen=True)
class IndexConfig:
    """How the inverted file is laid out and searched.

    ``cells`` None = about sqrt(N)/2 at training time (500 cells at 1M): fewer cells keep the
    one-off assignment of every template cheap, ``nprobe`` cells are scanned per query and the
    ``rerank`` best candidates get their exact float32 distance.

    ``spill``: the fraction of templates (measured on the training sample) that fit their cell
    worst are also kept in float32 in a side list that every query scans exactly. A person unlike
    anyone else (far from every cell centre) lands in an arbitrary cell, and a query of them would
    not probe it: on real photos among look-alike distractors these were nearly all the misses."""

    cells: int | None = None
    nprobe: int = 24
    rerank: int = 256
    codes: str = "int8"              # "int8" (512 B/template) or "float16" (1 KB/template)
    train_sample: int = 60_000
    seed: int = 0
    spill: float = 0.02
    # A query whose nearest candidate is farther than ``wide_above`` is searched again in
    # ``wide_nprobe`` cells. Same-person distances on our photos reach ~0.6, so such a query's own
    # person may sit in a cell the first probes missed: on real photos among 1M templates this
    # took the misses from 7 of 1,435 queries to 1 (benchmarks/bench_search.py). Strangers pay it.
    wide_above: float = 0.55
    wide_nprobe: int = 96


def _faiss():
    import faiss  # noqa: PLC0415 - heavy, and only large galleries need it

    return faiss


class TemplateIndex:
    """Candidate search over templates keyed by template id (thread-safe).

    Train once (:meth:`sync` on a gallery big enough does it), then keep it in step with the
    gallery: new templates are quantised and filed into their nearest cell, removed ones are
    dropped; nothing is re-trained or rebuilt."""

    def __init__(self, dim: int, config: IndexConfig | None = None) -> None:
        self.dim = dim
        self.config = config or IndexConfig()
        self._index = None
        self._ids = np.zeros(0, np.int64)   # sorted template ids held
        self._fit = -np.inf                 # templates whose cell fits worse than this are spilled
        self._spill_ids = np.zeros(0, np.int64)
        self._spill_emb = np.zeros((0, dim), np.float32)
        self._lock = threading.Lock()

    @property
    def trained(self) -> bool:
        return self._index is not None

    @property
    def size(self) -> int:
        return int(self._ids.size)

    @property
    def spilled(self) -> int:
        return int(self._spill_ids.size)

    def bytes_per_template(self) -> float:
        """Index memory per template: codes + id, plus the cells' centroids and the float32 side
        list shared out over all templates."""
        code = self.dim if self.config.codes == "int8" else 2 * self.dim
        cells = self._index.nlist if self._index is not None else 0
        shared = cells * self.dim * 4 + self._spill_emb.nbytes + self._spill_ids.nbytes
        return code + 8 + shared / max(1, self.size)

    def _new_index(self, cells: int):
        faiss = _faiss()
        qt = faiss.ScalarQuantizer.QT_8bit if self.config.codes == "int8" else faiss.ScalarQuantizer.QT_fp16
        quantizer = faiss.IndexFlatIP(self.dim)
        index = faiss.IndexIVFScalarQuantizer(quantizer, self.dim, cells, qt, faiss.METRIC_INNER_PRODUCT)
        index.nprobe = min(self.config.nprobe, cells)
        return index, quantizer

    def train(self, embeddings: np.ndarray) -> None:
        """Learn the cells (spherical k-means on a sample) and the int8 code ranges."""
        faiss = _faiss()
        n = embeddings.shape[0]
        cells = self.config.cells or max(16, int(math.sqrt(max(n, 1)) / 2))
        cells = min(cells, max(1, n // 40))
        rng = np.random.default_rng(self.config.seed)
        take = min(n, max(self.config.train_sample, 40 * cells))
        picked = np.sort(rng.choice(n, take, replace=False))
        sample = np.ascontiguousarray(embeddings[picked], np.float32)
        # The spill threshold is measured on rows the cells were NOT trained on: training rows sit
        # closer to their centres than new ones, and their quantile spilled 27% instead of 2%.
        rest = np.setdiff1d(np.arange(n), picked, assume_unique=True)
        held = (np.ascontiguousarray(embeddings[np.sort(rng.choice(rest, min(rest.size, 20_000), replace=False))],
                                     np.float32) if rest.size >= 1000 else sample)
        index, quantizer = self._new_index(cells)
        faiss.omp_set_num_threads(2)
        kmeans = faiss.Kmeans(self.dim, cells, niter=12, spherical=True, seed=self.config.seed,
                              max_points_per_centroid=max(40, take // cells))
        kmeans.train(sample)
        quantizer.add(kmeans.centroids)
        index.train(sample)   # the centroids are in place: this trains the code ranges only
        fit, _ = quantizer.search(held, 1)
        with self._lock:
            self._index, self._quantizer = index, quantizer
            self._ids = np.zeros(0, np.int64)
            self._fit = float(np.quantile(fit[:, 0], self.config.spill)) if self.config.spill > 0 else -np.inf
            self._spill_ids = np.zeros(0, np.int64)
            self._spill_emb = np.zeros((0, self.dim), np.float32)
        log.info("search index trained: %d cells, %s codes, on %d of %d templates", cells, self.config.codes,
                 take, n)

    def sync(self, template_ids: np.ndarray, embeddings: np.ndarray) -> tuple[int, int]:
        """Make the index hold exactly ``template_ids`` (rows of ``embeddings``); trains first if
        needed. Returns (added, removed). Only the difference is touched."""
        tids = np.asarray(template_ids, np.int64)
        if self._index is None:
            self.train(embeddings)
        faiss = _faiss()
        with self._lock:
            have = self._ids
            gone = np.setdiff1d(have, tids, assume_unique=True)
            new_mask = ~np.isin(tids, have, assume_unique=True)
            faiss.omp_set_num_threads(2)
            if gone.size:
                self._remove_locked(gone)
            if new_mask.any():
                rows = np.flatnonzero(new_mask)
                for s in range(0, rows.size, 65536):
                    part = rows[s:s + 65536]
                    self._add_locked(tids[part], np.ascontiguousarray(embeddings[part], np.float32))
            self._ids = np.sort(tids) if (gone.size or new_mask.any()) else have
            faiss.omp_set_num_threads(1)
        return int(new_mask.sum()), int(gone.size)

    def add(self, template_ids: np.ndarray, embeddings: np.ndarray) -> None:
        """File new templates (ids not yet held) into their nearest cells."""
        tids = np.asarray(template_ids, np.int64)
        with self._lock:
            if self._index is None:
                raise RuntimeError("the search index is not trained")
            self._add_locked(tids, np.ascontiguousarray(embeddings, np.float32))
            self._ids = _merged(self._ids, tids)

    def _add_locked(self, tids: np.ndarray, emb: np.ndarray) -> None:
        # One nearest-cell search serves both the filing and the spill test (add_with_ids would
        # search again: at 1M that doubled the time to fill the index).
        faiss = _faiss()
        fit, cell = self._quantizer.search(emb, 1)
        tids = np.ascontiguousarray(tids, np.int64)
        cell = np.ascontiguousarray(cell[:, 0], np.int64)
        self._index.add_core(tids.size, faiss.swig_ptr(emb), faiss.swig_ptr(tids), faiss.swig_ptr(cell))
        poor = fit[:, 0] < self._fit
        if poor.any():
            self._spill_ids = np.r_[self._spill_ids, tids[poor]]
            self._spill_emb = np.vstack([self._spill_emb, emb[poor]])

    def _remove_locked(self, tids: np.ndarray) -> None:
        self._index.remove_ids(tids)
        keep = ~np.isin(self._spill_ids, tids)
        if not keep.all():
            self._spill_ids, self._spill_emb = self._spill_ids[keep], self._spill_emb[keep]

    def candidates(self, queries: np.ndarray, wide: bool = False) -> np.ndarray:
        """(M, rerank) template ids nearest each query by their codes (-1 pads); ``wide`` probes
        ``wide_nprobe`` cells instead of ``nprobe``."""
        q = np.ascontiguousarray(np.atleast_2d(queries), np.float32)
        k = max(1, min(self.config.rerank, self.size))
        with self._lock:
            if self._index is None:
                raise RuntimeError("the search index is not trained")
            faiss = _faiss()
            # One thread: a single query is a few thousand codes, and OpenMP threads that spin
            # while waiting would take the CPU the camera pipelines need.
            faiss.omp_set_num_threads(1)
            probes = self.config.wide_nprobe if wide else self.config.nprobe
            params = faiss.SearchParametersIVF(nprobe=max(1, min(probes, self._index.nlist)))
            _, ids = self._index.search(q, k, params=params)
            spill_ids, spill_emb = self._spill_ids, self._spill_emb
        if spill_ids.size:
            sim = q @ spill_emb.T                                   # exact, float32
            take = min(k, spill_ids.size)
            best = np.argpartition(-sim, take - 1, axis=1)[:, :take]
            ids = np.concatenate([ids, spill_ids[best]], axis=1)
        return ids


def _merged(held: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Sorted ``held`` with the ids ``new`` (not held yet) added; new people's templates usually
    have the highest ids, and then this is a plain append (np.union1d hashed all 1M ids: 0.8 s)."""
    new = np.sort(np.asarray(new, np.int64))
    if not held.size or (new.size and new[0] > held[-1]):
        return np.concatenate([held, new])
    return np.insert(held, np.searchsorted(held, new), new)
