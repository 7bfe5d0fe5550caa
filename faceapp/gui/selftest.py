"""`faceapp selftest SOURCE`: checks an installation end to end. Opens the main window on a
video file (or any camera source), waits until a face is recognised as an enrolled person,
prints who, and quits; exit status 1 if nobody is recognised in time.

Works without a display (``QT_QPA_PLATFORM=offscreen``): the installer's tests run it on the
built application.
"""

from __future__ import annotations

import logging
import time

from faceapp.core.errors import FaceAppError

log = logging.getLogger(__name__)

POLL_MS = 100


def run_selftest(home, source: str, timeout: float) -> list[str]:
    """Names recognised on ``source`` within ``timeout`` seconds (empty if none); entries are
    not logged. Raises FaceAppError when the models cannot be loaded."""
    from PySide6.QtCore import QTimer

    from faceapp.gui.main import build_main_window, make_qapplication
    from faceapp.service.app import App

    qapp = make_qapplication()
    found: set[str] = set()
    failure: list[str] = []
    with App(home) as app:
        window = build_main_window(app, camera=source, log_entries=False, start=False)
        deadline = time.monotonic() + timeout

        def poll() -> None:
            if window.models_state == "failed":
                failure.append("the models could not be loaded (see: faceapp models verify)")
            found.update(f.name for f in window.view.faces if f.known and f.name)
            if found or failure or time.monotonic() > deadline:
                window.close()

        timer = QTimer()
        timer.timeout.connect(poll)
        window.show()
        QTimer.singleShot(0, window.start)
        timer.start(POLL_MS)
        try:
            qapp.exec()
        finally:
            timer.stop()
            window.shutdown()
    if failure:
        raise FaceAppError(failure[0])
    return sorted(found)
