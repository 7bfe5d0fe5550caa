"""The enrollment dialog: details, shots from the camera or photo files, quality verdicts,
duplicate and look-alike warnings, then one transaction.

Face analysis runs in one worker thread per dialog (the engine handles one call at a time
per caller); the dialog only ever touches results it receives through signals.
"""

from __future__ import annotations

import itertools
import logging
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from faceapp.core.errors import FaceAppError, ModelError
from faceapp.core.matcher import Gallery
from faceapp.gui.admin import admin_allowed
from faceapp.gui.group_list import GroupList
from faceapp.gui.qt_env import emit
from faceapp.gui.widgets import BAD_COLOUR, OK_COLOUR, TaskThread, ask_choice, bgr_pixmap, thumbnail_icon
from faceapp.service import enroll
from faceapp.service.app import App
from faceapp.service.enroll import Checked, PoseVariety, Shot

log = logging.getLogger(__name__)

FrameProvider = Callable[[], object]

AUTO_INTERVAL_MS = 333     # at most ~3 camera frames a second are analysed in Auto mode
AUTO_TIMEOUT_S = 90.0
PREVIEW_INTERVAL_MS = 100
THUMB = 96
PHOTO_FILTER = "Images (*.jpg *.jpeg *.png *.bmp *.webp *.tif *.tiff *.gif);;All files (*)"


def frame_image(item: object) -> np.ndarray | None:
    """The BGR array of what a frame provider returned: an array, a capture Frame, or None."""
    if item is None:
        return None
    image = getattr(item, "image", item)
    return image if isinstance(image, np.ndarray) and image.size else None


@dataclass(frozen=True, eq=False)
class Analysed:
    """A picture's verdict as the worker hands it to the dialog."""

    token: int
    kind: str                 # capture | auto | file
    checked: Checked | None
    preview: np.ndarray | None  # small picture to show when no face crop exists
    error: str = ""           # the engine could not run (models missing...)


class AnalysisThread(TaskThread):
    """One worker thread that checks pictures in the order they are submitted; each verdict
    is published (an :class:`Analysed`) as soon as it is ready.

    As for any TaskThread, :meth:`stop` asks and :meth:`finish` asks and waits."""

    def __init__(self, app: App) -> None:
        # No parent: the dialog may be deleted while a picture is still being analysed.
        super().__init__(lambda _task: self._serve())
        self._app = app
        self._jobs: queue.Queue = queue.Queue()
        self._pending = 0

    @property
    def pending(self) -> int:
        """Pictures submitted whose result has not been delivered yet (GUI thread only)."""
        return self._pending

    def submit(self, token: int, kind: str, source: str, image: np.ndarray | None = None,
               path: str | None = None) -> None:
        self._pending += 1
        self._jobs.put((token, kind, source, image, path))

    def delivered(self) -> None:
        self._pending = max(0, self._pending - 1)

    def stop(self, *_args) -> None:
        """Drop queued pictures; the thread ends after the current one (never blocks)."""
        super().stop()
        self._jobs.put(None)  # wakes the thread if it is waiting for a picture

    def _serve(self) -> None:
        while not self.stopped():
            job = self._jobs.get()
            if job is None or self.stopped():
                break
            self.publish(self._analyse(*job))

    def _analyse(self, token: int, kind: str, source: str, image: np.ndarray | None,
                 path: str | None) -> Analysed:
        try:
            engine = self._app.engine
            if path is not None:
                checked = enroll.inspect_file(engine, path)
                preview = None
                if checked.shot is None:
                    preview = _preview_of_file(path)
            else:
                assert image is not None
                checked = enroll.inspect_camera_shot(self._app, image, source)
                preview = _shrink(image) if checked.shot is None else None
            return Analysed(token, kind, checked, preview)
        except ModelError as exc:
            return Analysed(token, kind, None, None, str(exc))
        except Exception as exc:  # keep the worker alive whatever one picture does
            log.exception("analysis of %s failed", source)
            return Analysed(token, kind, Checked(source, None, f"could not be analysed ({exc})"), None)


