"""Encoding of what the store keeps as BLOBs: images (PNG crops, JPEG snapshots) and embeddings."""

from __future__ import annotations

import cv2
import numpy as np

from faceapp.core.errors import EmbeddingError, StoreError
from faceapp.core.scale import check_embeddings


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
