"""Identification against a flat gallery of templates.

Every stored template is compared with the query in one matrix product; the
distances are aggregated per person (minimum by default) and the best person
wins if its distance is under the threshold. The gallery keeps rows sorted by
person so per-person aggregation is a single ``reduceat``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum
from functools import cached_property
from typing import Iterable, Sequence

import numpy as np

from faceapp.core.scale import cosine_distance, l2_normalize
from faceapp.core.search import TemplateIndex
from faceapp.core.types import Match


# Distance given to a person ruled out by a negative example: the far end of the scale.
VETO = 2.0


class Aggregate(str, Enum):
    """How template distances become one distance per person."""

    MIN = "min"            # nearest template: robust to pose variety (the default)
    MEAN = "mean"          # mean distance over the person's templates
    CENTROID = "centroid"  # distance to the person's mean embedding

    @classmethod
    def parse(cls, value: str | Aggregate) -> Aggregate:
        try:
            return cls(value)
        except ValueError:
            names = ", ".join(a.value for a in cls)
            raise ValueError(f"unknown aggregation {value!r}; choose one of {names}") from None


@dataclass(frozen=True, eq=False)
class Gallery:
    """Immutable snapshot of templates: rows of ``embeddings`` belong to ``row_person``.

    Build it with :meth:`build`; it is safe to share between threads and is
    replaced (not mutated) when people are enrolled or removed.
    """

    embeddings: np.ndarray          # (N, D) float32, unit rows, grouped by person
    row_person: np.ndarray          # (N,) int64 person id of each row
    person_ids: np.ndarray          # (P,) int64 distinct ids in row order
    starts: np.ndarray              # (P,) first row of each person
    names: dict[int, str]
    template_ids: np.ndarray        # (N,) int64
    # Negative examples: faces an administrator said are *not* that person (corrected wrong matches).
    neg_embeddings: np.ndarray | None = None   # (K, D) unit rows
    neg_person: np.ndarray | None = None       # (K,) person id of each row
    # The store's change counter when read (None: not from a store), and the people in it who
    # are deactivated (a door station matches them to say "inactive: NAME" rather than "unknown").
    revision: int | None = None
    inactive: frozenset[int] = frozenset()
    # Large galleries: candidates come from this index and are re-ranked exactly (core.search).
    index: TemplateIndex | None = None

    @classmethod
    def build(
        cls,
        person_ids: Sequence[int] | np.ndarray,
        embeddings: np.ndarray,
        names: dict[int, str],
        template_ids: Sequence[int] | np.ndarray | None = None,
        unit: bool = False,
    ) -> Gallery:
        """Group rows by person (stable) and normalise them. ``unit``: the rows are unit length
        already and are used as they are when grouped (no copy of a 1M-row gallery)."""
        pids = np.asarray(person_ids, dtype=np.int64).reshape(-1)
        emb = np.asarray(embeddings, dtype=np.float32)
        if emb.ndim != 2 and pids.size == 0:
            emb = emb.reshape(0, 0)
        if emb.shape[0] != pids.size:
            raise ValueError("one person id per embedding row is required")
        tids = (np.arange(pids.size, dtype=np.int64) if template_ids is None
                else np.asarray(template_ids, dtype=np.int64).reshape(-1))
        if pids.size > 1 and not (pids[1:] >= pids[:-1]).all():   # the store usually gives them grouped
            order = np.argsort(pids, kind="stable")
            pids, emb, tids = pids[order], emb[order], tids[order]
        if pids.size:
            first = np.flatnonzero(np.r_[True, pids[1:] != pids[:-1]])
        else:
            first = np.zeros(0, dtype=np.int64)
        return cls(
            embeddings=np.ascontiguousarray(emb if unit else l2_normalize(emb)) if pids.size else emb,
            row_person=pids,
            person_ids=pids[first],
            starts=first,
            names=dict(names),
            template_ids=tids,
        )

    @classmethod
    def empty(cls, dim: int = 512) -> Gallery:
        return cls.build([], np.zeros((0, dim), np.float32), {})

    def with_negatives(self, person_ids: Sequence[int] | np.ndarray, embeddings: np.ndarray) -> Gallery:
        """This gallery with negative examples: a query nearer to one of a person's negatives than
        to that person's own templates is never matched to them (see :meth:`person_distances`)."""
        pids = np.asarray(person_ids, np.int64).reshape(-1)
        if pids.size == 0:
            return replace(self, neg_embeddings=None, neg_person=None)
        emb = np.asarray(embeddings, np.float32).reshape(pids.size, -1)
        return replace(self, neg_embeddings=np.ascontiguousarray(l2_normalize(emb)), neg_person=pids)

    @property
    def size(self) -> int:
        return int(self.row_person.size)

    @property
    def n_people(self) -> int:
        return int(self.person_ids.size)

    def counts(self) -> np.ndarray:
        """Templates per person, aligned with ``person_ids``."""
        return np.diff(np.r_[self.starts, self.size])

    # The gallery never changes once built, so these are worked out on first use and kept: the
    # pipeline matches against the same gallery every frame. (cached_property stores into the
    # instance __dict__, which a frozen dataclass without slots still has.)
    @cached_property
    def _centroids(self) -> np.ndarray:
        """(P, D) unit mean embedding of each person."""
        return l2_normalize(np.add.reduceat(self.embeddings, self.starts, axis=0))

    def person_distances(self, queries: np.ndarray, aggregate: Aggregate | str = Aggregate.MIN) -> np.ndarray:
        """(M, P) distances of M queries to every person, on the user scale."""
        agg = Aggregate.parse(aggregate)
        q = l2_normalize(np.atleast_2d(queries))
        m = q.shape[0]
        if self.n_people == 0:
            return np.zeros((m, 0), np.float32)
        if agg is Aggregate.CENTROID:
            return self._veto(q, cosine_distance(q, self._centroids))
        if agg is Aggregate.MIN and self.index is not None and self.index.trained:
            return self._indexed_min(q)
        # One product against every template: (N, M).
        dist = cosine_distance(self.embeddings, q)
        if agg is Aggregate.MEAN:
            out = (np.add.reduceat(dist, self.starts, axis=0) / self.counts()[:, None]).T
        else:
            out = np.minimum.reduceat(dist, self.starts, axis=0).T
        return self._veto(q, out, dist)

    @cached_property
    def _row_index(self) -> np.ndarray:
        """(N,) column in ``person_ids`` of each row's person."""
        return np.searchsorted(self.person_ids, self.row_person)

    @cached_property
    def _row_of_template(self) -> tuple[np.ndarray, np.ndarray]:
        """(sorted template ids, their rows): template id -> row without a dense table."""
        order = np.argsort(self.template_ids, kind="stable")
        return self.template_ids[order], order

    def _indexed_min(self, q: np.ndarray) -> np.ndarray:
        """MIN aggregation over the index's candidates, with their exact float32 distances.

        People without a candidate get distance 2.0 (the far end of the scale); the nearest
        person and its distance are exact whenever their template is among the candidates."""
        m = q.shape[0]
        out = np.full((m, self.n_people), 2.0, np.float32)
        own = np.full((m, self.n_people), np.inf, np.float32)
        self._rerank(q, self.index.candidates(q), own)
        # A poor best candidate: the query's own person may be in a cell not probed; look wider.
        far = np.flatnonzero(own.min(axis=1) > self.index.config.wide_above)
        if far.size:
            self._rerank(q[far], self.index.candidates(q[far], wide=True), own, far)
        hit = np.isfinite(own)
        out[hit] = own[hit]
        return self._veto(q, out, own=own)

    def _rerank(self, q: np.ndarray, cand: np.ndarray, own: np.ndarray, into: np.ndarray | None = None) -> None:
        """Exact distances of the candidate templates, min per person, into rows of ``own``."""
        sorted_tids, rows_of = self._row_of_template
        for j in range(q.shape[0]):
            ids = cand[j][cand[j] >= 0]
            # The index may already hold templates newer than this snapshot, or not yet have
            # dropped removed ones: only this snapshot's rows count.
            pos = np.minimum(np.searchsorted(sorted_tids, ids), max(0, sorted_tids.size - 1))
            rows = rows_of[pos[sorted_tids[pos] == ids]] if sorted_tids.size else pos[:0]
            if rows.size:
                d = cosine_distance(self.embeddings[rows], q[j:j + 1])[:, 0]
                np.minimum.at(own[j if into is None else into[j]], self._row_index[rows], d)

    def _veto(self, q: np.ndarray, out: np.ndarray, dist: np.ndarray | None = None,
              own: np.ndarray | None = None) -> np.ndarray:
        """Push a person out of reach (distance VETO) for queries nearer to one of their negative
        examples than to their own nearest template."""
        if self.neg_person is None or self.neg_embeddings is None or not self.neg_person.size:
            return out
        cols = np.searchsorted(self.person_ids, self.neg_person)
        present = (cols < self.n_people) & (self.person_ids[np.minimum(cols, self.n_people - 1)] == self.neg_person)
        if not present.any():
            return out
        if own is None:
            own = np.minimum.reduceat(dist if dist is not None else cosine_distance(self.embeddings, q),
                                      self.starts, axis=0).T                  # (M, P)
        neg = cosine_distance(q, self.neg_embeddings[present])                 # (M, K)
        out = np.array(out, dtype=np.float32, copy=True)
        for j, col in enumerate(cols[present]):
            hit = neg[:, j] < own[:, col]
            out[hit, col] = np.maximum(out[hit, col], VETO)
        return out

    def identify(
        self,
        queries: np.ndarray,
        threshold: float,
        aggregate: Aggregate | str = Aggregate.MIN,
        exclusive: bool = False,
    ) -> list[Match]:
        """Best person for each query row; ``exclusive`` gives no person to two queries."""
        pd = self.person_distances(queries, aggregate)
        return decide(pd, self.person_ids, self.names, threshold, exclusive=exclusive)


