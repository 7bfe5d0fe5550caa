"""Encoding of what the store keeps as BLOBs: images (PNG crops, JPEG snapshots) and embeddings."""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from faceapp.core.errors import EmbeddingError, StoreError
from faceapp.core.scale import UNIT_TOLERANCE, check_embeddings


def encode_png(image: np.ndarray) -> bytes:
    try:
        ok, buf = cv2.imencode(".png", image)
    except cv2.error:  # empty or oddly shaped array
        ok = False
    if not ok:
        raise StoreError("could not encode image")
    return buf.tobytes()


def encode_jpeg(image: np.ndarray, quality: int = 85) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise StoreError("could not encode image")
    return buf.tobytes()


def decode_blob(data: bytes) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise StoreError("a stored image is corrupt")
    return img


def embedding_blob(embedding: np.ndarray, dim: int | None = None) -> bytes:
    """An embedding as the stored float32 bytes; refuses one that is not a finite unit vector
    (:func:`faceapp.core.scale.check_embeddings`)."""
    return np.ascontiguousarray(check_embeddings(embedding, dim)).reshape(-1).tobytes()


def embedding_from_blob(data: bytes, dim: int | None = None) -> np.ndarray:
    """A stored embedding back as a float32 vector, checked the same way (for restores and
    syncs that copy rows from another database: EmbeddingError if it is damaged)."""
    if not isinstance(data, (bytes, bytearray, memoryview)) or len(data) % 4:
        raise EmbeddingError("a stored embedding is not a float32 vector")
    return check_embeddings(np.frombuffer(bytes(data), np.float32), dim)[0]


def embeddings_from_blobs(blobs: Sequence[bytes], dim: int | None = None) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    """Many stored embeddings at once, checked like :func:`embedding_from_blob` but in a few
    whole-array steps (a per-row check took 5 of the 7 minutes of loading 1M templates).

    Returns (an (N, D) float32 matrix, a mask of the usable rows, {row: why} for the others);
    D is ``dim`` if given, else the length most rows have; rows of another length count as
    damaged. Unusable rows are left as zeros in the matrix."""
    n = len(blobs)
    lengths = np.fromiter((len(b) if isinstance(b, (bytes, bytearray, memoryview)) else -1 for b in blobs),
                          np.int64, n)
    if n == 0:
        return np.zeros((0, 0), np.float32), np.zeros(0, bool), {}
    if dim is not None:
        size = 4 * int(dim)
    else:
        sizes, counts = np.unique(lengths, return_counts=True)
        size = int(sizes[np.argmax(counts)])
    if size <= 0 or size % 4:
        return np.zeros((n, 0), np.float32), np.zeros(n, bool), dict.fromkeys(range(n), "not a float32 vector")
    fits = lengths == size
    filler = bytes(size)     # zeros: a row of another length then fails the unit-length check
    joined = b"".join(blobs) if fits.all() else b"".join(b if ok else filler for b, ok in zip(blobs, fits))
    x = np.frombuffer(joined, np.float32).reshape(n, size // 4)
    with np.errstate(invalid="ignore", over="ignore"):
        sq = np.einsum("ij,ij->i", x, x)      # a NaN or infinite value makes its row's sum so too
        good = np.isfinite(sq) & (np.abs(np.sqrt(np.where(np.isfinite(sq), sq, 0.0)) - 1.0) <= UNIT_TOLERANCE)
    why = {}
    for i in np.flatnonzero(~good).tolist():
        why[i] = (f"not a float32 vector of {size // 4} values" if not fits[i] else
                  "not finite (NaN or infinity)" if not np.isfinite(x[i]).all() else
                  f"length {float(np.sqrt(sq[i])):.4g}, not 1")
    if why:
        x = x.copy()
        x[~good] = 0.0
    return x, good, why
