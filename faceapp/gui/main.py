"""Starting the window: `faceapp` without a subcommand lands in :func:`run_gui`."""

from __future__ import annotations

import logging
import signal
import sys

from faceapp.gui.qt_env import clean_qt_environment

log = logging.getLogger(__name__)


def build_main_window(app, camera=None, reception: bool = False, log_entries: bool = True,
                      start: bool = True, cameras=None):
    """The main window for ``app`` with every page, its workers started (unless ``start`` is False).

    ``camera``: a ``--camera`` value (webcam number, file, folder, URL), a FrameSource or a
    factory returning one; None uses the camera from the settings. ``cameras``: door cameras
    ("SOURCE=DOOR" texts) shown as a grid instead; None uses the settings' door cameras."""
    from faceapp.gui.main_window import MainWindow

    window = MainWindow(app, camera=camera, reception=reception, log_entries=log_entries, cameras=cameras)
    _add_optional_pages(window, app)
    if start:
        window.start()
    return window


def _add_optional_pages(window, app) -> None:
    """Pages beyond Live. Other modules add their one-liner here, e.g.
    ``from faceapp.gui.people_page import PeoplePage; window.add_page("People", PeoplePage(app, window))``.
    Keep each import inside this function so the window starts fast. The administrator gate
    comes first: the other pages find it as ``window.admin_gate``."""
    from faceapp.gui.admin import install_admin; install_admin(window, app)  # noqa: E702
    from faceapp.gui.people_page import install_people_page; install_people_page(window, app)  # noqa: E702
    from faceapp.gui.log_page import LogPage; window.add_page("Entry log", LogPage(app, window, gate=window.admin_gate))  # noqa: E702,E501
    from faceapp.gui.face_search import install_face_search; install_face_search(window, app)  # noqa: E702
    from faceapp.gui.visitors_page import install_visitors_page; install_visitors_page(window, app)  # noqa: E702
    from faceapp.gui.alerts import install_alerts; install_alerts(window, app)  # noqa: E702
    from faceapp.gui.presence_page import install_presence_page; install_presence_page(window, app)  # noqa: E702
    from faceapp.gui.doors_page import install_doors_page; install_doors_page(window, app)  # noqa: E702
    from faceapp.gui.enroll_unknown import install_enroll_unknown; install_enroll_unknown(window, app)  # noqa: E702
    from faceapp.gui.door_cameras_dialog import install_door_cameras; install_door_cameras(window, app)  # noqa: E702
    from faceapp.gui.calibration import install_calibration_action; install_calibration_action(window, app)  # noqa: E702
    from faceapp.gui.first_run import install_models_action; install_models_action(window, app)  # noqa: E702
    from faceapp.gui.about_notices import install_notices; install_notices(window)  # noqa: E702
    from faceapp.gui.site_dialog import install_site; install_site(window, app)  # noqa: E702
    audit = window.tabs.indexOf(window.page("Audit log"))
    window.tabs.tabBar().moveTab(audit, window.tabs.count() - 1)  # the gate came first; its page goes last


def make_qapplication():
    """The QApplication with faceapp's name, icon and stylesheet (created once)."""
    clean_qt_environment()
    from PySide6.QtWidgets import QApplication

    from faceapp.gui.qt_env import app_icon, load_stylesheet

    qapp = QApplication.instance() or QApplication(sys.argv[:1])
    qapp.setApplicationName("faceapp")
    qapp.setApplicationDisplayName("faceapp")
    qapp.setDesktopFileName("faceapp")
    qapp.setWindowIcon(app_icon())
    style = load_stylesheet()
    if style:
        qapp.setStyleSheet(style)
    return qapp


def run_gui(args) -> int:
    """Open the main window (args: .home, .camera, .reception, .verbose) and run until it closes."""
    qapp = make_qapplication()
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QMessageBox

    from faceapp.core.errors import FaceAppError
    from faceapp.service.app import App

    try:
        app = App(args.home)
    except FaceAppError as exc:
        QMessageBox.critical(None, "faceapp", f"Cannot open the data folder:\n{exc}")
        raise
    try:
        from faceapp.gui.first_run import run_first_start

        run_first_start(app)  # no models yet: explain the packs and install one
        from faceapp.gui.station_view import door_camera_args

        camera, cameras = door_camera_args(app, args.camera)
        window = build_main_window(app, camera=camera, cameras=cameras, reception=bool(args.reception),
                                   start=False)
        window.show()
        # Workers start once the window is on screen: it appears at once, models load behind it.
        QTimer.singleShot(0, window.start)
        # Ctrl+C in the terminal and the OS's SIGTERM (shutdown) close the window cleanly, also in
        # reception mode; the timer lets Python see the signal.
        def os_close(*_) -> None:
            window.reception_mode.allow_os_quit()
            window.close()

        previous = signal.signal(signal.SIGINT, os_close)
        previous_term = signal.signal(signal.SIGTERM, os_close)
        ticker = QTimer()
        ticker.start(250)
        ticker.timeout.connect(lambda: None)
        try:
            return int(qapp.exec())
        finally:
            ticker.stop()
            signal.signal(signal.SIGINT, previous)
            signal.signal(signal.SIGTERM, previous_term)
            window.shutdown()
    finally:
        app.close()
