"""The Camera and Models menus: choose a webcam, video file, folder or stream URL, loop videos,
reconnect; retry loading the models. Every change of camera asks for the administrator password."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QFileDialog, QInputDialog, QMainWindow, QMessageBox

from faceapp.capture.sources import STREAM_PREFIXES

VIDEO_FILTER = "Videos (*.mp4 *.avi *.mov *.mkv *.webm *.m4v *.mpg *.mpeg *.wmv);;All files (*)"


class CameraMenus(QObject):
    """Adds the Camera and Models menus to ``window`` (a MainWindow) and drives ``window.live``."""

    def __init__(self, window: QMainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.live = window.live
        mb = window.menuBar()
        cam = self.camera_menu = mb.addMenu("&Camera")
        self.source_actions = []   # the one camera's sources (off while the door cameras show)
        for text, shortcut, slot in (
            ("&Webcam…", "", self.choose_webcam),
            ("Open &video file…", "Ctrl+O", self.choose_video),
            ("Open &folder of images…", "Ctrl+Shift+O", self.choose_folder),
            ("Open stream &URL…", "Ctrl+U", self.choose_url),
        ):
            action = cam.addAction(text)
            if shortcut:
                action.setShortcut(QKeySequence(shortcut))
            action.triggered.connect(window.guarded("change the camera", slot))
            window.add_admin_action(action)
            self.source_actions.append(action)
        cam.addSeparator()
        self.loop_action = cam.addAction("&Loop video")
        self.loop_action.setCheckable(True)
        self.loop_action.setChecked(self.live.loop)
        self.loop_action.triggered.connect(self._on_loop_triggered)
        window.add_admin_action(self.loop_action)
        self.restart_action = cam.addAction("&Restart / reconnect")
        self.restart_action.setShortcut(QKeySequence("F5"))
        self.restart_action.triggered.connect(self.live.restart_camera)
        window.add_admin_action(self.restart_action)

        self.models_menu = mb.addMenu("&Models")
        self.retry_models_action = self.models_menu.addAction("&Retry loading models")
        self.retry_models_action.triggered.connect(self.live.retry_models)
        window.add_admin_action(self.retry_models_action)
        self.live.modelsStateChanged.connect(lambda *_: self.sync_retry_action())
        window.receptionChanged.connect(lambda *_: self.sync_retry_action())
        self.sync_retry_action()

    def sync_retry_action(self) -> None:
        self.retry_models_action.setEnabled(self.live.models_state == "failed" and not self.window.reception)

    def set_loop(self, loop: bool) -> None:
        """Loop videos and image folders; remembered in the settings."""
        self.live.set_loop(loop)
        if self.loop_action.isChecked() != self.live.loop:
            self.loop_action.setChecked(self.live.loop)

    def _on_loop_triggered(self, checked: bool) -> None:
        if self.window.admin_allowed("change the camera settings"):
            self.set_loop(checked)
        else:
            self.loop_action.setChecked(self.live.loop)

    def choose_webcam(self) -> None:
        camera = self.live.camera
        current = camera if isinstance(camera, str) and camera.isdigit() else "0"
        index, ok = QInputDialog.getInt(self.window, "Webcam", "Webcam number (0 is the first camera):",
                                        int(current), 0, 63)
        if ok:
            self.live.set_camera(str(index), remember=True)

    def choose_video(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.window, "Open video file", str(Path.home()), VIDEO_FILTER)
        if path:
            self.live.set_camera(path, remember=True)

    def choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self.window, "Open folder of images", str(Path.home()))
        if path:
            self.live.set_camera(path, remember=True)

    def choose_url(self) -> None:
        url, ok = QInputDialog.getText(self.window, "Camera stream", "RTSP or HTTP address of the camera:",
                                       text="rtsp://")
        url = url.strip()
        if not ok or not url:
            return
        if not url.lower().startswith(STREAM_PREFIXES):
            QMessageBox.warning(self.window, "Camera stream", "The address must start with rtsp://, http:// or https://")
            return
        self.live.set_camera(url, remember=True)
