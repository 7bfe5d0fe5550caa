"""The Visitors page: unknown faces grouped into visitors, with a thumbnail, visits, first and
last seen and doors; Enroll / Merge / Forget behind the administrator password.

The list is re-read when a new entry is logged (a cheap "newest entry id" poll while the page
is visible) and after every action. Enrolling runs the quality gate on snapshots through the
engine, so it runs in a background thread.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable

from PySide6.QtCore import QSize, Qt, QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from faceapp.core.csvexport import parse_utc
from faceapp.core.errors import FaceAppError
from faceapp.gui import admin
from faceapp.gui.admin import AdminGate, admin_allowed
from faceapp.gui.widgets import Index, RecordTableModel, TaskThread, ask_choice, thumbnail_icon
from faceapp.service import visitors
from faceapp.service.app import App
from faceapp.store.attendance import AttendanceStore
from faceapp.store.visitors import Visitor

log = logging.getLogger(__name__)

POLL_MS = 2000
THUMB_PX = 72


def snapshot_icon(app: App, entry_id: int | None, size: int = THUMB_PX) -> QIcon:
    """The snapshot of an entry as a square icon (an empty icon when it has none)."""
    if entry_id is None:
        return QIcon()
    try:
        image = visitors.snapshot_image(app, entry_id)
    except FaceAppError:
        return QIcon()
    return thumbnail_icon(image, size)


def local_time(utc_text: str) -> str:
    return parse_utc(utc_text).astimezone().strftime("%Y-%m-%d %H:%M")


class VisitorTableModel(RecordTableModel):
    """Visitors as rows; the first column carries the thumbnail."""

    COLUMNS = ("Visitor", "Visits", "First seen", "Last seen", "Doors")

    def __init__(self, icon_for: Callable[[int | None], QIcon], parent=None) -> None:
        super().__init__(parent)
        self._icon_for = icon_for

    def set_visitors(self, rows: list[Visitor]) -> None:
        self._reset(rows)

    def visitor(self, row: int) -> Visitor | None:
        return self.row_record(row)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole):
        v = self.visitor(index.row())
        if v is None:
            return None
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return (f"Visitor {v.id}", str(v.visits), local_time(v.first_seen), local_time(v.last_seen),
                    ", ".join(v.doors))[col]
        if role == Qt.ItemDataRole.DecorationRole and col == 0:
            return self._icon_for(v.best_entry_id)
        if role == Qt.ItemDataRole.TextAlignmentRole and col == 1:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.UserRole:
            return v.id
        return None


class EnrollVisitorDialog(QDialog):
    """Name (and optionally employee id and department) for a visitor to enroll."""

    def __init__(self, visitor_id: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Enroll visitor {visitor_id}")
        self.name_edit = QLineEdit(self)
        self.employee_edit = QLineEdit(self)
        self.department_edit = QLineEdit(self)
        form = QFormLayout()
        form.addRow("Name", self.name_edit)
        form.addRow("Employee ID", self.employee_edit)
        form.addRow("Department", self.department_edit)
        note = QLabel("The visitor's clearest snapshots become the person's photos (each one through the "
                      "usual quality check), and their past entries are relabelled to the person.", self)
        note.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Enroll")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(note)
        layout.addLayout(form)
        layout.addWidget(buttons)

    def values(self) -> tuple[str, str | None, str | None]:
        return (self.name_edit.text(), self.employee_edit.text() or None, self.department_edit.text() or None)


class VisitorsPage(QWidget):
    """Visitors with thumbnails; Enroll / Merge / Forget (administrator)."""

    def __init__(self, app: App, parent: QWidget | None = None, gate: AdminGate | None = None) -> None:
        super().__init__(parent)
        self.app = app
        self.gate = gate
        self._entries = AttendanceStore(app.store)
        self._icons: dict[int, QIcon] = {}
        self._last_max = -1
        self._closed = False
        self._task: TaskThread | None = None
        # Replaceable in tests (no modal dialogs there).
        self.ask_enroll: Callable[[int], tuple[str, str | None, str | None] | None] = self._ask_enroll
        self.confirm: Callable[[str, str], bool] = self._confirm
        self.show_error: Callable[[str], None] = lambda m: admin.show_message(self, "faceapp", m, error=True)

        self.model = VisitorTableModel(self._icon, self)
        self.table = QTableView(self)
        self.table.setModel(self.model)
        self.table.setIconSize(QSize(THUMB_PX, THUMB_PX))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(THUMB_PX + 8)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        self.table.selectionModel().selectionChanged.connect(lambda *_: self._sync_buttons())
        self.table.doubleClicked.connect(lambda *_: self.enroll_selected())

        self.enroll_button = QPushButton("Enroll…", self)
        self.enroll_button.setToolTip("Enroll the selected visitor as a person (administrator)")
        self.enroll_button.clicked.connect(lambda: self.enroll_selected())
        self.merge_button = QPushButton("Merge", self)
        self.merge_button.setToolTip("The selected visitors are one person: merge them (administrator)")
        self.merge_button.clicked.connect(lambda: self.merge_selected())
        self.forget_button = QPushButton("Forget…", self)
        self.forget_button.setToolTip("Delete the selected visitors' snapshots and face data; their entries stay "
                                      "as unknown (administrator)")
        self.forget_button.clicked.connect(lambda: self.forget_selected())
        self.status_label = QLabel(self)
        intro = QLabel("Unknown faces logged at the doors, grouped by face: one row per visitor, one visit per "
                       "logged entry. Select two or more to merge them.", self)
        intro.setWordWrap(True)

        buttons = QHBoxLayout()
        buttons.addWidget(self.status_label, 1)
        for b in (self.enroll_button, self.merge_button, self.forget_button):
            buttons.addWidget(b)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)

        self.timer = QTimer(self)
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self.poll)
        self.refresh()
        self.timer.start()

    # -- data --------------------------------------------------------------------------------------
    def _icon(self, entry_id: int | None) -> QIcon:
        if entry_id is None:
            return QIcon()
        if entry_id not in self._icons:
            self._icons[entry_id] = snapshot_icon(self.app, entry_id)
        return self._icons[entry_id]

    def refresh(self) -> None:
        """Re-read the visitors, keeping the selection."""
        if self._closed:
            return
        try:
            self._last_max = self._entries.max_entry_id()
            rows = visitors.list_visitors(self.app)
        except sqlite3.ProgrammingError as exc:   # the database was closed: the app is quitting
            log.debug("visitors page stopped: %s", exc)
            self._closed = True
            self.timer.stop()
            return
        except (FaceAppError, sqlite3.Error) as exc:
            self.status_label.setText(str(exc))
            return
        selected = set(self.selected_ids())
        self.model.set_visitors(rows)
        keep = {v.best_entry_id for v in rows}
        self._icons = {k: v for k, v in self._icons.items() if k in keep}
        visits = sum(v.visits for v in rows)
        self.status_label.setText(f"{len(rows)} visitor(s), {visits} visit(s)" if rows else
                                  "No visitors yet: unknown faces logged by a door station appear here")
        selection = self.table.selectionModel()
        for i, v in enumerate(rows):
            if v.id in selected:
                selection.select(self.model.index(i, 0), selection.SelectionFlag.Select | selection.SelectionFlag.Rows)
        self._sync_buttons()

    def poll(self) -> None:
        if self._closed or not self.isVisible():
            return
        try:
            newest = self._entries.max_entry_id()
        except sqlite3.Error:
            return
        if newest != self._last_max:
            self.refresh()

    def showEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)
        self.refresh()

    def selected_ids(self) -> list[int]:
        rows = sorted({i.row() for i in self.table.selectionModel().selectedRows()})
        return [v.id for r in rows if (v := self.model.visitor(r)) is not None]

    def select_ids(self, ids: list[int]) -> None:
        """Select these visitors (tests, and after a merge)."""
        self.table.clearSelection()
        selection = self.table.selectionModel()
        for i in range(self.model.rowCount()):
            v = self.model.visitor(i)
            if v is not None and v.id in ids:
                selection.select(self.model.index(i, 0), selection.SelectionFlag.Select | selection.SelectionFlag.Rows)

    def _sync_buttons(self) -> None:
        n = len(self.selected_ids())
        busy = self._task is not None and self._task.isRunning()
        self.enroll_button.setEnabled(n == 1 and not busy)
        self.merge_button.setEnabled(n >= 2 and not busy)
        self.forget_button.setEnabled(n >= 1 and not busy)

    # -- actions ------------------------------------------------------------------------------------
    def _ask_enroll(self, visitor_id: int) -> tuple[str, str | None, str | None] | None:
        dialog = EnrollVisitorDialog(visitor_id, self)
        return dialog.values() if dialog.exec() == QDialog.DialogCode.Accepted else None

    def _confirm(self, title: str, text: str) -> bool:
        return ask_choice(self, title, text, ["Forget", "Cancel"], default=1) == 0

    def enroll_selected(self) -> TaskThread | None:
        """Ask a name and enroll the selected visitor in the background; returns the task."""
        ids = self.selected_ids()
        if len(ids) != 1 or not admin_allowed(self, "enroll a visitor", self.gate):
            return None
        answer = self.ask_enroll(ids[0])
        if not answer or not answer[0].strip():
            return None
        name, employee_id, department = answer
        vid = ids[0]
        self.status_label.setText(f"Enrolling visitor {vid} as {name}…")
        return self._run(lambda _t: visitors.enroll_visitor(self.app, vid, name, employee_id, department),
                         lambda done: f"Visitor {vid} enrolled as {' '.join(name.split())} from {done.photos} "
                                      f"snapshot(s); {done.entries} past entries relabelled")

    def merge_selected(self) -> int | None:
        ids = self.selected_ids()
        if len(ids) < 2 or not admin_allowed(self, "merge visitors", self.gate):
            return None
        try:
            target = visitors.merge_visitors(self.app, *ids)
        except FaceAppError as exc:
            self.show_error(str(exc))
            return None
        self.refresh()
        self.select_ids([target])
        self.status_label.setText(f"Visitors {', '.join(map(str, ids))} merged into visitor {target}")
        return target

    def forget_selected(self) -> int | None:
        ids = self.selected_ids()
        if not ids or not admin_allowed(self, "forget visitors", self.gate):
            return None
        which = f"visitor {ids[0]}" if len(ids) == 1 else f"{len(ids)} visitors"
        if not self.confirm("Forget visitors", f"Delete the snapshots and face data of {which}? Their entries "
                                               f"stay in the log as unknown. This cannot be undone."):
            return None
        n = 0
        try:
            for vid in ids:
                n += visitors.forget_visitor(self.app, vid)
        except FaceAppError as exc:
            self.show_error(str(exc))
        self.refresh()
        self.status_label.setText(f"Forgot {which}: face data of {n} entries deleted")
        return n

    def _run(self, fn, describe: Callable[[object], str]) -> TaskThread:
        task = TaskThread(fn, self)
        self._task = task
        task.succeeded.connect(lambda result: self._finished(describe(result)))
        task.failed.connect(lambda message: self._finished(None, message))
        self._sync_buttons()
        task.start()
        return task

    def _finished(self, text: str | None, error: str | None = None) -> None:
        self._task = None
        self.refresh()
        if error:
            self.status_label.setText("")
            self.show_error(error)
        elif text:
            self.status_label.setText(text)

    def shutdown(self) -> None:
        """Stop polling and wait for a running enrollment (window closing)."""
        self._closed = True
        self.timer.stop()
        if self._task is not None:
            self._task.finish()


def install_visitors_page(window, app: App) -> VisitorsPage:
    """Add the Visitors page to the main window (called from gui.main)."""
    page = VisitorsPage(app, window, gate=getattr(window, "admin_gate", None))
    window.add_page("Visitors", page)
    return page
