"""The window's size and place: opens within the available screen (also at QT_SCALE_FACTOR=1.5,
where 1280x800 logical pixels would not fit a 1600x1000 screen), and remembers where the user
left it (in the settings, per data folder)."""

from __future__ import annotations

import logging
import sqlite3

from PySide6.QtCore import QByteArray, QRect, QSize
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QMainWindow, QWidget

from faceapp.core.errors import FaceAppError
from faceapp.service.app import App

log = logging.getLogger(__name__)

DEFAULT_SIZE = QSize(1280, 800)
SCREEN_SHARE = 0.92  # of the available screen, at most, for a first opening


def fit_rect(wanted: QRect, available: QRect) -> QRect:
    """``wanted`` shrunk to fit ``available`` and moved inside it."""
    w = min(wanted.width(), available.width())
    h = min(wanted.height(), available.height())
    x = min(max(wanted.x(), available.x()), available.x() + available.width() - w)
    y = min(max(wanted.y(), available.y()), available.y() + available.height() - h)
    return QRect(x, y, w, h)


def _available(window: QWidget) -> QRect:
    screen = window.screen() or QGuiApplication.primaryScreen()
    return screen.availableGeometry() if screen is not None else QRect(0, 0, DEFAULT_SIZE.width(), DEFAULT_SIZE.height())


def size_to_screen(window: QWidget) -> None:
    """A default size (at most a share of the available screen), centred on the screen."""
    avail = _available(window)
    size = QSize(min(DEFAULT_SIZE.width(), int(avail.width() * SCREEN_SHARE)),
                 min(DEFAULT_SIZE.height(), int(avail.height() * SCREEN_SHARE)))
    # The widgets' minimum size wins over the share of the screen (Qt would enlarge it anyway):
    # centre what the window will really be, then keep it inside.
    size = size.expandedTo(window.minimumSizeHint()).boundedTo(avail.size())
    window.resize(size)
    frame = QRect(0, 0, size.width(), size.height())
    frame.moveCenter(avail.center())
    window.move(fit_rect(frame, avail).topLeft())


def place_window(window: QMainWindow, app: App) -> None:
    """Restore the remembered geometry, else a default size centred; either way within the screen."""
    avail = _available(window)
    saved = app.settings.window_geometry
    restored = False
    if saved:
        try:
            restored = window.restoreGeometry(QByteArray.fromHex(saved.encode("ascii")))
        except (UnicodeEncodeError, ValueError):
            restored = False
    if not restored:
        size_to_screen(window)
        return
    if window.isMaximized() or window.isFullScreen():
        return
    fitted = fit_rect(window.geometry(), avail)
    if fitted != window.geometry():
        window.setGeometry(fitted)


def remember_geometry(window: QMainWindow, app: App) -> None:
    """Save the window's geometry for the next start (not while full screen at reception)."""
    if window.isFullScreen() or not window.isVisible():
        return
    text = bytes(window.saveGeometry().toHex()).decode("ascii")
    if text == app.settings.window_geometry:
        return
    try:
        app.update_settings(window_geometry=text)
    except (FaceAppError, sqlite3.Error) as exc:  # the data folder closed first: nothing to keep
        log.warning("window geometry not saved: %s", exc)
