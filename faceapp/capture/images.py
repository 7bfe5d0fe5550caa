"""Robust loading of still images (photos for enrollment, image folders used as a camera).

Every failure becomes an :class:`ImageError` whose one-line message names the file.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from faceapp.core.errors import ImageError
from faceapp.core.image import MAX_PIXELS, to_bgr8

__all__ = ["IMAGE_SUFFIXES", "decode_image_bytes", "iter_image_files", "load_image"]

log = logging.getLogger(__name__)

IMAGE_SUFFIXES: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"})

# Only formats Pillow cannot identify go to OpenCV, and OpenCV needs the whole file in
# memory; a multi-gigabyte non-image (a video renamed .jpg) must not be slurped.
_MAX_FALLBACK_BYTES = 256 * 1024 * 1024

# ImageFile.LOAD_TRUNCATED_IMAGES is a process-wide switch that any other library may
# have turned on; this lock serialises our temporary override of it.
_truncation_lock = threading.Lock()


def load_image(path: str | Path) -> np.ndarray:
    """Read an image file as HxWx3 BGR uint8, upright per EXIF; raise ImageError naming the file."""
    name = str(path)
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise ImageError(f"image file not found: '{name}'") from None
    except PermissionError:
        raise ImageError(f"no permission to read image file '{name}'") from None
    except OSError as exc:
        raise ImageError(f"cannot read image file '{name}': {_one_line(exc)}") from None
    if stat.S_ISDIR(st.st_mode):
        raise ImageError(f"'{name}' is a folder, not an image file")
    if not stat.S_ISREG(st.st_mode):
        # FIFOs and devices would block or stream forever.
        raise ImageError(f"'{name}' is not a regular file")
    if st.st_size == 0:
        raise ImageError(f"image file '{name}' is empty (0 bytes)")
    try:
        fh = open(p, "rb")  # noqa: SIM115 - closed by the with below
    except PermissionError:
        raise ImageError(f"no permission to read image file '{name}'") from None
    except OSError as exc:
        raise ImageError(f"cannot read image file '{name}': {_one_line(exc)}") from None
    with fh:
        return _decode(fh, name, st.st_size)


def decode_image_bytes(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode an encoded image (file contents) with the same rules as :func:`load_image`."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ImageError(f"image '{name}': expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if not data:
        raise ImageError(f"image '{name}' is empty (0 bytes)")
    return _decode(io.BytesIO(data), name, len(data))


def iter_image_files(folder: str | Path) -> list[Path]:
    """Image files directly inside ``folder`` (not recursive), sorted by name, hidden files skipped."""
    d = Path(folder)
    if not d.exists():
        raise ImageError(f"folder not found: '{folder}'")
    if not d.is_dir():
        raise ImageError(f"'{folder}' is not a folder")
    try:
        entries = list(d.iterdir())
    except OSError as exc:
        raise ImageError(f"cannot list folder '{folder}': {_one_line(exc)}") from None
    found = []
    for entry in entries:
        if _is_hidden(entry) or entry.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        with contextlib.suppress(OSError):  # vanished or broken link: simply not an image
            if entry.is_file():
                found.append(entry)
    return sorted(found)


def person_folders(folder: str | Path) -> list[Path]:
    """The sub-folders of ``folder`` (one per person), sorted, hidden ones skipped; an error if
    ``folder`` is not a folder or has none."""
    root = Path(folder)
    if not root.is_dir():
        raise ImageError(f"{root} is not a folder")
    subs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not subs:
        raise ImageError(f"{root} has no sub-folders: put each person's photos in a folder named after them")
    return subs


def _decode(fh: BinaryIO, name: str, size: int) -> np.ndarray:
    try:
        with _strict_truncation():
            return _decode_pil(fh, name)
    except _NotIdentified:
        pass
    if size > _MAX_FALLBACK_BYTES:
        raise ImageError(f"'{name}' is not an image (unknown or unsupported format)")
    fh.seek(0)
    return _decode_cv2(fh.read(), name)


class _NotIdentified(Exception):
    """Pillow does not know the format; OpenCV may."""


def _decode_pil(fh: BinaryIO, name: str) -> np.ndarray:
    try:
        im = Image.open(fh)
    except UnidentifiedImageError:
        raise _NotIdentified from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):  # the warning if run with -W error
        raise ImageError(
            f"image '{name}' is too large; at most {MAX_PIXELS // 1_000_000} megapixels") from None
    except Exception as exc:  # a malformed header can raise almost anything inside a plugin
        raise ImageError(f"image '{name}' is corrupt: {_one_line(exc)}") from None
    with im:
        width, height = im.size
        # Checked on the header alone, before any pixel buffer is allocated.
        if width * height > MAX_PIXELS:
            raise ImageError(
                f"image '{name}' is too large ({width}x{height}); at most {MAX_PIXELS // 1_000_000} megapixels")
        if width <= 0 or height <= 0:
            raise ImageError(f"image '{name}' has no pixels ({width}x{height})")
        try:
            im.load()  # first frame only for animated GIF/WebP/PNG
        except Exception as exc:
            raise ImageError(f"image '{name}' is truncated or corrupt: {_one_line(exc)}") from None
        try:
            ImageOps.exif_transpose(im, in_place=True)
        except Exception as exc:  # broken EXIF must not cost us the picture
            log.warning("ignoring unreadable EXIF orientation in %s: %s", name, _one_line(exc))
        try:
            arr, order = _pil_to_array(im)
            return to_bgr8(arr, order)
        except ImageError as exc:
            raise ImageError(f"image '{name}': {exc}") from None
        except Exception as exc:
            raise ImageError(f"image '{name}' cannot be converted: {_one_line(exc)}") from None


def _pil_to_array(im: Image.Image) -> tuple[np.ndarray, str]:
    """Pixel array plus its channel order, for to_bgr8."""
    mode = im.mode
    if mode in ("RGB", "RGBA", "L", "1"):
        return np.asarray(im), "RGB"
    if mode.startswith("I;16"):
        return np.asarray(im).astype(np.uint16, copy=False), "RGB"
    if mode == "I":
        arr = np.asarray(im)
        # 32-bit integer mode usually carries 16-bit samples (older Pillow, some TIFFs).
        top = int(arr.max(initial=0))
        if top > 255:
            arr = np.clip(arr, 0, 65535).astype(np.uint16) if top <= 65535 else (
                arr.astype(np.float64) / top).astype(np.float32)
        return arr, "RGB"
    if mode == "F":
        return np.asarray(im), "RGB"
    if mode in ("LA", "La", "PA", "RGBa") or (mode == "P" and "transparency" in im.info):
        return np.asarray(im.convert("RGBA")), "RGB"
    # P, CMYK, YCbCr, LAB, HSV and anything exotic: Pillow knows how to get RGB.
    return np.asarray(im.convert("RGB")), "RGB"


def _decode_cv2(data: bytes, name: str) -> np.ndarray:
    buf = np.frombuffer(data, dtype=np.uint8)
    try:
        arr = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise ImageError(f"'{name}' cannot be decoded: {_one_line(exc)}") from None
    if arr is None:
        raise ImageError(f"'{name}' is not an image (unknown or unsupported format)")
    try:
        return to_bgr8(arr, "BGR")
    except ImageError as exc:
        raise ImageError(f"image '{name}': {exc}") from None


@contextlib.contextmanager
def _strict_truncation() -> Iterator[None]:
    """Make Pillow treat a truncated file as an error for the duration of one decode."""
    if not ImageFile.LOAD_TRUNCATED_IMAGES:
        # The normal case: nothing to override, no lock needed.
        yield
        return
    with _truncation_lock:
        previous = ImageFile.LOAD_TRUNCATED_IMAGES
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        try:
            yield
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = previous


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _is_hidden(path: Path) -> bool:
    return path.name.startswith(".") or (os.name == "nt" and _has_hidden_attribute(path))


def _has_hidden_attribute(path: Path) -> bool:
    try:
        return bool(path.stat().st_file_attributes & stat.FILE_ATTRIBUTE_HIDDEN)  # type: ignore[attr-defined]
    except (OSError, AttributeError):
        return False
