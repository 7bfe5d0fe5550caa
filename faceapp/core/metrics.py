"""Accuracy measures for identification and verification, on the user distance scale.

Pure numpy. Vocabulary (as in NIST FRVT 1:N):

- a *mated* search is a probe of someone enrolled; it succeeds at threshold T when the
  enrolled person is ranked first *and* their distance is <= T. FNIR(T) is the fraction
  of mated searches that do not succeed.
- a *non-mated* search is a probe of someone not enrolled; it is a false positive at T
  when the best distance to anybody is <= T. FPIR(T) is the fraction that are.

Decisions everywhere in faceapp accept ``distance <= threshold``; thresholds returned
here follow that rule exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from faceapp.core.scale import cosine_distance
from faceapp.core.types import BBox


@dataclass(frozen=True, eq=False)
class SearchScores:
    """Outcome of a batch of 1:N searches, reduced to what the rates need.

    ``mated_distance``: distance of each mated search to its own person;
    ``mated_rank1``: whether that person came first; ``nonmated_distance``: best distance
    of each non-mated search to anybody enrolled."""

    mated_distance: np.ndarray
    mated_rank1: np.ndarray
    nonmated_distance: np.ndarray

    @property
    def n_mated(self) -> int:
        return int(self.mated_distance.size)

    @property
    def n_nonmated(self) -> int:
        return int(self.nonmated_distance.size)

    @classmethod
    def concat(cls, parts: list[SearchScores]) -> SearchScores:
        """Pool several batches (e.g. complementary known/unknown splits)."""
        if not parts:
            return search_scores(np.zeros((0, 0)), np.zeros(0, np.int64))
        return cls(np.concatenate([p.mated_distance for p in parts]),
                   np.concatenate([p.mated_rank1 for p in parts]),
                   np.concatenate([p.nonmated_distance for p in parts]))


def search_scores(person_dist: np.ndarray, true_col: np.ndarray) -> SearchScores:
    """Split an (M, P) person-distance matrix into mated/non-mated outcomes.

    ``true_col[i]`` is the column of probe i's person, or -1 for someone not enrolled."""
    d = np.asarray(person_dist, np.float64)
    t = np.asarray(true_col, np.int64).reshape(-1)
    if d.ndim != 2 or d.shape[0] != t.size:
        raise ValueError("one true column per row of person_dist is required")
    mated = t >= 0
    if d.shape[1] == 0:
        if mated.any():
            raise ValueError("mated searches need a non-empty gallery")
        return SearchScores(np.zeros(0), np.zeros(0, bool), np.full(t.size, np.inf))
    rows = np.flatnonzero(mated)
    own = d[rows, t[rows]]
    others = d[rows].copy()
    others[np.arange(rows.size), t[rows]] = np.inf
    # A tie with another person counts against the search: the mate must be strictly nearest.
    rank1 = own < others.min(axis=1)
    return SearchScores(own, rank1, d[~mated].min(axis=1))


def rank1_accuracy(scores: SearchScores) -> float:
    """Closed-set rank-1 identification rate over the mated searches (nan when there are none)."""
    return float(scores.mated_rank1.mean()) if scores.n_mated else math.nan


def fnir_at(scores: SearchScores, threshold: float) -> float:
    """False-negative identification rate at ``threshold`` (nan without mated searches)."""
    if not scores.n_mated:
        return math.nan
    hit = scores.mated_rank1 & (scores.mated_distance <= threshold)
    return float(1.0 - hit.mean())


def fpir_at(scores: SearchScores, threshold: float) -> float:
    """False-positive identification rate at ``threshold`` (nan without non-mated searches)."""
    if not scores.n_nonmated:
        return math.nan
    return float((scores.nonmated_distance <= threshold).mean())


