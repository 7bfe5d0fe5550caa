"""The administrator lock as the user sees it: an indicator in the status bar (click to lock
or unlock), Ctrl+L from every focus (an application-wide shortcut, so it works after any
dialog and with the menu bar hidden), and a cover over administrative pages while locked so
their content (the people list, the audit log) is never visible behind a password prompt."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QLabel, QMainWindow, QPushButton, QToolButton, QVBoxLayout, QWidget

from faceapp.gui.admin import AdminGate

LOCK_SHORTCUT = "Ctrl+L"
REFRESH_MS = 10_000  # the indicator's "unlocked (4 min)" countdown


class LockCover(QWidget):
    """An opaque cover over one administrative page, with an Unlock button."""

    def __init__(self, page: QWidget, on_unlock) -> None:
        super().__init__(page)
        self.setObjectName("lockCover")
        self.setAutoFillBackground(True)
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        text = QLabel("Locked. This page needs the administrator password.", self)
        text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        text.setWordWrap(True)
        layout.addWidget(text)
        self.button = QPushButton("Unlock…", self)
        self.button.clicked.connect(on_unlock)
        layout.addWidget(self.button, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addStretch(1)
        page.installEventFilter(self)
        self.setGeometry(page.rect())
        self.hide()

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt API
        if event.type() == QEvent.Type.Resize:
            self.setGeometry(obj.rect())
        return False

    def cover(self, on: bool) -> None:
        if on:
            page = self.parentWidget()
            focus = page.focusWidget() if page is not None else None
            if focus is not None:
                focus.clearFocus()
            self.setGeometry(page.rect())
            self.raise_()
        self.setVisible(on)


class LockState(QObject):
    """Wires ``gate`` into ``window`` (a MainWindow): status-bar indicator, the Lock action,
    and covers over the window's administrative pages."""

    def __init__(self, window: QMainWindow, gate: AdminGate) -> None:
        super().__init__(window)
        self.window = window
        self.gate = gate
        self._covers: dict[QWidget, LockCover] = {}
        self.indicator = QToolButton()
        self.indicator.setObjectName("lockIndicator")
        self.indicator.setAutoRaise(True)
        # Words, not an emoji padlock: the fonts of a bare Linux desktop have no such glyph.
        self.indicator.setCursor(Qt.CursorShape.PointingHandCursor)
        self.indicator.clicked.connect(self.toggle)
        window.status.add_indicator(self.indicator)
        self.lock_action = QAction("&Lock administrator actions", window)
        self.lock_action.setShortcut(QKeySequence(LOCK_SHORTCUT))
        self.lock_action.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
        self.lock_action.triggered.connect(gate.lock)
        window.addAction(self.lock_action)  # works with the menu bar hidden too
        self._refresh = QTimer(self)
        self._refresh.setInterval(REFRESH_MS)
        self._refresh.timeout.connect(self.update_indicator)
        self._refresh.start()
        gate.lockChanged.connect(self._on_lock_changed)
        window.pageAdded.connect(self._on_page_added)
        for page in window.pages(admin=True):
            self._on_page_added(page, True)
        self._on_lock_changed(gate.unlocked)

    def toggle(self) -> None:
        """The indicator's click: lock when unlocked, else ask for the password."""
        if self.gate.unlocked:
            self.gate.lock()
        else:
            self.gate.require(self.window, "unlock administrator actions")

    def unlock(self) -> bool:
        return self.gate.require(self.window, "unlock administrator actions")

    def _on_page_added(self, page: QWidget, admin: bool) -> None:
        if admin and page not in self._covers:
            self._covers[page] = LockCover(page, self.unlock)
            self._covers[page].cover(not self.gate.unlocked)

    def is_covered(self, page: QWidget) -> bool:
        cover = self._covers.get(page)
        return cover is not None and not cover.isHidden()

    def _on_lock_changed(self, unlocked: bool) -> None:
        for cover in self._covers.values():
            cover.cover(not unlocked)
        self.update_indicator()

    def update_indicator(self) -> None:
        if self.gate.unlocked:
            minutes = max(1, round(self.gate.remaining() / 60))
            self.indicator.setText(f"Admin unlocked ({minutes} min)")
            self.indicator.setStyleSheet("color: #b26a00; font-weight: bold;")
            self.indicator.setToolTip("Administrator actions are unlocked. Click or press Ctrl+L to lock.")
        else:
            self.indicator.setText("Locked")
            self.indicator.setStyleSheet("")
            self.indicator.setToolTip("Administrator actions need the password. Click to unlock.")
