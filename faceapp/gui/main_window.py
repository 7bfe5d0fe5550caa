"""The main window. It only assembles: the Live page (LiveView + ThresholdBar driven by a
LiveController), menus, the status bar and the controllers other modules provide.

Hooks for other parts of the window (keep them simple):
- ``add_page(title, widget, admin=True)`` adds a tab; ``page(title)``; ``pages(admin=...)``;
  ``pageAdded(widget, admin)`` is emitted for each.
- ``add_admin_action(action)``: disabled in reception mode.
- ``status.add_indicator(widget)``: a small widget on the right of the status bar.
- ``live_layout``: the Live page's vertical layout (banners go above the view, index 0).
- ``help_menu``, ``view_menu``, ``file_menu``: menus to add entries to; ``about_hooks``:
  callables receiving each AboutDialog before it is shown.
- ``close_guards``: callables ``guard(event) -> bool``; any False keeps the window open.
- ``receptionChanged(bool)``, ``eventsReady(events)``, ``live.resultShown(Recognized)``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import QMainWindow, QTabWidget, QVBoxLayout, QWidget

from faceapp.gui.about import AboutDialog, install_help_menu
from faceapp.gui.admin import admin_allowed, find_gate
from faceapp.gui.camera_menu import CameraMenus
from faceapp.gui.live_controller import CameraSpec, LiveController
from faceapp.gui.live_view import LiveView
from faceapp.gui.qt_env import app_icon, guard_pyside_refcount_bug
from faceapp.gui.reception import ReceptionMode
from faceapp.gui.station_view import StationView
from faceapp.gui.status_bar import StatusBar
from faceapp.gui.threshold_bar import ThresholdBar
from faceapp.gui.window_geometry import place_window, remember_geometry
from faceapp.gui.workers import Recognized
from faceapp.service.app import App

log = logging.getLogger(__name__)


class MainWindow(QMainWindow):
    """Pages in tabs; the Live page runs a capture thread and a recognition thread."""

    receptionChanged = Signal(bool)
    eventsReady = Signal(object)  # tuple[EntryEvent, ...] just logged by the recognition worker
    pageAdded = Signal(object, bool)  # widget, admin

    def __init__(self, app: App, camera: CameraSpec | None = None, reception: bool = False,
                 log_entries: bool = True, door: str | None = None, parent: QWidget | None = None,
                 cameras: tuple[str, ...] | None = None) -> None:
        super().__init__(parent)
        guard_pyside_refcount_bug()  # in the GUI thread, before any worker runs
        self.app = app
        self.door = door
        self.admin_gate = None  # an AdminGate, set by faceapp.gui.admin.install_admin
        self._admin_actions: list[QAction] = []
        self.close_guards: list[Callable[[QCloseEvent], bool]] = []
        self.about_hooks: list[Callable[[AboutDialog], None]] = []
        self.setWindowTitle("Live recognition")
        self.setWindowIcon(app_icon())

        self.tabs = QTabWidget(self)
        self.tabs.setDocumentMode(True)
        self.setCentralWidget(self.tabs)
        self.live_page = QWidget()
        self.live_layout = QVBoxLayout(self.live_page)
        self.live_layout.setContentsMargins(0, 0, 0, 0)
        self.live_layout.setSpacing(0)
        self.view = LiveView(self.live_page)
        self.live_layout.addWidget(self.view, 1)
        self.threshold_bar = ThresholdBar(app, self.admin_allowed, self._locked, self.live_page)
        self.live_layout.addWidget(self.threshold_bar)
        self.tabs.addTab(self.live_page, "Live")

        self.live = LiveController(app, self.view, camera if camera is not None else app.camera_spec(),
                                   self.threshold_bar.value, log_entries=log_entries, door=door, parent=self)
        self.threshold_bar.thresholdChanged.connect(self.live.set_threshold)
        self.live.eventsReady.connect(self.eventsReady)

        self.file_menu = self.menuBar().addMenu("&File")
        quit_action = self.file_menu.addAction("&Quit")
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        self.add_admin_action(quit_action)
        self.camera_menus = CameraMenus(self)
        self.view_menu = self.menuBar().addMenu("&View")
        self.reception_mode = ReceptionMode(self)
        self.view_menu.addAction(self.reception_mode.action)
        self.help_menu = install_help_menu(self, app)

        self.status = StatusBar(self)
        self.live.modelsStateChanged.connect(self.status.set_models)
        self.live.statusTick.connect(self._update_status)
        self.stations = StationView(self, cameras)  # door cameras: their grid replaces the one view

        place_window(self, app)
        if reception or app.settings.reception_mode:
            self.set_reception_mode(True, save=False)

    # -- administrator actions --------------------------------------------------
    def admin_allowed(self, reason: str) -> bool:
        """Ask for the administrator password (if locked) before ``reason``; True to go on."""
        return admin_allowed(self, reason, self.admin_gate)

    def _locked(self) -> bool:
        gate = find_gate(self, self.admin_gate)
        return gate is not None and not gate.unlocked

    def guarded(self, reason: str, fn: Callable[[], object]) -> Callable[..., None]:
        """A slot that asks for the password (if locked), then calls ``fn``."""
        def slot(*_args) -> None:
            if self.admin_allowed(reason):
                fn()
        return slot

    def add_admin_action(self, action: QAction) -> None:
        """Register a menu action other modules add, so reception mode disables it too."""
        self._admin_actions.append(action)
        if self.reception:
            action.setEnabled(False)

    def admin_actions(self) -> list[QAction]:
        return list(self._admin_actions)

    # -- pages ------------------------------------------------------------------
    def add_page(self, title: str, widget: QWidget, admin: bool = True) -> int:
        """Add a page (tab). ``admin`` pages are unreachable in reception mode and covered while
        locked. Returns its index."""
        index = self.tabs.addTab(widget, title)
        widget.setProperty("adminPage", admin)
        if self.reception and admin:
            self.tabs.setTabEnabled(index, False)
        self.pageAdded.emit(widget, admin)
        return index

    def page(self, title: str) -> QWidget | None:
        """The page with this tab title, if any."""
        for i in range(self.tabs.count()):
            if self.tabs.tabText(i).replace("&", "") == title:
                return self.tabs.widget(i)
        return None

    def pages(self, admin: bool | None = None) -> list[QWidget]:
        """All pages but Live (only administrative ones with admin=True, only others with False)."""
        found = [self.tabs.widget(i) for i in range(self.tabs.count())]
        return [w for w in found if w is not self.live_page
                and (admin is None or bool(w.property("adminPage")) == admin)]

    def show_about(self) -> AboutDialog:
        """Help ▸ About (modeless)."""
        dialog = AboutDialog(self.app, self)
        for hook in self.about_hooks:
            hook(dialog)
        dialog.show()
        return dialog

    # -- lifecycle --------------------------------------------------------------
    def start(self) -> None:
        """Start loading the models, the camera(s) and the display timer (call once, after building)."""
        self.stations.start()

    def shutdown(self) -> None:
        """Save a pending threshold, stop both workers (bounded wait). Idempotent."""
        if not self.live.closing:
            self.threshold_bar.save_pending()
        self.stations.shutdown()
        self.live.shutdown()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt API
        for guard in self.close_guards:
            if not guard(event):
                event.ignore()
                return
        remember_geometry(self, self.app)
        self.shutdown()
        super().closeEvent(event)

    # -- reception mode -----------------------------------------------------------
    @property
    def reception(self) -> bool:
        return self.reception_mode.on if hasattr(self, "reception_mode") else False

    def set_reception_mode(self, on: bool, save: bool = True) -> None:
        """Full screen, recognition only, large names; or back to the admin window."""
        self.reception_mode.set(on, save)

    def request_leave_reception(self) -> bool:
        """Leave reception mode after the administrator password. True if left."""
        return self.reception_mode.request_leave()

    # -- status ---------------------------------------------------------------------
    def _update_status(self) -> None:
        self.status.set_stats(self.live.stats_text())
        st = self.live.capture_status()
        if st is not None:
            self.status.set_source(f"{st.description} — {st.state}")

    # -- short names kept for callers and tests -------------------------------------
    @property
    def threshold(self) -> float:
        return self.threshold_bar.value

    def set_threshold(self, value: float) -> None:
        """Move the slider (re-decides the faces shown at once; saved shortly after)."""
        self.threshold_bar.set_value(value)

    def save_threshold(self) -> None:
        self.threshold_bar.save()

    threshold_slider = property(lambda self: self.threshold_bar.slider)
    threshold_label = property(lambda self: self.threshold_bar.label)
    admin_bar = property(lambda self: self.threshold_bar)
    stats_label = property(lambda self: self.status.stats_label)
    source_label = property(lambda self: self.status.source_label)
    models_label = property(lambda self: self.status.models_label)
    leave_button = property(lambda self: self.reception_mode.leave_button)
    reception_action = property(lambda self: self.reception_mode.action)
    camera_menu = property(lambda self: self.camera_menus.camera_menu)
    models_menu = property(lambda self: self.camera_menus.models_menu)
    loop_action = property(lambda self: self.camera_menus.loop_action)
    restart_action = property(lambda self: self.camera_menus.restart_action)
    retry_models_action = property(lambda self: self.camera_menus.retry_models_action)
    capture_worker = property(lambda self: self.live.capture_worker)
    capture_thread = property(lambda self: self.live.capture_thread)
    recognition_worker = property(lambda self: self.live.recognition_worker)
    recognition_thread = property(lambda self: self.live.recognition_thread)
    models_state = property(lambda self: self.live.models_state)
    camera = property(lambda self: self.live.camera)

    def set_camera(self, spec: CameraSpec, remember: bool = False) -> None:
        self.live.set_camera(spec, remember)

    def restart_camera(self) -> None:
        self.live.restart_camera()

    def set_loop(self, loop: bool) -> None:
        self.camera_menus.set_loop(loop)

    def retry_models(self) -> None:
        self.live.retry_models()

    def stats(self) -> dict[str, float]:
        return self.live.stats()

    def latest_frame(self):
        return self.live.latest_frame()

    def latest_result(self) -> Recognized | None:
        return self.live.latest_result()
