"""Encoding of what the store keeps as BLOBs: images (PNG crops, JPEG snapshots) and embeddings."""

from __future__ import annotations

import cv2
import numpy as np

from faceapp.core.errors import StoreError


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


def embedding_blob(embedding: np.ndarray) -> bytes:
    """An embedding as the stored float32 bytes."""
    return np.ascontiguousarray(embedding, dtype=np.float32).reshape(-1).tobytes()