def _shrink(image: np.ndarray, side: int = 160) -> np.ndarray:
    import cv2

    h, w = image.shape[:2]
    scale = side / max(h, w)
    if scale >= 1:
        return image.copy()
    return cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def _preview_of_file(path: str) -> np.ndarray | None:
    from faceapp.capture.images import load_image

    try:
        return _shrink(load_image(path))
    except FaceAppError:
        return None


@dataclass(eq=False)
class ShotEntry:
    """A shot in the list: what was checked and where it came from."""

    key: int
    kind: str
    checked: Checked

    @property
    def shot(self) -> Shot | None:
        return self.checked.shot

    @property
    def ok(self) -> bool:
        return self.checked.ok


class EnrollDialog(QDialog):
    """Enroll a new person, or (with ``person_id``) add photos to an enrolled one."""

    enrolled = Signal(int)  # person id, after a successful save

    def __init__(self, app: App, frame_provider: FrameProvider | None = None, parent: QWidget | None = None,
                 person_id: int | None = None) -> None:
        super().__init__(parent)
        self.app = app
        self.frame_provider = frame_provider
        self.person = app.store.get_person(person_id) if person_id is not None else None
        self.person_id: int | None = None  # set once saved
        self.saved_photo_ids: list[int] = []
        self._entries: dict[int, ShotEntry] = {}
        self._tokens = itertools.count(1)
        self._camera_count = 0
        self._worker: AnalysisThread | None = None
        self._picker: PoseVariety | None = None
        self._auto_started = 0.0
        self._engine_error = ""
        self._batch: list[Checked] = []  # verdicts since the worker was last idle

        self.setWindowTitle("Add photos" if self.person else "Enroll a person")
        self.setMinimumSize(720, 560)
        self._build()
        self._auto_timer = QTimer(self)
        self._auto_timer.setInterval(AUTO_INTERVAL_MS)
        self._auto_timer.timeout.connect(self._auto_tick)
        self._preview_timer = QTimer(self)
        self._preview_timer.setInterval(PREVIEW_INTERVAL_MS)
        self._preview_timer.timeout.connect(self._update_preview)
        if self.frame_provider is not None:
            self._preview_timer.start()
        self._update_state()

    # -- construction -------------------------------------------------------------
    def _build(self) -> None:
        layout = QVBoxLayout(self)

        if self.person is not None:
            title = QLabel(f"Add photos to <b>{_html(self.person.name)}</b>")
        else:
            title = QLabel("<b>New person</b> — fill in the details, then take or add a few photos.")
        layout.addWidget(title)

        form = QFormLayout()
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("Full name (required)")
        self.name_edit.setMaxLength(200)
        self.employee_edit = QLineEdit()
        self.employee_edit.setPlaceholderText("optional")
        self.department_edit = QLineEdit()
        self.department_edit.setPlaceholderText("optional")
        form.addRow("&Name:", self.name_edit)
        form.addRow("&Employee ID:", self.employee_edit)
        form.addRow("&Department:", self.department_edit)
        self.groups = GroupList(self.app, None, self) if self.person is None else None
        if self.groups is not None and self.groups.count():
            form.addRow("&Groups:", self.groups)
        if self.person is not None:
            self.name_edit.setText(self.person.name)
            self.employee_edit.setText(self.person.employee_id or "")
            self.department_edit.setText(self.person.department or "")
            for edit in (self.name_edit, self.employee_edit, self.department_edit):
                edit.setReadOnly(True)
        self.name_edit.textChanged.connect(self._update_state)

        top = QHBoxLayout()
        top.addLayout(form, 1)
        self.preview = QLabel()
        self.preview.setObjectName("enrollPreview")
        self.preview.setFixedSize(256, 144)
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setStyleSheet("background: #1d2733; color: #9fb0c0;")
        self.preview.setText("no camera" if self.frame_provider is None else "waiting for the camera…")
        top.addWidget(self.preview)
        layout.addLayout(top)

        buttons = QHBoxLayout()
        self.capture_button = QPushButton("&Capture")
        self.capture_button.setToolTip("Take the current camera picture (Space)")
        self.capture_button.clicked.connect(self.capture)
        self.auto_button = QPushButton("&Auto")
        self.auto_button.setCheckable(True)
        self.auto_button.setToolTip("Take several good pictures by itself; ask the person to turn their head slowly")
        self.auto_button.toggled.connect(self._on_auto_toggled)
        self.auto_count = QSpinBox()
        self.auto_count.setRange(1, 20)
        self.auto_count.setValue(5)
        self.auto_count.setSuffix(" shots")
        self.files_button = QPushButton("Add photo &files…")
        self.files_button.setToolTip("Photos already on file, e.g. the ID-badge photo")
        self.files_button.clicked.connect(self.choose_files)
        for w in (self.capture_button, self.auto_button, self.auto_count):
            w.setEnabled(self.frame_provider is not None)
        buttons.addWidget(self.capture_button)
        buttons.addWidget(self.auto_button)
        buttons.addWidget(self.auto_count)
        buttons.addSpacing(16)
        buttons.addWidget(self.files_button)
        buttons.addStretch(1)
        layout.addLayout(buttons)
        QShortcut(QKeySequence(Qt.Key.Key_Space), self, activated=self.capture)

        self.status = QLabel()
        self.status.setObjectName("enrollStatus")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)

        self.shot_list = QListWidget()
        # One row per shot: the whole file name, the whole verdict and the quality numbers are
        # read in the row (an icon grid cut them to "Colin_Powell_000" and "3 faces of …").
        self.shot_list.setViewMode(QListView.ViewMode.ListMode)
        self.shot_list.setIconSize(QSize(THUMB, THUMB))
        self.shot_list.setResizeMode(QListView.ResizeMode.Adjust)
        self.shot_list.setMovement(QListView.Movement.Static)
        self.shot_list.setWordWrap(True)
        self.shot_list.setTextElideMode(Qt.TextElideMode.ElideNone)
        self.shot_list.setSpacing(2)
        self.shot_list.setSelectionMode(QListWidget.SelectionMode.ExtendedSelection)
        self.shot_list.itemSelectionChanged.connect(self._update_state)
        layout.addWidget(self.shot_list, 1)
        QShortcut(QKeySequence(QKeySequence.StandardKey.Delete), self.shot_list,
                  activated=self.remove_selected)

        below = QHBoxLayout()
        self.remove_button = QPushButton("&Remove selected")
        self.remove_button.clicked.connect(self.remove_selected)
        self.summary = QLabel()
        below.addWidget(self.remove_button)
        below.addWidget(self.summary, 1)
        layout.addLayout(below)

        self.button_box = QDialogButtonBox(QDialogButtonBox.StandardButton.Save
                                           | QDialogButtonBox.StandardButton.Cancel)
        self.save_button = self.button_box.button(QDialogButtonBox.StandardButton.Save)
        self.save_button.setText("&Save person" if self.person is None else "&Save photos")
        self.button_box.accepted.connect(self.save)
        self.button_box.rejected.connect(self.reject)
        layout.addWidget(self.button_box)

    # -- shots --------------------------------------------------------------------
    @property
    def entries(self) -> list[ShotEntry]:
        """Shots in list order."""
        out = []
        for i in range(self.shot_list.count()):
            key = self.shot_list.item(i).data(Qt.ItemDataRole.UserRole)
            if key in self._entries:
                out.append(self._entries[key])
        return out

    def accepted_shots(self) -> list[Shot]:
        return [e.shot for e in self.entries if e.ok and e.shot is not None]

    @property
    def busy(self) -> bool:
        """Pictures are still being analysed."""
        return self._worker is not None and self._worker.pending > 0

    def _ensure_worker(self) -> AnalysisThread:
        if self._worker is None:
            self._worker = AnalysisThread(self.app)
            self._worker.published.connect(self._on_analysed)
            # Closed without done() (deleted or garbage-collected): the worker still ends.
            self.destroyed.connect(self._worker.stop)
            self._worker.start()
        return self._worker

    def _newest_image(self, report_errors: bool = True) -> np.ndarray | None:
        """The provider's newest picture as it is (not copied), or None."""
        if self.frame_provider is None:
            return None
        try:
            return frame_image(self.frame_provider())
        except Exception:  # a misbehaving provider must not take the dialog down
            if report_errors:
                log.exception("frame provider failed")
            return None

    def _grab(self) -> np.ndarray | None:
        # A copy: the worker thread reads it while the provider may reuse its array.
        image = self._newest_image()
        return None if image is None else image.copy()

    def capture(self) -> None:
        """Analyse the newest camera picture and show it with its verdict."""
        if self.frame_provider is None or self.auto_button.isChecked():
            return
        image = self._grab()
        if image is None:
            self._set_status("No camera picture yet: is the camera running?", error=True)
            return
        self._camera_count += 1
        self._ensure_worker().submit(next(self._tokens), "capture", f"camera {self._camera_count}", image=image)
        self._set_status("Checking the picture…")
        self._update_state()

    def add_images(self, images: list[np.ndarray], label: str) -> None:
        """Analyse pictures handed over by the caller (an unknown face's snapshot and best shots)
        as the first photos."""
        for i, image in enumerate(images, 1):
            self._ensure_worker().submit(next(self._tokens), "capture", f"{label} {i}", image=image)
        if images:
            self._set_status(f"Checking {len(images)} picture(s) of the unknown face…")
        self._update_state()

    def add_files(self, paths: list[str | Path]) -> None:
        """Analyse photo files (in the worker) and add them to the list."""
        worker = self._ensure_worker()
        for p in paths:
            worker.submit(next(self._tokens), "file", str(p), path=str(p))
        if paths:
            self._set_status(f"Checking {len(paths)} photo(s)…")
        self._update_state()

    def choose_files(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Add photos", "", PHOTO_FILTER)
        self.add_files(list(paths))

    def _on_analysed(self, result: Analysed) -> None:
        if self._worker is not None:
            self._worker.delivered()
        if result.error:
            self._engine_error = result.error
            self.auto_button.setChecked(False)
            self._set_status(f"The face models are not available: {result.error}", error=True)
            self._update_state()
            return
        assert result.checked is not None
        if result.kind == "auto":
            self._on_auto_result(result)
        else:
            self._add_entry(result)
            self._batch.append(result.checked)
            if not self.busy:
                self._report_batch()
        self._update_state()

    def _report_batch(self) -> None:
        batch, self._batch = self._batch, []
        if len(batch) == 1:
            c = batch[0]
            name = Path(c.source).name if c.shot is None or Path(c.source).suffix else c.source
            self._set_status(f"{name}: {c.verdict}", error=not c.ok)
            return
        good = sum(c.ok for c in batch)
        text = f"Checked {len(batch)} pictures: {good} accepted, {len(batch) - good} rejected."
        if good < len(batch):
            text += " The reasons are in the list below."
        self._set_status(text, error=good == 0)

    def _add_entry(self, result: Analysed) -> ShotEntry:
        assert result.checked is not None
        entry = ShotEntry(result.token, result.kind, result.checked)
        self._entries[entry.key] = entry
        c = entry.checked
        picture = c.shot.face.crop if c.shot is not None else result.preview
        item = QListWidgetItem(row_text(self._label(entry), c))
        if picture is not None:
            item.setIcon(thumbnail_icon(picture, THUMB, OK_COLOUR if c.ok else BAD_COLOUR))
        item.setData(Qt.ItemDataRole.UserRole, entry.key)
        item.setToolTip(_tooltip(c))
        if not c.ok:
            item.setForeground(BAD_COLOUR)
        self.shot_list.addItem(item)
        self.shot_list.scrollToItem(item)
        return entry

    def remove_selected(self) -> None:
        """Drop the selected shots (nothing is stored before Save)."""
        removed = []
        for item in self.shot_list.selectedItems():
            entry = self._entries.pop(item.data(Qt.ItemDataRole.UserRole), None)
            if entry is not None:
                removed.append(self._label(entry))
            self.shot_list.takeItem(self.shot_list.row(item))
        if removed:  # the status must not go on about a shot that is gone
            self._set_status(f"Removed {removed[0]}." if len(removed) == 1 else f"Removed {len(removed)} shots.")
        if self._picker is not None:
            self._picker.reset(self.accepted_shots())
        self._update_state()

    # -- auto mode ------------------------------------------------------------------
    def start_auto(self, count: int | None = None) -> None:
        if count is not None:
            self.auto_count.setValue(count)
        self.auto_button.setChecked(True)

    def stop_auto(self) -> None:
        self.auto_button.setChecked(False)

    @property
    def auto_running(self) -> bool:
        return self._auto_timer.isActive()

    def _on_auto_toggled(self, on: bool) -> None:
        if on and self.frame_provider is not None:
            seed = self.accepted_shots()
            self._picker = PoseVariety(target=len(seed) + self.auto_count.value(),
                                       same_person_threshold=self.app.threshold)
            self._picker.reset(seed)
            self._auto_started = time.monotonic()
            self.auto_button.setText("Stop &auto")
            self._set_status("Auto: look at the camera and turn your head slowly a little left and right.")
            self._auto_timer.start()
        else:
            self._auto_timer.stop()
            self.auto_button.setText("&Auto")
            if self._picker is not None and not self._picker.done:
                self._set_status(f"Auto stopped: {self._auto_taken()} shot(s) taken.")
        self._update_state()

    def _auto_taken(self) -> int:
        return sum(1 for e in self.entries if e.kind == "auto")

    def _auto_tick(self) -> None:
        if self.busy:
            return  # one picture at a time: the newest is taken on the next tick
        if time.monotonic() - self._auto_started > AUTO_TIMEOUT_S:
            self.stop_auto()
            self._set_status("Auto stopped: no more good pictures came (light, distance, one person only?).",
                             error=True)
            return
        image = self._grab()
        if image is None:
            self._set_status("Auto: waiting for a camera picture…")
            return
        self._ensure_worker().submit(next(self._tokens), "auto", "auto", image=image)

    def _on_auto_result(self, result: Analysed) -> None:
        picker = self._picker
        if picker is None or not self.auto_button.isChecked():
            return
        c = result.checked
        assert c is not None
        if c.shot is None:
            self._set_status(f"Auto: {c.error}")
            return
        taken, hint = picker.offer(c.shot)
        if taken:
            self._camera_count += 1
            named = Analysed(result.token, "auto", Checked(f"camera {self._camera_count}", c.shot), None)
            self._add_entry(named)
            self._auto_started = time.monotonic()
        want = self.auto_count.value()
        got = len(picker.taken) - (picker.target - want)
        if picker.done:
            self.stop_auto()
            self._set_status(f"Auto: done, {want} shot(s) taken.")
        else:
            self._set_status(f"Auto: {got}/{want} — {hint}" if hint else f"Auto: {got}/{want}")

    # -- camera preview ---------------------------------------------------------------
    def _update_preview(self) -> None:
        # Ten times a second: a failing provider is logged when a shot is taken, not here.
        image = self._newest_image(report_errors=False)
        if image is None:
            return
        self.preview.setPixmap(bgr_pixmap(image).scaled(self.preview.size(), Qt.AspectRatioMode.KeepAspectRatio,
                                                        Qt.TransformationMode.SmoothTransformation))

    # -- state ------------------------------------------------------------------------
    def _set_status(self, text: str, error: bool = False) -> None:
        self.status.setText(text)
        self.status.setStyleSheet(f"color: {BAD_COLOUR.name()};" if error else "")

    def _update_state(self) -> None:
        entries = self.entries
        good = sum(1 for e in entries if e.ok)
        bad = len(entries) - good
        text = f"{good} accepted"
        if bad:
            text += f", {bad} rejected (never stored)"
        if self.busy:
            text += " — checking…"
        self.summary.setText(text)
        has_name = bool(self.name_edit.text().strip())
        self.save_button.setEnabled(good > 0 and has_name and not self.busy and not self.auto_running)
        self.remove_button.setEnabled(bool(self.shot_list.selectedItems()))
        cam = self.frame_provider is not None and not self._engine_error
        self.capture_button.setEnabled(cam and not self.auto_running)
        self.auto_button.setEnabled(cam)
        self.auto_count.setEnabled(cam and not self.auto_running)

    # -- saving -----------------------------------------------------------------------
    def save(self) -> bool:
        """Check for duplicates and look-alikes, then store everything in one transaction.
        Returns True if something was saved (the dialog then closes)."""
        if self.busy or self.auto_running:
            return False
        # The unlock may have run out while the shots were taken.
        if not admin_allowed(self, "enroll a person" if self.person is None else f"add photos of {self.person.name}"):
            self._set_status("Not saved: the administrator password is needed.", error=True)
            return False
        entries = [e for e in self.entries if e.ok and e.shot is not None]
        shots = [e.shot for e in entries if e.shot is not None]
        if not shots:
            self._set_status("Take or add at least one photo that passes the checks.", error=True)
            return False
        emb = enroll.shot_embeddings(shots)
        threshold = self.app.threshold
        outliers = enroll.inconsistent_shots(emb, threshold)
        if outliers:
            names = ", ".join(self._label(entries[i]) for i in outliers)
            choice = ask_choice(
                self, "Different people?",
                f"These shots do not look like the same person as the others: {names}.",
                ["Save anyway", "Go back"], informative="Remove the shots of anyone else before saving.",
                default=1)
            if choice != 0:
                self._select([entries[i].key for i in outliers])
                return False
        try:
            gallery = enroll.enrolled_gallery(self.app)
            if self.person is not None:
                return self._save_to_existing(shots, emb, gallery)
            return self._save_new(shots, emb, gallery)
        except FaceAppError as exc:
            QMessageBox.warning(self, "Not saved", str(exc))
            return False

    def _save_new(self, shots: list[Shot], emb: np.ndarray, gallery: Gallery) -> bool:
        name = " ".join(self.name_edit.text().split())
        if not name:
            self._set_status("Enter the person's name.", error=True)
            self.name_edit.setFocus()
            return False
        same_name = [p for p in self.app.store.list_people(search=name) if p.name.casefold() == name.casefold()]
        if same_name:
            other = same_name[0]
            choice = ask_choice(self, "Name already enrolled",
                                f"A person named '{other.name}' is already enrolled.",
                                [f"Add these photos to {other.name}", "Go back"], default=1)
            if choice == 0:
                return self._add_to(other.id, other.name, shots, gallery)
            return False
        dup = enroll.find_duplicates(self.app, emb, gallery=gallery)
        threshold = self.app.threshold
        if dup.same_person is not None:
            m = dup.same_person
            choice = ask_choice(
                self, "Already enrolled?",
                f"These photos look like {m.name}, who is already enrolled "
                f"(distance {m.distance:.2f}, threshold {threshold:.2f}).",
                [f"Add these photos to {m.name}", "Enroll as a new person anyway", "Cancel"],
                informative="Enrolling the same person twice splits their photos and their attendance.",
                default=0)
            if choice == 0:
                assert m.person_id is not None
                return self._add_to(m.person_id, m.name or "this person", shots, gallery)
            if choice != 1:
                return False
        elif dup.lookalike is not None:
            m = dup.lookalike
            choice = ask_choice(
                self, "Look-alike",
                f"{m.name} looks similar to this person (distance {m.distance:.2f}; "
                f"recognised at {threshold:.2f} or less).",
                ["Enroll", "Cancel"],
                informative="Make sure this is a different person; take a few more shots if the "
                            "live window mixes them up.", default=0)
            if choice != 0:
                return False
        pid = enroll.save_person(self.app, name, shots, self.employee_edit.text() or None,
                                 self.department_edit.text() or None, allow_duplicate=True)
        if self.groups is not None:
            self.groups.apply(pid)
        return self._finish(pid, [])

    def _save_to_existing(self, shots: list[Shot], emb: np.ndarray, gallery: Gallery) -> bool:
        assert self.person is not None
        threshold = self.app.threshold
        own = enroll.distance_to_person(self.app, self.person.id, emb, gallery)
        if own is not None and own > threshold:
            choice = ask_choice(
                self, "Not the same person?",
                f"These photos do not look like the photos of {self.person.name} already enrolled "
                f"(distance {own:.2f}, threshold {threshold:.2f}).",
                ["Add anyway", "Cancel"], default=1)
            if choice != 0:
                return False
        dup = enroll.find_duplicates(self.app, emb, exclude_person=self.person.id, gallery=gallery)
        if dup.same_person is not None and (own is None or dup.same_person.distance < own):
            m = dup.same_person
            choice = ask_choice(
                self, "Someone else?",
                f"These photos look more like {m.name} (distance {m.distance:.2f}) than like "
                f"{self.person.name}.", ["Add anyway", "Cancel"], default=1)
            if choice != 0:
                return False
        return self._add_to(self.person.id, self.person.name, shots, gallery)

    def _add_to(self, person_id: int, name: str, shots: list[Shot], gallery: Gallery) -> bool:
        ids, _skipped = enroll.add_new_shots(self.app, person_id, shots, gallery)
        if not ids:
            self._set_status(f"{name} already has these pictures: nothing to add.", error=True)
            return False
        return self._finish(person_id, ids)

    def _finish(self, person_id: int, photo_ids: list[int]) -> bool:
        self.person_id = person_id
        self.saved_photo_ids = photo_ids
        emit(self.enrolled, person_id)
        self.accept()
        return True

    def _label(self, entry: ShotEntry) -> str:
        return Path(entry.checked.source).name if entry.kind == "file" else entry.checked.source

    def _select(self, keys: list[int]) -> None:
        self.shot_list.clearSelection()
        for i in range(self.shot_list.count()):
            item = self.shot_list.item(i)
            if item.data(Qt.ItemDataRole.UserRole) in keys:
                item.setSelected(True)

    # -- closing ----------------------------------------------------------------------
    def done(self, result: int) -> None:
        self._auto_timer.stop()
        self._preview_timer.stop()
        if self._worker is not None:
            # A model load cannot be interrupted; keep_alive holds the thread if it outlasts the wait.
            self._worker.finish()
            self._worker = None
        super().done(result)


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def quality_text(c: Checked) -> str:
    """The measured quality of a checked shot, one line ('' when no face was measured)."""
    if c.shot is None:
        return ""
    q = c.shot.quality
    return (f"face {q.face_px:.0f} px · detector {q.det_score:.2f} · sharpness {q.sharpness:.0f} · "
            f"brightness {q.brightness:.0f} · turn {q.yaw:+.2f} · tilt {q.roll_deg:+.0f}°")


def row_text(label: str, c: Checked) -> str:
    """A shot's row: its whole name, the whole verdict, the quality numbers and any note."""
    lines = [f"{label} — " + ("✓ accepted" if c.ok else "✗ rejected: " + "; ".join(c.reasons))]
    quality = quality_text(c)
    if quality:
        lines.append(quality)
    if c.shot is not None and c.shot.note:
        lines.append(c.shot.note)
    return "\n".join(lines)


def _tooltip(c: Checked) -> str:
    lines = [c.source, "Accepted" if c.ok else "Rejected: " + "; ".join(c.reasons)]
    if c.shot is not None:
        lines.append(quality_text(c))
        if c.shot.note:
            lines.append(c.shot.note)
    return "\n".join(lines)


def open_enroll_dialog(app: App, frame_provider: FrameProvider | None = None,
                       parent: QWidget | None = None, person_id: int | None = None) -> EnrollDialog:
    """Show the enrollment dialog without blocking (the live view keeps running behind it).

    The dialog deletes itself when closed; connect to ``enrolled`` for the new person's id."""
    dialog = EnrollDialog(app, frame_provider, parent, person_id=person_id)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.open()
    return dialog
