"""File > Site...: this station's site state, and joining or leaving a site (administrator only).

Joining pulls every person and template of the site, which can take a while on a big site: it
runs in a worker thread with a progress bar; the window stays responsive."""

from __future__ import annotations

import threading
from typing import Callable

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QFormLayout, QHBoxLayout, QLabel, QLineEdit,
                               QProgressBar, QPushButton, QVBoxLayout, QWidget)

from faceapp.core.errors import FaceAppError
from faceapp.gui.site_status import SiteController
from faceapp.service.site import join_site, leave_site, sync_now


class SiteDialog(QDialog):
    """Status of the site, Join / Leave / Sync now. ``allow(reason)`` asks for the administrator
    password (True when granted)."""

    def __init__(self, controller: SiteController, allow: Callable[[str], bool],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Site")
        self.controller = controller
        self.app = controller.app
        self.allow = allow
        self._job: threading.Thread | None = None
        self._job_error: str | None = None
        self._progress = (0, 0)

        self.state = QLabel()
        self.state.setWordWrap(True)
        self.url = QLineEdit()
        self.url.setPlaceholderText("postgresql://faceapp_station@server/faceapp?sslmode=verify-full")
        self.password = QLineEdit()
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setPlaceholderText("kept in the data folder's password file, never shown")
        self.station = QLineEdit()
        self.station.setPlaceholderText("default: this computer's name")
        form = QFormLayout()
        form.addRow("Site address", self.url)
        form.addRow("Password", self.password)
        form.addRow("Station name", self.station)
        self.join_button = QPushButton("Join site")
        self.leave_button = QPushButton("Leave site")
        self.sync_button = QPushButton("Sync now")
        self.join_button.clicked.connect(self.join)
        self.leave_button.clicked.connect(self.leave)
        self.sync_button.clicked.connect(self.sync)
        buttons = QHBoxLayout()
        for b in (self.join_button, self.sync_button, self.leave_button):
            buttons.addWidget(b)
        self.bar = QProgressBar()
        self.bar.setVisible(False)
        self.message = QLabel()
        self.message.setWordWrap(True)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.state)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.bar)
        layout.addWidget(self.message)
        layout.addWidget(close)
        self._poll = QTimer(self)
        self._poll.timeout.connect(self._check_job)
        self.resize(560, 0)
        self.refresh()

    def refresh(self) -> None:
        s = self.controller.status()
        station = s.site is not None
        if station:
            self.state.setText(f"<b>{s.line()}</b><br>Site: {s.site}<br>This station: {s.station}<br>"
                               f"Last sync: {s.last_sync or 'never'}<br>People: {s.people}, templates: "
                               f"{s.templates}<br>Waiting for the site: {s.pending_entries} entries, "
                               f"{s.pending_audit} audit rows")
        else:
            self.state.setText("<b>This PC is not part of a site.</b><br>Join a site to share people, doors "
                               "and the entry log with the other stations (see the README, \"Many doors\").")
        busy = self._job is not None
        for w in (self.url, self.password, self.station):
            w.setEnabled(not station and not busy)
        self.join_button.setEnabled(not station and not busy)
        self.leave_button.setEnabled(station and not busy)
        self.sync_button.setEnabled(station and not busy)

    # -- actions ---------------------------------------------------------------------------------
    def join(self) -> None:
        url = self.url.text().strip()
        if not url:
            self.message.setText("Give the site's address (postgresql://USER@HOST/DATABASE).")
            return
        if not self.allow("join a site"):
            return
        password = self.password.text() or None
        station = self.station.text().strip() or None
        self.password.clear()
        self.controller.stop()
        self._run(lambda: join_site(self.app, url, station, self._on_progress, password=password),
                  "Joined the site.")

    def leave(self) -> None:
        if not self.allow("leave the site"):
            return
        self.controller.stop()
        self._run(lambda: leave_site(self.app), "Left the site; the data stays on this PC.")

    def sync(self) -> None:
        self._run(lambda: sync_now(self.app), "Synchronised.")

    def _on_progress(self, done: int, total: int) -> None:
        self._progress = (done, total)   # read by the GUI timer

    def _run(self, fn: Callable[[], object], done_text: str) -> None:
        self._job_error = None
        self._done_text = done_text

        def work() -> None:
            try:
                fn()
            except FaceAppError as exc:
                self._job_error = str(exc)
            except Exception as exc:   # shown, never raised into Qt
                self._job_error = f"{type(exc).__name__}: {exc}"

        self._job = threading.Thread(target=work, name="faceapp-site-dialog", daemon=True)
        self.bar.setVisible(True)
        self.bar.setRange(0, 0)
        self.message.setText("Working…")
        self._job.start()
        self._poll.start(100)
        self.refresh()

    def _check_job(self) -> None:
        done, total = self._progress
        if total:
            self.bar.setRange(0, total)
            self.bar.setValue(done)
        if self._job is None or self._job.is_alive():
            return
        self._job = None
        self._poll.stop()
        self.bar.setVisible(False)
        self.message.setText(self._job_error or self._done_text)
        self.controller.restart()
        self.controller.changed.emit()
        self.refresh()

    def done(self, result: int) -> None:  # noqa: D401 - Qt API
        if self._job is not None:
            self._job.join()   # a join in flight finishes (or fails) before the dialog goes
            self._check_job()
        super().done(result)


def install_site(window, app) -> SiteController:
    """File > Site... (administrator), the site state in the status bar, and the station's
    background sync while the window is open; the People page and the Entry log reload after a
    pull brought changes."""
    from PySide6.QtGui import QAction

    from faceapp.gui.site_status import SiteStatusLabel

    controller = SiteController(app, window)
    window.site = controller
    label = SiteStatusLabel(controller, window)
    window.status.add_indicator(label)

    def open_dialog() -> None:
        SiteDialog(controller, window.admin_allowed, window).exec()
        label.refresh()

    action = QAction("&Site…", window)
    action.triggered.connect(open_dialog)
    actions = window.file_menu.actions()
    window.file_menu.insertAction(actions[0] if actions else None, action)
    if actions:
        window.file_menu.insertSeparator(actions[0])
    window.add_admin_action(action)

    def reload_pages() -> None:
        for title in ("People", "Entry log"):
            page = window.page(title)
            if page is not None and hasattr(page, "refresh"):
                page.refresh()
        label.refresh()

    controller.changed.connect(reload_pages)

    def stop_sync(_event) -> bool:
        label.stop()
        controller.stop()
        return True

    window.close_guards.append(stop_sync)
    return controller
