"""Similarity alignment of a face to the ArcFace 112x112 template, from 5 landmarks."""

from __future__ import annotations

import numpy as np

# Where the 5 landmarks sit in a 112x112 ArcFace crop (insightface's template).
ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
     [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 matrix of the least-squares similarity (Umeyama) mapping ``src`` points to ``dst``."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    n = src.shape[0]
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s_c, d_c = src - mu_s, dst - mu_d
    cov = d_c.T @ s_c / n
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1
    rot = u @ np.diag(d) @ vt
    var_s = (s_c ** 2).sum() / n
    scale = (sig * d).sum() / var_s if var_s > 0 else 1.0
    t = mu_d - scale * rot @ mu_s
    return np.hstack([scale * rot, t[:, None]]).astype(np.float32)


def alignment_matrix(landmarks: np.ndarray, size: int = 112) -> np.ndarray:
    """Matrix that warps an image so the landmarks land on the ArcFace template."""
    return similarity_transform(landmarks, ARCFACE_TEMPLATE * (size / 112.0))
