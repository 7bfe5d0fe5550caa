"""Grouping face embeddings into people without knowing how many there are, and scoring it.

All methods work on the user distance scale (1 - cosine similarity) with the recognition
threshold: two faces are "the same person" when their distance is at most the threshold, exactly
as the matcher decides for an enrolled person.

- :func:`threshold_components`: connected components of the graph "distance <= threshold"
  (single linkage cut at the threshold). The result does not depend on the order the faces
  arrive in, so adding one event at a time (join the visitors of every stored face within the
  threshold, merging them when there are several) gives exactly the grouping a full rebuild
  would: this is what faceapp uses for visitors (:mod:`faceapp.service.visitors`).
- :func:`average_linkage`: agglomerative clustering merging the two groups with the smallest
  mean pairwise distance while it is <= threshold. Needs the whole distance matrix (O(n^2)
  memory, O(n^3) time here), and the incremental form (:func:`incremental_average`: join the
  group with the smallest mean distance) depends on arrival order.

:func:`bcubed` scores a grouping against true identities (B-cubed precision/recall/F1).
"""

from __future__ import annotations

import numpy as np

from faceapp.core.scale import l2_normalize

METHODS = ("components", "average", "incremental_average")


class UnionFind:
    """Disjoint sets over 0..n-1 with path halving and union by size."""

    def __init__(self, n: int) -> None:
        self.parent = np.arange(n, dtype=np.int64)
        self.size = np.ones(n, dtype=np.int64)

    def find(self, i: int) -> int:
        p = self.parent
        while p[i] != i:
            p[i] = p[p[i]]
            i = int(p[i])
        return int(i)

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if self.size[ra] < self.size[rb]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size[rb]

    def labels(self) -> np.ndarray:
        """A group number per element, numbered 0.. in order of first appearance."""
        roots = np.array([self.find(i) for i in range(self.parent.size)], np.int64)
        _, first, inverse = np.unique(roots, return_index=True, return_inverse=True)
        order = np.argsort(np.argsort(first))
        return order[inverse].astype(np.int64)


def threshold_components(embeddings: np.ndarray, threshold: float, block: int = 1024) -> np.ndarray:
    """Connected components of "distance <= threshold"; one label per row (0.., first-seen order).

    Memory stays at ``block`` x n distances: rows are compared block by block with the rows
    after them."""
    emb = l2_normalize(np.atleast_2d(embeddings))
    n = emb.shape[0]
    uf = UnionFind(n)
    min_sim = np.float32(1.0 - threshold)
    for start in range(0, n, block):
        stop = min(n, start + block)
        sim = emb[start:stop] @ emb[start:].T          # (b, n - start)
        rows, cols = np.nonzero(sim >= min_sim)
        keep = cols > rows                                # each pair once, no self pairs
        for r, c in zip(rows[keep] + start, cols[keep] + start):
            uf.union(int(r), int(c))
    return uf.labels()


def average_linkage(embeddings: np.ndarray, threshold: float) -> np.ndarray:
    """Agglomerative clustering with average linkage, stopped when the closest two groups are
    further apart than ``threshold`` (Lance-Williams updates on the full distance matrix)."""
    emb = l2_normalize(np.atleast_2d(embeddings))
    n = emb.shape[0]
    if n == 0:
        return np.zeros(0, np.int64)
    d = (1.0 - emb @ emb.T).astype(np.float64)
    np.fill_diagonal(d, np.inf)
    size = np.ones(n)
    alive = np.ones(n, bool)
    uf = UnionFind(n)
    while alive.sum() > 1:
        flat = int(np.argmin(d))
        a, b = divmod(flat, n)
        if d[a, b] > threshold:
            break
        # Merge b into a: mean distance of the union to every other group.
        new = (size[a] * d[a] + size[b] * d[b]) / (size[a] + size[b])
        d[a], d[:, a] = new, new
        d[a, a] = np.inf
        d[b], d[:, b] = np.inf, np.inf
        size[a] += size[b]
        alive[b] = False
        uf.union(a, b)
    return uf.labels()


def incremental_average(embeddings: np.ndarray, threshold: float) -> np.ndarray:
    """Online average linkage: each face in turn joins the existing group with the smallest mean
    distance if that is <= threshold, else starts a new group. Depends on the order of rows."""
    emb = l2_normalize(np.atleast_2d(embeddings))
    labels = np.full(emb.shape[0], -1, np.int64)
    sums: list[np.ndarray] = []    # sum of member embeddings: mean distance = 1 - q . sum / size
    sizes: list[int] = []
    for i, q in enumerate(emb):
        best, best_d = -1, np.inf
        if sums:
            mean_d = 1.0 - (np.vstack(sums) @ q) / np.asarray(sizes, np.float32)
            best = int(np.argmin(mean_d))
            best_d = float(mean_d[best])
        if best >= 0 and best_d <= threshold:
            sums[best] = sums[best] + q
            sizes[best] += 1
            labels[i] = best
        else:
            sums.append(q.copy())
            sizes.append(1)
            labels[i] = len(sums) - 1
    return labels


def cluster(embeddings: np.ndarray, threshold: float, method: str = "components") -> np.ndarray:
    """Group labels by one of :data:`METHODS`."""
    if method == "components":
        return threshold_components(embeddings, threshold)
    if method == "average":
        return average_linkage(embeddings, threshold)
    if method == "incremental_average":
        return incremental_average(embeddings, threshold)
    raise ValueError(f"unknown clustering method {method!r}; choose one of {', '.join(METHODS)}")


def bcubed(true_labels: np.ndarray, pred_labels: np.ndarray) -> tuple[float, float, float]:
    """B-cubed (precision, recall, F1) of a grouping against true identities.

    For each item: precision = share of its group that has its identity, recall = share of its
    identity that is in its group; both averaged over items (Bagga & Baldwin 1998)."""
    t = np.asarray(true_labels).reshape(-1)
    p = np.asarray(pred_labels).reshape(-1)
    if t.size != p.size:
        raise ValueError("one predicted label per true label is required")
    if t.size == 0:
        return float("nan"), float("nan"), float("nan")
    _, ti = np.unique(t, return_inverse=True)
    _, pi = np.unique(p, return_inverse=True)
    both = np.zeros((ti.max() + 1, pi.max() + 1), np.int64)
    np.add.at(both, (ti, pi), 1)
    overlap = both[ti, pi].astype(np.float64)          # items sharing both identity and group
    precision = float(np.mean(overlap / both.sum(axis=0)[pi]))
    recall = float(np.mean(overlap / both.sum(axis=1)[ti]))
    f = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return precision, recall, f
