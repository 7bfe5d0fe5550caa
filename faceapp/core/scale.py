"""The one distance scale users see.

distance = 1 - cosine similarity of two L2-normalised embeddings.
0 means identical, about 1 means unrelated faces, 2 means opposite vectors.
It is linear in similarity, so a slider on it moves evenly; on our photos the
same person sits around 0.3-0.45 and different people above 0.7.
(The often-quoted "L2 < 0.4-0.6" rule is for a different scale and is wrong here:
L2 = sqrt(2 * distance).)
"""

from __future__ import annotations

import numpy as np

from faceapp.core.errors import EmbeddingError

# How far from 1 the length of a stored embedding may be (float32 rounding is ~1e-7).
UNIT_TOLERANCE = 1e-3


def cosine_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance on the user scale between rows of ``a`` and rows of ``b`` (both normalised)."""
    return 1.0 - np.asarray(a, np.float32) @ np.asarray(b, np.float32).T


def l2_from_distance(distance: float) -> float:
    """Euclidean distance of unit vectors that have this user-scale distance."""
    return float(np.sqrt(max(0.0, 2.0 * distance)))


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length, as float32 (a zero row stays zero)."""
    x = np.asarray(x, dtype=np.float32)
    # einsum: one pass without the (N, D) temporary np.linalg.norm makes (a 1M gallery: 9 s -> 1 s).
    norm = np.sqrt(np.einsum("...i,...i->...", x, x))[..., None]
    return x / np.maximum(norm, 1e-12)


def check_embeddings(embeddings: np.ndarray, dim: int | None = None, what: str = "embedding") -> np.ndarray:
    """The embeddings as (N, D) float32 rows, each finite and of unit length (within
    :data:`UNIT_TOLERANCE`), with ``dim`` columns if given; else :class:`EmbeddingError` naming
    the first bad row. Every path that stores, restores or syncs embeddings calls this: one NaN
    template would otherwise be "nearest" to every face and make everyone unknown."""
    x = np.asarray(embeddings, dtype=np.float32)
    x = x.reshape(1, -1) if x.ndim == 1 else x
    if x.ndim != 2 or x.shape[1] == 0 or (dim is not None and x.shape[1] != dim):
        want = f"{dim} values" if dim is not None else "a vector"
        raise EmbeddingError(f"a {what} has shape {tuple(np.shape(embeddings))}, expected {want}")
    finite = np.isfinite(x).all(axis=1)
    norms = np.linalg.norm(np.where(finite[:, None], x, 0.0), axis=1)
    bad = np.flatnonzero(~finite | (np.abs(norms - 1.0) > UNIT_TOLERANCE))
    if bad.size:
        i = int(bad[0])
        why = "is not finite (NaN or infinity)" if not finite[i] else f"has length {norms[i]:.4g}, not 1"
        raise EmbeddingError(f"{what} {i + 1} of {len(x)} {why}: refused")
    return x
