"""Alerts at reception: a denied person (and, if chosen, an unknown visitor) raises a banner
over the live picture with the face's snapshot and a sound; a click acknowledges it. One alert
per track: the same person staying in view, or logged again, does not raise it twice.

Settings (View menu, administrator only): ``alert_sound`` and ``alert_unknown``."""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QApplication, QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from faceapp.service.app import App
from faceapp.service.pipeline import EntryEvent

log = logging.getLogger(__name__)

SNAPSHOT_PX = 96
MAX_PENDING = 50  # unacknowledged alerts kept; older ones are dropped (they stay in the log)
SEEN_TRACKS = 500  # tracks remembered as already alerted


def play_sound() -> None:
    """The alert sound: the system bell (QtMultimedia is not part of the installed Qt)."""
    QApplication.beep()


@dataclass(frozen=True)
class Alert:
    event: EntryEvent

    @property
    def title(self) -> str:
        e = self.event
        if e.decision == "unknown":
            return "Unknown visitor"
        return f"No access: {e.name or 'unidentified person'}"

    def details(self) -> str:
        e = self.event
        when = e.time.astimezone().strftime("%H:%M:%S")
        parts = [f"at {e.door}, {when}"]
        if e.reason:
            parts.append(e.reason)
        return " — ".join(parts)


def wants_alert(event: EntryEvent, unknown_too: bool) -> bool:
    """Whether a logged event is worth an alert: denied always, unknown when chosen."""
    return event.decision == "denied" or (unknown_too and event.decision == "unknown")


class AlertBanner(QFrame):
    """The banner: snapshot, what happened, how many more wait, and an Acknowledge button."""

    acknowledged = Signal(object)  # the Alert

    def __init__(self, app: App, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.app = app
        self.setObjectName("alertBanner")
        self.setStyleSheet("#alertBanner { background: #b71c1c; } #alertBanner QLabel { color: white; }")
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self._pending: deque[Alert] = deque(maxlen=MAX_PENDING)
        self._alerted: deque[tuple[str, int | None, int]] = deque(maxlen=SEEN_TRACKS)
        row = QHBoxLayout(self)
        row.setContentsMargins(10, 6, 10, 6)
        self.snapshot = QLabel(self)
        self.snapshot.setFixedSize(SNAPSHOT_PX, SNAPSHOT_PX)
        self.snapshot.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.snapshot.setObjectName("alertSnapshot")
        row.addWidget(self.snapshot)
        texts = QVBoxLayout()
        self.title = QLabel(self)
        self.title.setObjectName("alertTitle")
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.5)
        font.setBold(True)
        self.title.setFont(font)
        self.title.setWordWrap(True)
        self.detail = QLabel(self)
        self.detail.setWordWrap(True)
        self.more = QLabel(self)
        texts.addWidget(self.title)
        texts.addWidget(self.detail)
        texts.addWidget(self.more)
        texts.addStretch(1)
        row.addLayout(texts, 1)
        self.ack_button = QPushButton("Acknowledge", self)
        self.ack_button.setObjectName("acknowledge")
        self.ack_button.setToolTip("Seen: hide this alert (it stays in the entry log)")
        self.ack_button.clicked.connect(self.acknowledge)
        row.addWidget(self.ack_button, 0, Qt.AlignmentFlag.AlignVCenter)
        self.hide()

    @property
    def current(self) -> Alert | None:
        return self._pending[0] if self._pending else None

    def pending(self) -> int:
        return len(self._pending)

    def on_events(self, events) -> None:
        """Events just logged by the recognition worker: alert on the ones that call for it."""
        settings = self.app.settings
        raised = False
        for event in events:
            if not wants_alert(event, settings.alert_unknown):
                continue
            key = (event.door, event.camera, event.track_id) if event.track_id is not None else None
            if key is not None and key in self._alerted:
                continue  # this track raised an alert already
            if key is not None:
                self._alerted.append(key)
            self._pending.append(Alert(event))
            raised = True
        if raised:
            self._show_current()
            if settings.alert_sound:
                play_sound()

    def forget_tracks(self) -> None:
        """A new camera: its track numbers start again."""
        self._alerted.clear()

    def acknowledge(self) -> None:
        """The click: the current alert is seen; the next waiting one (if any) shows."""
        if not self._pending:
            return
        alert = self._pending.popleft()
        self.acknowledged.emit(alert)
        self._show_current()

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt API: a click anywhere acknowledges
        if event.button() == Qt.MouseButton.LeftButton:
            self.acknowledge()
        super().mousePressEvent(event)

    def _show_current(self) -> None:
        alert = self.current
        if alert is None:
            self.hide()
            return
        self.title.setText(alert.title)
        self.detail.setText(alert.details())
        n = len(self._pending) - 1
        self.more.setText(f"{n} more alert{'s' if n != 1 else ''} waiting" if n else "")
        pixmap = QPixmap()
        if alert.event.snapshot and pixmap.loadFromData(alert.event.snapshot, "JPG"):
            self.snapshot.setPixmap(pixmap.scaled(SNAPSHOT_PX, SNAPSHOT_PX, Qt.AspectRatioMode.KeepAspectRatio,
                                                  Qt.TransformationMode.SmoothTransformation))
        else:
            self.snapshot.setPixmap(QPixmap())
            self.snapshot.setText("no picture")
        self.show()
        self.raise_()


def install_alerts(window, app: App) -> AlertBanner:
    """The alert banner above the live picture, fed by the window's logged events, and the
    View menu's alert settings (administrator only)."""
    banner = AlertBanner(app, window.live_page)
    window.live_layout.insertWidget(0, banner)
    window.eventsReady.connect(banner.on_events)
    window.live.cameraChanged.connect(banner.forget_tracks)
    window.alerts = banner
    window.view_menu.addSeparator()
    for text, key in (("Alert &sound", "alert_sound"), ("Alert on &unknown visitors", "alert_unknown")):
        action = window.view_menu.addAction(text)
        action.setCheckable(True)
        action.setChecked(bool(getattr(app.settings, key)))

        def toggled(checked: bool, key=key, action=action) -> None:
            if window.admin_allowed("change the alert settings"):
                app.update_settings(**{key: checked})
            else:
                action.setChecked(bool(getattr(app.settings, key)))
        action.triggered.connect(toggled)
        window.add_admin_action(action)
        setattr(window, f"{key}_action", action)
    return banner