def decide(
    person_dist: np.ndarray,
    person_ids: np.ndarray,
    names: dict[int, str],
    threshold: float,
    exclusive: bool = False,
    min_margin: float = 0.0,
) -> list[Match]:
    """Turn an (M, P) distance matrix into one :class:`Match` per row.

    With ``exclusive`` the closest (query, person) pairs are assigned first and a
    person already taken is not given to another face of the same frame. Only a decided
    face takes its person: under the threshold and at least ``min_margin`` ahead of the
    next person (an ambiguous face must not cost a clear one its identity). A NaN
    distance (a damaged template) counts as no match, never as the nearest.
    """
    m, p = person_dist.shape
    results: list[Match | None] = [None] * m
    taken: set[int] = set()
    order: Iterable[int]
    if exclusive and p:
        order = np.argsort(person_dist.min(axis=1), kind="stable")
    else:
        order = range(m)
    for i in order:
        row = person_dist[i].astype(np.float64, copy=True)
        row[np.isnan(row)] = np.inf
        if exclusive:
            for col in taken:
                row[col] = np.inf
        if p == 0 or not np.isfinite(row).any():
            results[i] = Match(None, None, float("inf"), float("inf"), False)
            continue
        best = int(np.argmin(row))
        best_d = float(row[best])
        if p > 1:
            row2 = row.copy()
            row2[best] = np.inf
            second = int(np.argmin(row2))
            second_d = float(row2[second])
        else:
            second, second_d = -1, float("inf")
        known = best_d <= threshold
        pid = int(person_ids[best])
        if known and exclusive and second_d - best_d >= min_margin:
            taken.add(best)
        results[i] = Match(
            person_id=pid if known else None,
            name=names.get(pid) if known else None,
            distance=best_d,
            margin=second_d - best_d,
            known=known,
            second_person_id=int(person_ids[second]) if second >= 0 and np.isfinite(second_d) else None,
        ) if known else Match(
            person_id=None, name=None, distance=best_d, margin=second_d - best_d, known=False,
            second_person_id=pid,
        )
    return [r for r in results if r is not None]
