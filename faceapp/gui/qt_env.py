"""Small Qt helpers: a clean Qt environment, resource lookup, numpy -> QImage."""

from __future__ import annotations

import ctypes
import logging
import os
import sys
import threading
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

# Variables opencv-python sets on import to point Qt at its own bundled (Qt5) plugins and
# fonts. PySide6 would then try cv2's xcb plugin (wrong Qt: crash) and warn about a
# missing font folder.
_CV2_QT_VARS = ("QT_QPA_PLATFORM_PLUGIN_PATH", "QT_QPA_FONTDIR", "QT_PLUGIN_PATH")


def clean_qt_environment() -> list[str]:
    """Remove Qt variables that point into the cv2 package; call before creating QApplication.

    cv2 is imported first so that its own import (which sets them) cannot come later.
    Also applies :func:`guard_pyside_refcount_bug`. Returns the names of the variables removed."""
    import cv2

    cv2_dir = os.path.dirname(os.path.abspath(cv2.__file__))
    removed = []
    for name in _CV2_QT_VARS:
        value = os.environ.get(name)
        if value and os.path.abspath(value).startswith(cv2_dir):
            del os.environ[name]
            removed.append(name)
    if removed:
        log.debug("removed cv2's Qt variables: %s", ", ".join(removed))
    guard_pyside_refcount_bug()
    return removed


def resources_dir() -> Path:
    """The folder with icons and the stylesheet: faceapp/resources in an installed wheel,
    repo/resources in a source checkout."""
    pkg = Path(__file__).resolve().parents[1]  # .../faceapp
    for candidate in (pkg / "resources", pkg.parent / "resources"):
        if candidate.is_dir():
            return candidate
    frozen = getattr(sys, "_MEIPASS", None)  # a PyInstaller bundle
    if frozen:
        return Path(frozen) / "resources"
    return pkg / "resources"


def resource_path(name: str) -> Path:
    """Full path of a resource file (which may not exist if the installation is broken)."""
    return resources_dir() / name


def app_icon():
    """The application icon (an empty QIcon if the resource is missing)."""
    from PySide6.QtGui import QIcon

    path = resource_path("faceapp.svg")
    if not path.is_file():
        log.warning("application icon not found at %s", path)
        return QIcon()
    return QIcon(str(path))


def load_stylesheet(name: str = "faceapp.qss") -> str:
    """The application stylesheet, or an empty string if it is missing."""
    path = resource_path(name)
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return ""


def bgr_to_qimage(image: np.ndarray):
    """A QImage viewing a HxWx3 BGR uint8 array (no copy; keep the array alive while it is used)."""
    from PySide6.QtGui import QImage

    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 image, got {image.shape} {image.dtype}")
    if not image.flags["C_CONTIGUOUS"]:
        image = np.ascontiguousarray(image)
    h, w = image.shape[:2]
    qimg = QImage(image.data, w, h, int(image.strides[0]), QImage.Format.Format_BGR888)
    # QImage does not own the buffer: keep the (possibly new) array referenced by the image object.
    qimg._keepalive = image  # type: ignore[attr-defined]
    return qimg


# PySide6 6.12.0 (measured with the wheel from PyPI; 6.11.3 is fine) drops a reference
# to None on every call of a method returning void (setText, update, drawRect...) and one
# to True on every Signal.emit(). After some 50,000 such calls CPython aborts
# with "none_dealloc: deallocating None". None, True and False are never freed in a
# healthy process (Python 3.12 makes them immortal), so on an affected PySide6 we give
# them a reference count no program can use up. The real fix is a PySide6 without the bug.
_GUARD_LOCK = threading.Lock()
_guarded: bool | None = None
_SPARE_REFERENCES = 1 << 40


def pyside_drops_references() -> bool:
    """True if this PySide6 loses references to None/True (measured once, in this thread)."""
    from PySide6.QtCore import QObject, Signal

    class _Probe(QObject):
        ping = Signal()

    probe = _Probe()
    n = 64
    none_before = sys.getrefcount(None)
    for _ in range(n):
        probe.setObjectName("probe")
    none_lost = none_before - sys.getrefcount(None)
    true_before = sys.getrefcount(True)
    results = [probe.ping.emit() for _ in range(n)]
    # Each result still held owns a reference a correct emit() added; a buggy one did not.
    true_lost = true_before + sum(r is True for r in results) - sys.getrefcount(True)
    del results
    # Other threads only add noise of a few references either way.
    return none_lost >= n // 2 or true_lost >= n // 2


def guard_pyside_refcount_bug() -> bool:
    """Make None/True/False unfreeable if PySide6 drops references to them; idempotent.

    Returns True when the guard is active. Call in the GUI thread before workers start."""
    global _guarded
    with _GUARD_LOCK:
        if _guarded is None:
            _guarded = False
            immortal = sys.version_info >= (3, 12) or sys.implementation.name != "cpython"
            if not immortal and pyside_drops_references():
                for obj in (None, True, False):
                    ctypes.c_ssize_t.from_address(id(obj)).value += _SPARE_REFERENCES
                _guarded = True
                log.warning("PySide6 %s loses references to None/True; guarded against the crash "
                            "(install another PySide6 version to fix it)", _pyside_version())
        return _guarded


def emit(signal, *args) -> None:
    """``signal.emit(*args)`` with :func:`guard_pyside_refcount_bug` in force (kept for callers;
    a plain ``.emit()`` is equally safe once the guard ran)."""
    guard_pyside_refcount_bug()
    signal.emit(*args)


def _pyside_version() -> str:
    import PySide6

    return PySide6.__version__
