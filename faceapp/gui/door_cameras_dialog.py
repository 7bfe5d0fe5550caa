"""Camera ▸ Door cameras…: the list of this station's door cameras (issue #16).

Each door camera is a source (webcam number, video file, stream address) and the door it guards,
kept in the local ``station_cameras`` setting ("SOURCE=DOOR"). Saving applies it at once: the Live
page shows the grid of the door cameras, or the single camera when the list is empty. Bad input
gets one line in the dialog and nothing is saved.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from faceapp.capture.sources import STREAM_PREFIXES
from faceapp.core.errors import FaceAppError
from faceapp.core.settings import split_door_camera
from faceapp.gui.camera_menu import VIDEO_FILTER
from faceapp.service.app import App
from faceapp.store.attendance import AttendanceStore

log = logging.getLogger(__name__)

KINDS = ("Webcam", "Video file", "Stream URL")
MAX_WEBCAM = 63


def ask_video_path(parent: QWidget | None) -> str:
    """The file dialog for a video (a function, so tests can stand in for it)."""
    path, _ = QFileDialog.getOpenFileName(parent, "Door camera: video file", str(Path.home()), VIDEO_FILTER)
    return path


def check_door_camera(kind: str, source: str, door: str, doors: Sequence[str]) -> str:
    """The "SOURCE=DOOR" text of one door camera, or ValueError with one line saying what is wrong.
    ``doors``: the doors of this data folder (none yet: any name, as `faceapp watch` accepts)."""
    source, door = source.strip(), " ".join(door.split())
    if not source:
        raise ValueError({"Webcam": "Give the webcam's number (0 is the first camera).",
                          "Video file": "Choose the video file.",
                          "Stream URL": "Give the camera's address (rtsp://…)."}.get(kind, "Give the camera."))
    if kind == "Webcam" and not (source.isdigit() and int(source) <= MAX_WEBCAM):
        raise ValueError(f"'{source}' is not a webcam number (0 to {MAX_WEBCAM}).")
    if kind == "Video file" and not Path(source).is_file():
        raise ValueError(f"No video file at {source}.")
    if kind == "Stream URL" and not source.lower().startswith(STREAM_PREFIXES):
        raise ValueError("The address must start with rtsp://, http:// or https://.")
    if not door:
        raise ValueError("Choose the door this camera guards.")
    if doors:
        match = [d for d in doors if d.casefold() == door.casefold()]
        if not match:
            raise ValueError(f"No door called '{door}' (doors: {', '.join(doors)}); add it on the Doors page first.")
        door = match[0]
    text = f"{source}={door}"
    if split_door_camera(text) != (source, door):
        raise ValueError("A door name cannot contain '='.")
    return text


class DoorCamerasDialog(QDialog):
    """Lists the door cameras; add one (source kind, source, door) or remove the selected one."""

    def __init__(self, app: App, parent: QWidget | None = None, cameras: Sequence[str] | None = None,
                 note: str = "") -> None:
        """``cameras``: the list to start from (default: the setting's); ``note``: a line above it."""
        super().__init__(parent)
        self.app = app
        self.setWindowTitle("Door cameras")
        self.doors = [d.name for d in AttendanceStore(app.store).doors()]
        layout = QVBoxLayout(self)
        intro = QLabel("The cameras of this PC, one per door. With any, the Live page shows them all "
                       "(click one to enlarge); with none, the one camera of the Camera menu.", self)
        intro.setWordWrap(True)
        layout.addWidget(intro)
        if note:
            note_label = QLabel(note, self)
            note_label.setWordWrap(True)
            layout.addWidget(note_label)
        self.list = QListWidget(self)
        self.list.setObjectName("doorCameras")
        self.list.setTextElideMode(Qt.TextElideMode.ElideMiddle)   # a long path keeps its file name
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        for text in (app.settings.station_cameras if cameras is None else cameras):
            self._add_item(text)
        layout.addWidget(self.list, 1)
        self.remove_button = QPushButton("&Remove", self)
        self.remove_button.clicked.connect(lambda *_: self.remove_selected())
        self.list.itemSelectionChanged.connect(self._update_buttons)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.remove_button)
        layout.addLayout(row)

        form = QFormLayout()
        self.kind = QComboBox(self)
        self.kind.addItems(KINDS)
        self.kind.currentTextChanged.connect(self._kind_changed)
        form.addRow("Camera:", self.kind)
        self.source = QLineEdit(self)
        self.browse_button = QPushButton("&Browse…", self)
        self.browse_button.clicked.connect(lambda *_: self.browse())
        source_row = QHBoxLayout()
        source_row.addWidget(self.source, 1)
        source_row.addWidget(self.browse_button)
        form.addRow("Source:", source_row)
        self.door = QComboBox(self)
        self.door.setEditable(True)   # before any door exists, a new name; then one of the doors
        self.door.addItems(self.doors or [app.settings.door])
        form.addRow("Door:", self.door)
        self.add_button = QPushButton("&Add", self)
        self.add_button.clicked.connect(lambda *_: self.add())
        form.addRow("", self.add_button)
        layout.addLayout(form)

        self.message = QLabel(self)
        self.message.setObjectName("doorCamerasMessage")
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #c62828;")
        layout.addWidget(self.message)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel,
                                   parent=self)
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self._kind_changed(self.kind.currentText())
        self._update_buttons()
        self.resize(self.sizeHint().expandedTo(QSize(620, 440)))

    def cameras(self) -> tuple[str, ...]:
        """The listed door cameras, "SOURCE=DOOR" each."""
        return tuple(self.list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.list.count()))

    def _add_item(self, text: str) -> None:
        # Shown door first: a long file path must not hide which door a camera guards.
        try:
            source, door = split_door_camera(text)
            shown = f"{door}  ←  {source}"
        except ValueError:
            shown = text
        item = QListWidgetItem(shown)
        item.setData(Qt.ItemDataRole.UserRole, text)
        item.setToolTip(text)
        self.list.addItem(item)

    def _kind_changed(self, kind: str) -> None:
        self.browse_button.setVisible(kind == "Video file")
        self.source.setPlaceholderText({"Webcam": "0 (the first webcam), 1…", "Video file": "a video file (Browse…)",
                                        "Stream URL": "rtsp://camera.example/stream"}[kind])

    def _update_buttons(self) -> None:
        self.remove_button.setEnabled(bool(self.list.selectedItems()))

    def browse(self) -> None:
        path = ask_video_path(self)
        if path:
            self.kind.setCurrentText("Video file")
            self.source.setText(path)

    def _checked(self) -> str:
        return check_door_camera(self.kind.currentText(), self.source.text(), self.door.currentText(), self.doors)

    def add(self) -> bool:
        """Add the camera of the form to the list (not saved yet); False with a line if it is wrong."""
        try:
            text = self._checked()
        except ValueError as exc:
            self.message.setText(str(exc))
            return False
        self._add_item(text)
        self.source.clear()
        self.message.clear()
        return True

    def remove_selected(self) -> None:
        for item in self.list.selectedItems():
            self.list.takeItem(self.list.row(item))

    def save(self) -> bool:
        """Check every door camera, save the list and close; False (a line, nothing saved) if one is
        wrong. A source typed but not added yet is added first (the user meant it)."""
        if self.source.text().strip() and not self.add():
            return False
        for text in self.cameras():
            try:
                source, door = split_door_camera(text)
                if self.doors and not any(d.casefold() == door.casefold() for d in self.doors):
                    raise ValueError(f"No door called '{door}' any more ({text}); remove that camera.")
            except ValueError as exc:
                self.message.setText(str(exc))
                return False
        try:
            self.app.update_settings(station_cameras=self.cameras())
        except FaceAppError as exc:
            self.message.setText(str(exc))
            return False
        self.accept()
        return True


