"""The site state in the status bar ("site: connected" / "site: offline since 10:02, 3 entries
waiting") and the background sync of a station while the window is open."""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QLabel, QWidget

from faceapp.service.app import App
from faceapp.service.site import SiteStatus, SiteSync

REFRESH_MS = 2000


class SiteController(QObject):
    """Runs the station's :class:`SiteSync` while the window is open; ``changed`` is emitted in
    the GUI thread after a pull brought something (pages reload what they show)."""

    changed = Signal()
    _pulled = Signal()    # from the sync thread; queued into the GUI thread

    def __init__(self, app: App, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.app = app
        self._pulled.connect(self.changed.emit)
        self.sync = SiteSync(app, on_change=self._pulled.emit)
        self.sync.start()

    def restart(self) -> None:
        """After join/leave: sync (again) if this folder is now a station."""
        self.sync.stop()
        self.sync = SiteSync(self.app, on_change=self._pulled.emit)
        self.sync.start()

    def status(self) -> SiteStatus:
        return self.sync.status()

    def stop(self) -> None:
        self.sync.stop()


class SiteStatusLabel(QLabel):
    """A status-bar label with the site state; hidden on a single PC."""

    def __init__(self, controller: SiteController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.setObjectName("siteStatus")
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.refresh)
        self.refresh()

    def stop(self) -> None:
        self._timer.stop()

    def refresh(self) -> None:
        """Show the state; polls every 2 s while this folder is a station (a single PC: hidden, idle)."""
        try:
            status = self.controller.status()
        except Exception:   # the data folder was closed under us (window going away)
            self._timer.stop()
            return
        self.setVisible(status.site is not None)
        if status.site is None:
            self._timer.stop()
            return
        if not self._timer.isActive():
            self._timer.start(REFRESH_MS)
        self.setText(status.line())
        self.setToolTip(f"{status.site}\nstation '{status.station}'\nlast sync {status.last_sync or 'never'}\n"
                        f"waiting: {status.pending_entries} entries, {status.pending_audit} audit rows")
        self.setStyleSheet("" if status.connected else "color: #b45309; font-weight: bold;")