def threshold_at_rate(impostor: np.ndarray, rate: float) -> float:
    """The largest threshold that accepts at most ``rate`` of these impostor distances.

    With n distances at most floor(rate * n) may be accepted, so the answer lies just
    below the (k+1)-th smallest. nan for an empty sample."""
    v = np.sort(np.asarray(impostor, np.float64).reshape(-1))
    if v.size == 0:
        return math.nan
    k = int(math.floor(rate * v.size + 1e-9))
    if k >= v.size:
        return float(v[-1])
    return float(np.nextafter(v[k], -np.inf))


def fnir_at_fpir(scores: SearchScores, fpir: float) -> tuple[float, float]:
    """(FNIR, threshold) at the threshold that keeps FPIR at or under ``fpir``."""
    t = threshold_at_rate(scores.nonmated_distance, fpir)
    if math.isnan(t):
        return math.nan, math.nan
    return fnir_at(scores, t), t


@dataclass(frozen=True, eq=False)
class ErrorCurve:
    """FPIR and FNIR at every threshold where either changes (ascending thresholds).

    The first point rejects everything (FPIR 0, FNIR 1); the last accepts everything."""

    thresholds: np.ndarray
    fpir: np.ndarray
    fnir: np.ndarray


def error_curve(scores: SearchScores) -> ErrorCurve:
    """DET/ROC points of a set of searches."""
    mated_ok = np.sort(scores.mated_distance[scores.mated_rank1])
    non = np.sort(scores.nonmated_distance[np.isfinite(scores.nonmated_distance)])
    cand = np.unique(np.concatenate([mated_ok, non]))
    thresholds = np.concatenate([[-np.inf], cand])
    n_m = max(1, scores.n_mated)
    n_n = max(1, scores.n_nonmated)
    fnir = 1.0 - np.searchsorted(mated_ok, thresholds, side="right") / n_m
    fpir = np.searchsorted(non, thresholds, side="right") / n_n
    if not scores.n_mated:
        fnir = np.full_like(fpir, np.nan)
    if not scores.n_nonmated:
        fpir = np.full_like(fnir, np.nan)
    return ErrorCurve(thresholds, fpir, fnir)


def equal_error_rate(scores: SearchScores) -> tuple[float, float]:
    """(EER, threshold): the operating point where FNIR and FPIR are closest, reported as
    the larger of the two there (conservative on small samples). nan when a side is empty."""
    if not scores.n_mated or not scores.n_nonmated:
        return math.nan, math.nan
    c = error_curve(scores)
    worst = np.maximum(c.fpir, c.fnir)
    best = float(worst.min())
    plateau = np.flatnonzero(worst == best)
    lo, hi = c.thresholds[plateau[0]], c.thresholds[plateau[-1]]
    if not np.isfinite(lo):
        # Rejecting everything is among the best points: start just below the smallest distance.
        lo = float(np.nextafter(c.thresholds[1], -np.inf)) if c.thresholds.size > 1 else 0.0
    # The best rate holds from lo up to (not including) the next candidate; report the middle of
    # that range, e.g. halfway between the classes when they do not overlap.
    nxt = plateau[-1] + 1
    upper = c.thresholds[nxt] if nxt < c.thresholds.size else hi
    if np.isfinite(upper) and upper > hi:
        hi = float(np.nextafter(upper, -np.inf))
    return best, float((lo + hi) / 2.0)


def histogram(values: np.ndarray, bins: int = 50, lo: float = 0.0, hi: float = 1.4) -> tuple[np.ndarray, np.ndarray]:
    """(counts, edges) of finite ``values`` over [lo, hi]; values outside go to the end bins."""
    v = np.asarray(values, np.float64).reshape(-1)
    v = np.clip(v[np.isfinite(v)], lo, hi)
    return np.histogram(v, bins=bins, range=(lo, hi))


def min_samples_for_rate(rate: float) -> int:
    """Impostor samples needed before an observed rate of ``rate`` means much: the "rule of
    three" (zero errors in 3/rate trials bounds the true rate by ``rate`` at 95% confidence)."""
    if rate <= 0:
        return 1 << 62
    return int(math.ceil(3.0 / rate))


# -- verification pairs from a gallery (calibration) ----------------------------------------