class DoorCamerasAction:
    """Camera ▸ Door cameras… on ``window``: asks the administrator password, opens the dialog,
    and applies a saved list to the Live page at once."""

    def __init__(self, window, app: App) -> None:
        self.window = window
        self.app = app
        self.run_dialog = lambda d: d.exec()   # tests drive the dialog instead
        window.camera_menu.addSeparator()
        self.action = window.camera_menu.addAction("&Door cameras…")
        self.action.setToolTip("The cameras of this PC, one per door, shown together on the Live page")
        self.action.triggered.connect(window.guarded("change the door cameras", self.open))
        window.add_admin_action(self.action)

    def open(self) -> bool:
        """The dialog; True if a new list was saved (and shown)."""
        stations = self.window.stations
        from_command_line = stations.cameras() != self.app.settings.station_cameras
        dialog = DoorCamerasDialog(self.app, self.window, cameras=stations.cameras(), note=(
            "These door cameras were given on the command line; Save keeps them for this PC." if from_command_line
            else ""))
        try:
            saved = self.run_dialog(dialog) == QDialog.DialogCode.Accepted
        finally:
            dialog.deleteLater()
        if saved:
            self.window.stations.apply()
        return saved


def install_door_cameras(window, app: App) -> DoorCamerasAction:
    """Add Camera ▸ Door cameras… to ``window`` (kept as ``window.door_cameras``)."""
    window.door_cameras = DoorCamerasAction(window, app)
    return window.door_cameras
