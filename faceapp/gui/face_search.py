"""Face actions on the Entry log: "Find this face" on an entry, search by a dropped (or chosen)
photo, and "Wrong person…" to correct a match. Results open in a window of their own with the
snapshot of every entry found, nearest first.

Searching a photo runs the detector and recogniser, and correcting may run the quality gate on a
snapshot, so both run in a background thread; "Find this face" uses the stored embedding.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, QSize, Qt
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QRadioButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from faceapp.capture.images import IMAGE_SUFFIXES
from faceapp.core.errors import FaceAppError
from faceapp.gui import admin
from faceapp.gui.admin import admin_allowed
from faceapp.gui.visitors_page import local_time, snapshot_icon
from faceapp.gui.widgets import Index, RecordTableModel, TaskThread
from faceapp.service import visitors
from faceapp.service.app import App
from faceapp.service.visitors import SearchHit
from faceapp.store.attendance import EntryRecord

log = logging.getLogger(__name__)

THUMB_PX = 64


class HitTableModel(RecordTableModel):
    COLUMNS = ("Snapshot", "Time", "Door", "Person", "Distance")

    def __init__(self, app: App, parent=None) -> None:
        super().__init__(parent)
        self.app = app
        self._icons: dict[int, QIcon] = {}

    def set_hits(self, hits: list[SearchHit]) -> None:
        self._reset(hits)

    def hit(self, row: int) -> SearchHit | None:
        return self.row_record(row)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole):
        h = self.hit(index.row())
        if h is None:
            return None
        e, col = h.entry, index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            who = e.person_name or (f"visitor {h.visitor_id}" if h.visitor_id else "unknown")
            return (f"#{e.id}", local_time(e.time), e.door, f"{who} ({e.decision})", f"{h.distance:.2f}")[col]
        if role == Qt.ItemDataRole.DecorationRole and col == 0:
            if e.id not in self._icons:
                self._icons[e.id] = snapshot_icon(self.app, e.id if e.has_snapshot else None, THUMB_PX)
            return self._icons[e.id]
        if role == Qt.ItemDataRole.TextAlignmentRole and col == 4:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


class FaceSearchDialog(QDialog):
    """Entries in which one face appears, nearest first."""

    def __init__(self, app: App, title: str, hits: list[SearchHit], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.model = HitTableModel(app, self)
        self.model.set_hits(hits)
        self.table = QTableView(self)
        self.table.setModel(self.model)
        self.table.setIconSize(QSize(THUMB_PX, THUMB_PX))
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(THUMB_PX + 6)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        threshold = app.threshold
        summary = (f"{len(hits)} entr{'y' if len(hits) == 1 else 'ies'} with this face (distance at most "
                   f"{threshold:.2f}), nearest first" if hits else
                   f"This face is in no logged entry (nothing within distance {threshold:.2f}).")
        self.summary = QLabel(summary, self)
        self.summary.setWordWrap(True)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        close.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)
        layout.addWidget(close)
        self.resize(720, 480)


class WrongPersonDialog(QDialog):
    """Who was it really: one of the enrolled people, or someone else (not the person named)."""

    def __init__(self, entry: EntryRecord, people: list[tuple[int, str]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        named = entry.person_name or "unknown"
        self.setWindowTitle(f"Wrong person on entry {entry.id}")
        self.person_radio = QRadioButton("It was:", self)
        self.person_box = QComboBox(self)
        for pid, name in people:
            if pid != entry.person_id:
                self.person_box.addItem(name, pid)
        self.other_radio = QRadioButton(f"Someone else (not {named})", self)
        self.other_radio.setEnabled(entry.person_id is not None)
        group = QButtonGroup(self)
        group.addButton(self.person_radio)
        group.addButton(self.other_radio)
        (self.other_radio if entry.person_id is not None else self.person_radio).setChecked(True)
        note = QLabel(f"Logged as {named}. Naming the right person offers the snapshot as a new photo of them "
                      f"(through the quality check). \"Someone else\" teaches the matcher that this face is not "
                      f"{named}.", self)
        note.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(self.person_radio)
        row.addWidget(self.person_box, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Correct")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(note)
        layout.addLayout(row)
        layout.addWidget(self.other_radio)
        layout.addWidget(buttons)

    def choice(self) -> tuple[int | None, bool]:
        """(person id, not_person)."""
        if self.other_radio.isChecked():
            return None, True
        return self.person_box.currentData(), False


class EntryFaceActions(QObject):
    """The buttons under the Entry log and the photo drop onto it."""

    def __init__(self, app: App, page: QWidget) -> None:
        super().__init__(page)
        self.app = app
        self.page = page
        self._task: TaskThread | None = None
        self.dialogs: list[FaceSearchDialog] = []
        # Replaceable in tests.
        self.ask_photo: Callable[[], str | None] = self._ask_photo
        self.ask_correction: Callable[[EntryRecord], tuple[int | None, bool] | None] = self._ask_correction
        self.show_error: Callable[[str], None] = lambda m: admin.show_message(page, "faceapp", m, error=True)
        self.show_results: Callable[[str, list[SearchHit]], None] = self._show_results

        bar = QWidget(page)
        self.find_button = QPushButton("Find this face", bar)
        self.find_button.setToolTip("Every logged entry with the face of the selected entry")
        self.find_button.clicked.connect(lambda: self.find_selected())
        self.photo_button = QPushButton("Search by photo…", bar)
        self.photo_button.setToolTip("Every logged entry with the face of a photo (or drop a photo on this page)")
        self.photo_button.clicked.connect(lambda: self.search_photo())
        self.wrong_button = QPushButton("Wrong person…", bar)
        self.wrong_button.setToolTip("Correct the person of the selected entry (administrator)")
        self.wrong_button.clicked.connect(lambda: self.correct_selected())
        self.status = QLabel(bar)
        row = QHBoxLayout(bar)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.find_button)
        row.addWidget(self.wrong_button)
        row.addWidget(self.photo_button)
        row.addWidget(self.status, 1)
        page.layout().addWidget(bar)
        self.bar = bar
        page.table.selectionModel().currentRowChanged.connect(lambda *_: self.sync())
        page.table.model().modelReset.connect(self.sync)
        page.setAcceptDrops(True)
        page.installEventFilter(self)
        self.sync()

    def sync(self) -> None:
        e = self.page.selected_entry()
        busy = self._task is not None and self._task.isRunning()
        self.find_button.setEnabled(e is not None and not busy)
        self.wrong_button.setEnabled(e is not None and not busy)
        self.photo_button.setEnabled(not busy)

    # -- search ---------------------------------------------------------------------------------------
    def find_selected(self) -> list[SearchHit] | None:
        e = self.page.selected_entry()
        if e is None:
            return None
        try:
            hits = visitors.search_entry(self.app, e.id)
        except FaceAppError as exc:
            self.show_error(str(exc))
            return None
        self.show_results(f"Entries with the face of entry {e.id}", hits)
        return hits

    def search_photo(self, path: str | Path | None = None) -> TaskThread | None:
        """Search the face of a photo (asked for when not given) in the background."""
        if path is None:
            path = self.ask_photo()
            if not path:
                return None
        path = Path(path)
        self.status.setText(f"Searching the face of {path.name}…")
        return self._run(lambda _t: visitors.search_file(self.app, path),
                         lambda hits: self.show_results(f"Entries with the face of {path.name}", hits))

    def _ask_photo(self) -> str | None:
        suffixes = " ".join(f"*{s}" for s in sorted(IMAGE_SUFFIXES))
        path, _ = QFileDialog.getOpenFileName(self.page, "Search by photo", str(Path.home()),
                                              f"Images ({suffixes});;All files (*)")
        return path or None

    def _show_results(self, title: str, hits: list[SearchHit]) -> None:
        dialog = FaceSearchDialog(self.app, title, hits, self.page)
        self.dialogs = [d for d in self.dialogs if d.isVisible()] + [dialog]
        dialog.show()

    # -- correction ----------------------------------------------------------------------------------
    def _ask_correction(self, entry: EntryRecord) -> tuple[int | None, bool] | None:
        people = [(p.id, p.name) for p in self.app.store.list_people()]
        dialog = WrongPersonDialog(entry, people, self.page)
        return dialog.choice() if dialog.exec() == QDialog.DialogCode.Accepted else None

    def correct_selected(self) -> TaskThread | None:
        e = self.page.selected_entry()
        if e is None or not admin_allowed(self.page, "correct a logged entry", getattr(self.page, "gate", None)):
            return None
        answer = self.ask_correction(e)
        if answer is None:
            return None
        person_id, not_person = answer
        if person_id is None and not not_person:
            return None
        self.status.setText(f"Correcting entry {e.id}…")

        def done(result) -> None:
            self.page.refresh()
            who = result.after or f"not {result.before}"
            self.status.setText(f"Entry {result.entry_id}: {who}. {result.note}")

        return self._run(lambda _t: visitors.correct_entry(self.app, e.id, person=person_id, not_person=not_person),
                         done)

    # -- plumbing ---------------------------------------------------------------------------------------
    def _run(self, fn, on_done: Callable[[object], None]) -> TaskThread:
        task = TaskThread(fn, self)
        self._task = task

        def succeeded(result) -> None:
            self._task = None
            self.status.setText("")
            on_done(result)
            self.sync()

        def failed(message: str) -> None:
            self._task = None
            self.status.setText("")
            self.sync()
            self.show_error(message)

        task.succeeded.connect(succeeded)
        task.failed.connect(failed)
        task.start()
        self.sync()
        return task

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt API
        if event.type() == QEvent.Type.DragEnter and _dropped_image(event) is not None:
            event.acceptProposedAction()
            return True
        if event.type() == QEvent.Type.Drop:
            path = _dropped_image(event)
            if path is not None:
                event.acceptProposedAction()
                self.search_photo(path)
                return True
        return False

    def shutdown(self) -> None:
        if self._task is not None:
            self._task.finish()


def _dropped_image(event) -> str | None:
    mime = event.mimeData()
    if mime is None or not mime.hasUrls():
        return None
    for url in mime.urls():
        if url.isLocalFile() and Path(url.toLocalFile()).suffix.lower() in IMAGE_SUFFIXES:
            return url.toLocalFile()
    return None


def install_face_search(window, app: App) -> EntryFaceActions | None:
    """Add the face actions to the window's Entry log page (called from gui.main)."""
    page = window.page("Entry log")
    if page is None:
        return None
    actions = EntryFaceActions(app, page)
    page.face_actions = actions
    return actions