@dataclass(frozen=True, eq=False)
class PairDistances:
    """Template distances of one gallery: same-person pairs, different-person pairs, and for
    each template the distance to the nearest template of anybody else (a "stranger" search)."""

    genuine: np.ndarray
    impostor: np.ndarray
    nearest_other: np.ndarray
    n_templates: int
    n_people: int

    @property
    def sampled(self) -> bool:
        """True when the impostor pairs are a sample rather than all of them."""
        n = self.n_templates
        return self.impostor.size < n * (n - 1) // 2 - self.genuine.size


def gallery_pair_distances(
    embeddings: np.ndarray, labels: np.ndarray, max_rows: int = 2000, max_per_person: int = 200, seed: int = 0
) -> PairDistances:
    """Distances between the templates of a gallery, by kind.

    Genuine pairs are exact (up to ``max_per_person`` templates per person); impostor pairs
    and nearest-other distances use at most ``max_rows`` templates, sampled deterministically,
    so a 100k-template gallery costs the same as a 2k one."""
    emb = np.asarray(embeddings, np.float32)
    lab = np.asarray(labels).reshape(-1)
    n = lab.size
    if emb.shape[0] != n:
        raise ValueError("one label per embedding row is required")
    people = np.unique(lab)
    rng = np.random.default_rng(seed)
    genuine = []
    for p in people:
        idx = np.flatnonzero(lab == p)
        if idx.size < 2:
            continue
        if idx.size > max_per_person:
            idx = np.sort(rng.choice(idx, max_per_person, replace=False))
        e = emb[idx]
        d = cosine_distance(e, e)
        genuine.append(d[np.triu_indices(idx.size, 1)])
    rows = np.arange(n) if n <= max_rows else np.sort(rng.choice(n, max_rows, replace=False))
    e = emb[rows]
    lr = lab[rows]
    d = cosine_distance(e, e)
    different = lr[:, None] != lr[None, :]
    iu = np.triu_indices(rows.size, 1)
    impostor = d[iu][different[iu]]
    # Nearest template of anybody else, against the whole gallery (chunked rows).
    nearest = np.full(rows.size, np.inf, np.float32)
    if people.size > 1:
        for start in range(0, n, 8192):
            block = emb[start:start + 8192]
            db = cosine_distance(e, block)
            db[lr[:, None] == lab[None, start:start + 8192]] = np.inf
            nearest = np.minimum(nearest, db.min(axis=1))
    return PairDistances(
        genuine=np.concatenate(genuine).astype(np.float64) if genuine else np.zeros(0),
        impostor=impostor.astype(np.float64),
        nearest_other=nearest[np.isfinite(nearest)].astype(np.float64),
        n_templates=n,
        n_people=int(people.size),
    )


def accept_rates(genuine: np.ndarray, impostor: np.ndarray, threshold: float) -> tuple[float, float]:
    """(false-reject rate of ``genuine``, false-accept rate of ``impostor``) at ``threshold``."""
    g = np.asarray(genuine, np.float64)
    i = np.asarray(impostor, np.float64)
    frr = float((g > threshold).mean()) if g.size else math.nan
    far = float((i <= threshold).mean()) if i.size else math.nan
    return frr, far


# -- comparing two detectors' faces ------------------------------------------------------------

def pair_by_iou(boxes_a: Sequence[BBox], boxes_b: Sequence[BBox], min_iou: float = 0.5) -> list[tuple[int, int | None]]:
    """Pair each box of ``a`` with at most one box of ``b`` (greedy, highest overlap first).

    Returns (index in a, index in b or None) for every box of ``a``, in ``a``'s order."""
    pairs = sorted(((a.iou(b), i, j) for i, a in enumerate(boxes_a) for j, b in enumerate(boxes_b)),
                   key=lambda x: -x[0])
    got: dict[int, int] = {}
    used: set[int] = set()
    for iou, i, j in pairs:
        if iou < min_iou:
            break
        if i in got or j in used:
            continue
        got[i] = j
        used.add(j)
    return [(i, got.get(i)) for i in range(len(boxes_a))]
