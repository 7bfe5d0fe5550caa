"""Reception mode: full screen, recognition only, large names, no administrative controls.
Leaving it asks for the administrator password; entering it locks the gate (see admin.py)."""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import QMainWindow, QToolButton

RECEPTION_SHORTCUT = "Ctrl+Shift+R"


class ReceptionMode(QObject):
    """Switches ``window`` (a MainWindow) in and out of reception mode."""

    def __init__(self, window: QMainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.on = False
        self._was_maximized = False
        # Added to the window too, so the shortcut still works while the menu bar is hidden.
        self.action = QAction("&Reception mode", window)
        self.action.setShortcut(QKeySequence(RECEPTION_SHORTCUT))
        self.action.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
        self.action.triggered.connect(self.toggle)
        window.addAction(self.action)
        self.leave_button = QToolButton()
        self.leave_button.setObjectName("leaveReception")
        self.leave_button.setText("Exit reception")
        self.leave_button.setToolTip(f"Leave reception mode ({RECEPTION_SHORTCUT})")
        self.leave_button.setCursor(Qt.CursorShape.PointingHandCursor)
        self.leave_button.clicked.connect(self.request_leave)
        window.view.set_corner_widget(self.leave_button)
        self.leave_button.hide()
        # Closing the window (Alt+F4, the window manager's close button) would stop the door
        # station: in reception mode it needs the password too. The OS ending the session, or
        # a signal (see gui.main), is not someone at the screen and closes without asking.
        self.os_quit = False
        window.close_guards.append(self._may_close)
        qapp = QGuiApplication.instance()
        if qapp is not None:
            qapp.commitDataRequest.connect(self.allow_os_quit)

    def allow_os_quit(self, *_) -> None:
        """The operating system (session end, SIGTERM/SIGINT) is closing the app: no password."""
        self.os_quit = True

    def _may_close(self, event) -> bool:
        if not self.on or self.os_quit:
            return True
        return self.window.admin_allowed("close the window in reception mode")

    def toggle(self) -> None:
        if self.on:
            self.request_leave()
        else:
            self.set(True)

    def request_leave(self) -> bool:
        """The one way out of reception mode: asks for the administrator password. True if left."""
        if not self.window.admin_allowed("leave reception mode"):
            return False
        self.set(False)
        return True

    def set(self, on: bool, save: bool = True) -> None:
        """Full screen, recognition only, large names; or back to the admin window."""
        w = self.window
        on = bool(on)
        if on == self.on:
            return
        self.on = on
        w.menuBar().setVisible(not on)
        w.statusBar().setVisible(not on)
        w.threshold_bar.setVisible(not on)
        w.tabs.tabBar().setVisible(not on)
        if on:
            w.tabs.setCurrentWidget(w.live_page)
        for i in range(w.tabs.count()):
            if w.tabs.widget(i) is not w.live_page:
                w.tabs.setTabEnabled(i, not on)
        for action in w.admin_actions():
            action.setEnabled(not on)
        w.live.reception = on
        w.view.set_large(on)
        self.leave_button.setVisible(on)
        state = w.windowState()
        if on:
            self._was_maximized = bool(state & Qt.WindowState.WindowMaximized)
            state |= Qt.WindowState.WindowFullScreen
        else:
            state &= ~Qt.WindowState.WindowFullScreen
            if self._was_maximized:
                state |= Qt.WindowState.WindowMaximized
        # Before the first show this only records the state; show() then applies it.
        w.setWindowState(state)
        if save and w.app.settings.reception_mode != on:
            w.app.update_settings(reception_mode=on)
        w.receptionChanged.emit(on)
