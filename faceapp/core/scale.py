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


def cosine_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance on the user scale between rows of ``a`` and rows of ``b`` (both normalised)."""
    return 1.0 - np.asarray(a, np.float32) @ np.asarray(b, np.float32).T


def l2_from_distance(distance: float) -> float:
    """Euclidean distance of unit vectors that have this user-scale distance."""
    return float(np.sqrt(max(0.0, 2.0 * distance)))


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length, as float32 (a zero row stays zero)."""
    x = np.asarray(x, dtype=np.float32)
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norm, 1e-12)
