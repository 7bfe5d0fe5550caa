"""A grid of this station's cameras: one tile per door with its picture, plates and status.

The cameras run in one :class:`~faceapp.service.stations.Station` (one engine, one gallery, the
fair scheduler); a plain worker thread calls ``Station.step`` and the grid pulls each camera's
newest result on a timer, so the window never waits on inference. Clicking a tile enlarges it to
the whole window; clicking it again (or Esc) returns to the grid.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QFrame, QGridLayout, QVBoxLayout, QWidget

from faceapp.gui.live_view import LiveView, place_in_corner
from faceapp.gui.status_bar import ElidedLabel
from faceapp.gui.widgets import in_window_terms
from faceapp.service.stations import Station

log = logging.getLogger(__name__)

PULL_MS = 66   # ~15 fps display
EVENTS_MS = 250


class StationRunner:
    """Calls ``station.step()`` in its own thread until stopped (cooperatively).

    ``models``: the pack's name once the models are loaded; ``error``: why the station could not
    start (the models are missing or broken), else None."""

    def __init__(self, station: Station) -> None:
        self.station = station
        self.models: str | None = None
        self.error: str | None = None
        self._stop = threading.Event()
        self._starting = threading.Lock()   # stop() never slips between the check and the start
        self._thread = threading.Thread(target=self._run, name="station recognition", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        # Loading the models happens here too: the window shows at once and never waits on them.
        try:
            models = self.station.app.engine.pack.name
            self.station.prepare()   # the gallery, the retention purge: before the lock stop() takes
            with self._starting:
                if self._stop.is_set():
                    return   # closed while the models loaded: start no camera
                self.station.start()
            self.models = models
        except Exception as exc:  # noqa: BLE001 - shown as the tiles' status; the window stays usable
            log.exception("the station could not start")
            self.error = str(exc) or type(exc).__name__
            return
        while not self._stop.is_set() and not self.station.finished:
            try:
                self.station.step(timeout=0.1)
            except Exception:  # noqa: BLE001 - one bad frame must not end every door
                log.exception("station step failed")

    def stop(self) -> None:
        with self._starting:
            self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5.0)
        self.station.stop()


class CameraTile(QFrame):
    """One camera: a header (door, status, fps) above its live picture."""

    clicked = Signal(int)

    def __init__(self, index: int, door: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.index = index
        self.door = door
        self.setFrameShape(QFrame.Shape.StyledPanel)
        # Elided, never wider than the tile: a long door name or error must not widen the window.
        self.header = ElidedLabel(door)
        self.view = LiveView()
        self.view.setMinimumSize(160, 90)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.header)
        layout.addWidget(self.view, 1)
        self.setCursor(Qt.CursorShape.PointingHandCursor)

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if event.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit(self.index)
        super().mousePressEvent(event)


class CameraGrid(QWidget):
    """Tiles of a station's cameras, refreshed from the station on a timer."""

    def __init__(self, station: Station, parent: QWidget | None = None, start: bool = True) -> None:
        super().__init__(parent)
        self.station = station
        self.runner = StationRunner(station)
        self.tiles = [CameraTile(i, door) for i, door in enumerate(station.doors)]
        self._layout = QGridLayout(self)
        cols = max(1, math.ceil(math.sqrt(len(self.tiles))))
        for t in self.tiles:
            self._layout.addWidget(t, t.index // cols, t.index % cols)
            t.clicked.connect(self.toggle)
        self.enlarged: int | None = None
        self._corner: QWidget | None = None
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)   # Esc reaches the grid after a click
        self.setObjectName("cameraGrid")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self._shown: list[object] = [None] * len(self.tiles)
        self._timer = QTimer(self)
        self._timer.setInterval(PULL_MS)
        self._timer.timeout.connect(self.refresh)
        if start:
            self.start()

    def start(self) -> None:
        self.runner.start()
        self._timer.start()

    def toggle(self, index: int) -> None:
        """Enlarge camera ``index`` (hide the others), or return to the grid."""
        self.enlarged = None if self.enlarged == index else index
        for t in self.tiles:
            t.setVisible(self.enlarged is None or t.index == self.enlarged)
        self.setFocus()

    def set_large(self, large: bool) -> None:
        """Reception mode: names readable from across the hall, in every tile, on a dark screen."""
        self.setStyleSheet("QWidget#cameraGrid { background: #15181b; } QWidget#cameraGrid QLabel "
                           "{ color: #e8e8e8; font-size: 15pt; }" if large else "")
        for t in self.tiles:
            t.view.set_large(large)

    def set_corner_widget(self, widget: QWidget | None) -> None:
        """A small child widget kept in the bottom-right corner (the reception exit button)."""
        self._corner = widget
        if widget is not None:
            widget.setParent(self)
            self._place_corner()

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self._place_corner()

    def _place_corner(self) -> None:
        place_in_corner(self, self._corner, 16)

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if event.key() == Qt.Key.Key_Escape and self.enlarged is not None:
            self.toggle(self.enlarged)
        else:
            super().keyPressEvent(event)

    def status(self, index: int) -> str:
        """The tile's status text: live with fps, ended, or the camera's error."""
        feed = self.station.feeds[index]
        if self.runner.error is not None:
            return "recognition is off"
        if self.runner.models is None:
            return "loading models…"
        if feed.state == "error":
            return "camera unavailable"
        if feed.state == "starting":
            return "connecting…"
        frames = self.station.stats[index].frames
        return f"ended · {frames} frames recognised" if feed.state == "ended" else f"live · {frames} frames recognised"

    def refresh(self) -> None:
        for t in self.tiles:
            i = t.index
            back = " · click or Esc: all cameras" if self.enlarged == i and len(self.tiles) > 1 else ""
            t.header.setText(f"{t.door} — {self.status(i)}{back}")
            result = self.station.last_results[i]
            if result is not None and result is not self._shown[i]:
                self._shown[i] = result
                t.view.set_frame(result.image, result.faces, result.captured)
            feed = self.station.feeds[i]
            if self.runner.error is not None:
                t.view.set_message(f"Recognition is off: {in_window_terms(self.runner.error)}", dim=True)
            elif feed.state == "error":
                # The header stays one short line (a long path would widen the whole column).
                t.header.setToolTip(feed.error or "")
                t.view.set_message(f"camera unavailable: {feed.error}", dim=True)
            elif feed.state == "ended" and feed.finished:
                t.view.set_message("end of video", dim=True)

    def stop(self) -> None:
        self._timer.stop()
        self.runner.stop()

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        self.stop()
        super().closeEvent(event)


def run_grid(station: Station, on_event: Callable | None = None, seconds: float | None = None) -> int:
    """Show the grid of ``station``'s cameras in a window of its own until it is closed (or
    after ``seconds``); ``on_event`` receives each logged entry (as ``watch`` prints them)."""
    from faceapp.gui.main import make_qapplication
    from faceapp.gui.window_geometry import size_to_screen

    qapp = make_qapplication()
    grid = CameraGrid(station)
    grid.setWindowTitle("faceapp — station cameras")
    size_to_screen(grid)
    # The station keeps every camera's entries until taken: a grid left open for days must not
    # hoard them.
    def take_events() -> None:
        for event in station.take_events():
            if on_event is not None:
                on_event(event)

    drain = QTimer(grid)
    drain.setInterval(EVENTS_MS)
    drain.timeout.connect(take_events)
    drain.start()
    if seconds:
        QTimer.singleShot(round(seconds * 1000), grid.close)
    grid.show()
    try:
        return qapp.exec()
    finally:
        grid.stop()
        take_events()
