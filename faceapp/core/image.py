"""Pixel-array normalisation (numpy only): everything the engine sees is HxWx3 BGR uint8."""

from __future__ import annotations

import numpy as np

from faceapp.core.errors import ImageError

MAX_PIXELS = 60_000_000  # ~ 8000x7500; larger photos are refused, not silently shrunk


def to_bgr8(image: np.ndarray, channel_order: str = "BGR") -> np.ndarray:
    """Return a contiguous HxWx3 uint8 BGR view/copy of a grayscale, BGR(A)/RGB(A), 8/16-bit or float image."""
    if not isinstance(image, np.ndarray):
        raise ImageError("not an image array")
    arr = image
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or arr.size == 0:
        raise ImageError(f"unsupported image shape {arr.shape}")
    if arr.ndim == 3 and arr.shape[2] not in (3, 4):
        raise ImageError(f"unsupported number of channels: {arr.shape[2]}")
    if arr.shape[0] * arr.shape[1] > MAX_PIXELS:
        raise ImageError(
            f"image is too large ({arr.shape[1]}x{arr.shape[0]}); at most {MAX_PIXELS // 1_000_000} megapixels")
    arr = _to_uint8(arr)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    elif arr.shape[2] == 4:
        rgb, alpha = arr[:, :, :3].astype(np.float32), arr[:, :, 3:4].astype(np.float32) / 255.0
        # Transparent areas become white, as a viewer would show them.
        arr = (rgb * alpha + 255.0 * (1.0 - alpha)).round().astype(np.uint8)
    if channel_order.upper().startswith("RGB"):
        arr = arr[:, :, ::-1]
    return np.ascontiguousarray(arr)


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.uint16:
        return (arr >> 8).astype(np.uint8)
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    if np.issubdtype(arr.dtype, np.floating):
        finite = np.nan_to_num(arr.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
        scale = 255.0 if finite.max(initial=0.0) <= 1.0 else 1.0
        return np.clip(finite * scale, 0, 255).round().astype(np.uint8)
    if np.issubdtype(arr.dtype, np.integer):
        return np.clip(arr, 0, 255).astype(np.uint8)
    raise ImageError(f"unsupported pixel type {arr.dtype}")
