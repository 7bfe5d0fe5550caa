"""The Live page with this station's door cameras (issue #16).

With door cameras (the ``station_cameras`` setting, or ``--camera SRC=DOOR`` given more than once
on the command line) the Live page shows their :class:`~faceapp.gui.camera_grid.CameraGrid`
instead of the single :class:`~faceapp.gui.live_view.LiveView`, and the single camera's
:class:`~faceapp.gui.live_controller.LiveController` is suspended: one process never runs both
(two pipelines would halve the CPU of each camera). :meth:`StationView.apply` switches between the
two without a restart, after the door cameras changed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from PySide6.QtCore import QObject, QTimer, Signal

from faceapp.capture.sources import STREAM_PREFIXES
from faceapp.core.errors import FaceAppError
from faceapp.core.settings import split_door_camera
from faceapp.gui.camera_grid import CameraGrid
from faceapp.service.app import App
from faceapp.service.attendance import resolve_door
from faceapp.service.stations import CameraSpec, Station

log = logging.getLogger(__name__)

STATUS_MS = 250   # status texts and logged entries (alerts) follow the station this often
FPS_WINDOW = 2.0  # seconds the recognition rate in the status bar is averaged over


def door_camera_args(app: App, values: Sequence[str] | str | None) -> tuple[str | None, tuple[str, ...]]:
    """The window's ``--camera`` values -> (single camera or None, door cameras).

    One value without a door keeps its old meaning (the one camera of the window); so does one
    stream address whose query string holds an '=' that names no door. Several values each need
    ``SOURCE=DOOR``; a bad one or an unknown door raises FaceAppError (one line)."""
    if values is None or isinstance(values, str):
        values = [values] if values else []
    values = [str(v) for v in values]
    if not values:
        return None, ()
    if len(values) == 1:
        text = values[0]
        if "=" not in text:
            return text, ()
        if text.lower().startswith(STREAM_PREFIXES):
            try:
                resolve_door(app, split_door_camera(text)[1])
            except (ValueError, FaceAppError):
                return text, ()   # rtsp://host/stream?channel=1: a single camera
    out = []
    for text in values:
        try:
            source, door = split_door_camera(text)
            door = resolve_door(app, door)
        except ValueError as exc:
            raise FaceAppError(f"--camera: {exc}; several cameras each need their door") from None
        except FaceAppError as exc:
            raise FaceAppError(f"--camera {text}: {exc}") from None
        out.append(f"{source}={door}")
    return None, tuple(out)


class StationView(QObject):
    """Puts the door cameras' grid on ``window``'s Live page, or its single LiveView when there are
    none; keeps the status bar, alerts, the threshold slider and reception mode working for both."""

    modeChanged = Signal(bool)  # True: the grid is shown

    def __init__(self, window, cameras: Sequence[str] | None = None) -> None:
        super().__init__(window)
        self.window = window
        self.app: App = window.app
        self._override = tuple(cameras) if cameras else None   # from the command line, not saved
        self.grid: CameraGrid | None = None
        self.skipped: list[str] = []   # door cameras left out, with the reason
        self._specs: tuple[CameraSpec, ...] = ()
        self._started = False
        self._rate: list[tuple[float, int]] = []
        self._timer = QTimer(self)
        self._timer.setInterval(STATUS_MS)
        self._timer.timeout.connect(self.tick)
        window.threshold_bar.thresholdChanged.connect(self._set_threshold)
        window.receptionChanged.connect(self._on_reception)
        window.restart_action.triggered.connect(self._restart)

    # -- which cameras --------------------------------------------------------------------------
    def cameras(self) -> tuple[str, ...]:
        """The door cameras shown: the command line's, else the setting's."""
        return self._override if self._override is not None else self.app.settings.station_cameras

    def _resolve(self) -> tuple[CameraSpec, ...]:
        specs, self.skipped = [], []
        for text in self.cameras():
            try:
                source, door = split_door_camera(text)
                specs.append(CameraSpec(self.app.camera_spec(source), resolve_door(self.app, door)))
            except (ValueError, FaceAppError) as exc:   # a door removed since it was chosen
                log.warning("door camera %s left out: %s", text, exc)
                self.skipped.append(f"{text}: {exc}")
        return tuple(specs)

    @property
    def showing_grid(self) -> bool:
        return self.grid is not None

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the grid, or the single camera (call once, when the window starts)."""
        self._started = True
        self._show(self._resolve())

    def apply(self) -> None:
        """The door cameras setting changed: show the grid of the new list, or the single view."""
        self._override = None
        if self._started and not self.window.live.closing:
            self._show(self._resolve())

    def _show(self, specs: tuple[CameraSpec, ...]) -> None:
        if self.grid is not None and specs == self._specs:
            return
        self._stop_grid()
        self._specs = specs
        if specs:
            self.window.live.suspend()
            self._start_grid(specs)
        else:
            self.window.live.start()
            if self.skipped:   # the grid's status line would say it; the single view's says the source
                self.window.statusBar().showMessage(f"Door cameras left out: {'; '.join(self.skipped)}", 30_000)
        self._sync_actions()
        self.modeChanged.emit(self.grid is not None)

    def _restart(self) -> None:
        """Camera ▸ Restart in grid mode: every door camera again (a video plays from the start)."""
        if self.grid is not None:
            specs, self._specs = self._specs, ()
            self._show(specs)

    def _start_grid(self, specs: tuple[CameraSpec, ...]) -> None:
        w = self.window
        station = Station(self.app, specs, log_entries=w.live.log_entries, loop=self.app.settings.loop_video)
        station.threshold = w.threshold_bar.value
        grid = CameraGrid(station, w.live_page, start=False)
        w.live_layout.insertWidget(w.live_layout.indexOf(w.view), grid, 1)
        w.view.hide()
        grid.set_corner_widget(w.leave_button)
        w.leave_button.setVisible(w.reception)
        grid.set_large(w.reception)
        self.grid = grid
        self._rate = []
        grid.start()
        self._timer.start()
        self.tick()

    def _stop_grid(self, restore: bool = True) -> None:
        grid = self.grid
        if grid is None:
            return
        self._timer.stop()
        grid.stop()
        self.grid = None
        self._forward_events(grid.station)
        if not restore:   # the window is closing: nothing to show again
            return
        w = self.window
        w.view.set_corner_widget(w.leave_button)
        w.leave_button.setVisible(w.reception)
        w.live_layout.removeWidget(grid)
        grid.hide()
        grid.deleteLater()
        w.view.show()
        w.status.set_source("")

    def shutdown(self) -> None:
        """Stop the station (cooperatively, bounded waits). Idempotent."""
        self._stop_grid(restore=False)

    # -- the rest of the window ---------------------------------------------------------------
    def _sync_actions(self) -> None:
        # The single camera's sources mean nothing while the grid shows: disabled, not hidden.
        on = not self.window.reception and self.grid is None
        for action in self.window.camera_menus.source_actions:
            action.setEnabled(on)
        indicator = getattr(self.window, "door_indicator", None)   # "Door: X" is the single view's
        if indicator is not None:
            indicator.setVisible(self.grid is None)

    def _on_reception(self, on: bool) -> None:
        if self.grid is not None:
            self.grid.set_large(on)
        self._sync_actions()

    def _set_threshold(self, value: float) -> None:
        if self.grid is not None:
            station = self.grid.station
            station.threshold = float(value)   # pipelines not built yet take it when they are
            for pipeline in station.pipelines:
                pipeline.threshold = float(value)   # used from the next frame (an atomic assignment)

    def _forward_events(self, station: Station) -> None:
        events = station.take_events()
        if events:
            self.window.eventsReady.emit(tuple(events))

    def tick(self) -> None:
        """Forward the entries just logged (alerts, presence) and update the status bar."""
        grid = self.grid
        if grid is None:
            return
        self._forward_events(grid.station)
        status = self.window.status
        runner = grid.runner
        if runner.error is not None:
            status.set_models("failed", runner.error)
        elif runner.models is not None:
            status.set_models("ready", runner.models)
        else:
            status.set_models("loading", "")
        status.set_source(self.summary())
        status.set_stats(self.stats_text())

    def summary(self) -> str:
        """'4 cameras · 3 live · 1 unavailable' (and what was left out)."""
        grid = self.grid
        if grid is None:
            return ""
        feeds = grid.station.feeds
        n = len(feeds)
        parts = [f"{n} camera{'s' if n != 1 else ''}"]
        for state, word in (("running", "live"), ("starting", "connecting"), ("ended", "ended"),
                            ("error", "unavailable")):
            k = sum(1 for f in feeds if f.state == state)
            if k or state == "running":
                parts.append(f"{k} {word}")
        if self.skipped:
            parts.append(f"{len(self.skipped)} left out ({'; '.join(self.skipped)})")
        return "  ·  ".join(parts)

    def stats_text(self) -> str:
        """'recognition 11.8 fps · 2 faces': every camera together."""
        grid = self.grid
        if grid is None:
            return ""
        station = grid.station
        now, frames = time.monotonic(), sum(s.frames for s in station.stats)
        self._rate = [(t, f) for t, f in self._rate if now - t <= FPS_WINDOW] + [(now, frames)]
        (t0, f0) = self._rate[0]
        fps = (frames - f0) / (now - t0) if now > t0 else 0.0
        faces = sum(len(r.faces) for r, feed in zip(station.last_results, station.feeds)
                    if r is not None and feed.state == "running")
        return f"recognition {fps:.1f} fps  ·  {faces} face{'s' if faces != 1 else ''}"
