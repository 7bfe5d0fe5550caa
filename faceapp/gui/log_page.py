"""The entry-log page: a filtered table of entries that follows new ones live, the snapshot of the
selected entry, and CSV export of what the filters select (the same code as `faceapp log export`).

Queries run on the GUI thread: they are indexed, limited to the newest ``LIMIT`` rows and take a
few milliseconds; a poll every second asks only for the newest entry id, and not at all while the
page is hidden (it catches up when shown).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

from PySide6.QtCore import QDate, Qt, QTimer
from PySide6.QtGui import QColor, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDateEdit,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSizePolicy,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from faceapp.core.errors import FaceAppError
from faceapp.gui import admin
from faceapp.gui.admin import AdminGate, admin_allowed
from faceapp.gui.widgets import Index, RecordTableModel
from faceapp.service import attendance
from faceapp.service.app import App
from faceapp.store.attendance import AttendanceStore, EntryQuery, EntryRecord

log = logging.getLogger(__name__)

LIMIT = 1000
POLL_MS = 1000
DEFAULT_DAYS = 30
SNAPSHOT_PX = 200
ALL_PEOPLE, ALL_DOORS, ALL_DECISIONS = "All people", "All doors", "All decisions"
DECISION_COLORS = {"granted": "#1e8f4e", "denied": "#c62828", "unknown": "#b26a00"}



class EntryTableModel(RecordTableModel):
    """Entries (newest first) as rows: time (local), door, person, decision, distance."""

    COLUMNS = ("Time", "Door", "Person", "Decision", "Distance")

    def set_entries(self, rows: list[EntryRecord]) -> None:
        self._reset(rows)

    def entry(self, row: int) -> EntryRecord | None:
        return self.row_record(row)

    def entries(self) -> list[EntryRecord]:
        return list(self._rows)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole):
        e = self.entry(index.row())
        if e is None:
            return None
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(e, col)
        if role == Qt.ItemDataRole.ForegroundRole and col == 3:
            return QColor(DECISION_COLORS.get(e.decision, "#000000"))
        if role == Qt.ItemDataRole.TextAlignmentRole and col == 4:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole:
            local = e.when.astimezone().isoformat(timespec="seconds")
            return f"{local}\n{e.reason}" if e.reason else local
        if role == Qt.ItemDataRole.UserRole:
            return e.id
        return None

    @staticmethod
    def _text(e: EntryRecord, col: int) -> str:
        if col == 0:
            return e.when.astimezone().strftime("%Y-%m-%d %H:%M:%S")
        if col == 1:
            return e.door
        if col == 2:
            return e.person_name or "unknown"
        if col == 3:
            return e.decision
        return f"{e.distance:.2f}" if e.distance is not None else ""


def entry_details(e: EntryRecord) -> list[str]:
    """The detail pane's lines: local time as people read it, door, who and what happened."""
    when = e.when.astimezone()
    lines = [f"{when:%a %d %b %Y, %H:%M:%S}", f"Door: {e.door}"]
    if e.person_name:
        lines.append(f"{e.person_name}: {'access granted' if e.decision == 'granted' else e.decision}")
    elif e.decision == "unknown":
        lines.append("Unknown face (not enrolled)")
    else:
        lines.append(f"Unidentified face: {e.decision}")
    if e.distance is not None:
        lines.append(f"distance {e.distance:.2f}")
    if e.reason:
        lines.append(e.reason)
    return lines


def _qdate(d: date) -> QDate:
    return QDate(d.year, d.month, d.day)


def _pydate(q: QDate) -> date:
    return date(q.year(), q.month(), q.day())


class LogPage(QWidget):
    """Entry log with filters, live updates, snapshot on selection and CSV export."""

    def __init__(self, app: App, parent: QWidget | None = None, gate: AdminGate | None = None) -> None:
        super().__init__(parent)
        self.app = app
        self.gate = gate  # exports ask it (or the window's) for the administrator password
        self._entries = AttendanceStore(app.store)
        self._last_max = -1
        self._closed = False
        # Replaceable in tests (no modal dialogs there).
        self.ask_save_path: Callable[[str, str], str | None] = self._ask_save_path
        self.show_error: Callable[[str], None] = self._show_error

        today = date.today()
        self.from_edit = QDateEdit(_qdate(date.fromordinal(today.toordinal() - DEFAULT_DAYS)), self)
        self.to_edit = QDateEdit(_qdate(today), self)
        for edit in (self.from_edit, self.to_edit):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd")
            edit.dateChanged.connect(self._filters_changed)
        # A "to" date of today moves on at midnight, so a reception PC left running keeps showing new entries.
        self._follow_today = True
        self.to_edit.dateChanged.connect(
            lambda d: setattr(self, "_follow_today", _pydate(d) >= date.today()))
        self.person_box = QComboBox(self)
        self.door_box = QComboBox(self)
        self.decision_box = QComboBox(self)
        self.decision_box.addItems([ALL_DECISIONS, "granted", "denied", "unknown"])
        for box in (self.person_box, self.door_box):
            box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
            box.setMinimumContentsLength(12)
        for box in (self.person_box, self.door_box, self.decision_box):
            box.currentIndexChanged.connect(self._filters_changed)

        self.model = EntryTableModel(self)
        self.table = QTableView(self)
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.table.selectionModel().currentRowChanged.connect(self._show_selected)

        self.snapshot_label = QLabel(self)
        self.snapshot_label.setFixedSize(SNAPSHOT_PX, SNAPSHOT_PX)
        self.snapshot_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.snapshot_label.setWordWrap(True)
        self.snapshot_label.setObjectName("snapshot")
        self.detail_label = QLabel(self)
        self.detail_label.setWordWrap(True)
        self.detail_label.setMaximumWidth(SNAPSHOT_PX)
        self.detail_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.bom_check = QCheckBox("For Excel (UTF-8 BOM)", self)
        self.export_button = QPushButton("Export CSV…", self)
        self.export_button.clicked.connect(lambda: self.export_csv())
        self.report_button = QPushButton("Daily report…", self)
        self.report_button.setToolTip("First in and last out per person per day (granted entries), as CSV")
        self.report_button.clicked.connect(lambda: self.export_report())
        self.status_label = QLabel(self)
        self.status_label.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)

        # Two rows: the window must fit an 800-pixel-wide screen.
        filters = QVBoxLayout()
        for row in ((("From", self.from_edit), ("To", self.to_edit), ("Decision", self.decision_box)),
                    (("Person", self.person_box), ("Door", self.door_box))):
            part = QHBoxLayout()
            for text, w in row:
                label = QLabel(text, self)
                label.setBuddy(w)
                part.addWidget(label)
                part.addWidget(w)
            part.addStretch(1)
            filters.addLayout(part)
        side = QVBoxLayout()
        side.addWidget(self.snapshot_label)
        side.addWidget(self.detail_label)
        side.addStretch(1)
        middle = QHBoxLayout()
        middle.addWidget(self.table, 1)
        middle.addLayout(side)
        bottom = QHBoxLayout()
        bottom.addWidget(self.status_label, 1)
        bottom.addWidget(self.bom_check)
        bottom.addWidget(self.report_button)
        bottom.addWidget(self.export_button)
        layout = QVBoxLayout(self)
        layout.addLayout(filters)
        layout.addLayout(middle, 1)
        layout.addLayout(bottom)

        self._show_entry(None)
        self.timer = QTimer(self)
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self.poll)
        self.refresh()
        self.timer.start()

    # -- data -------------------------------------------------------------------------------------
    def query(self, limit: int | None = LIMIT) -> EntryQuery:
        """The filters as an entry query (newest first, at most ``limit``)."""
        person = self.person_box.currentText() if self.person_box.currentIndex() > 0 else None
        door = self.door_box.currentText() if self.door_box.currentIndex() > 0 else None
        decision = self.decision_box.currentText() if self.decision_box.currentIndex() > 0 else None
        since, until = _pydate(self.from_edit.date()), _pydate(self.to_edit.date())
        return attendance.entry_query(since.isoformat(), until.isoformat(), door, person, decision,
                                      store=self.app.store, limit=limit, newest_first=True)

    def poll(self) -> None:
        """Reload if a new entry was logged (by this process or another one); a hidden page
        waits until it is shown."""
        if not self._closed and self.isVisible():
            self._catch_up()

    def _catch_up(self) -> None:
        today = date.today()
        if self._follow_today and _pydate(self.to_edit.date()) < today:
            self.to_edit.setDate(_qdate(today))   # refreshes through dateChanged
            return
        try:
            newest = self._entries.max_entry_id()
        except (FaceAppError, sqlite3.Error) as exc:
            self._stop(exc)
            return
        if newest == self._last_max:
            return
        try:
            new = self._entries.entries(EntryQuery(after_id=self._last_max, limit=LIMIT))
        except (FaceAppError, sqlite3.Error) as exc:
            self._failed(exc)
            return
        # The person and door lists scan the whole log: re-read them only when a new entry names
        # someone or a door they lack, or when unsure (entries deleted, too many new ones to look at).
        choices = newest < self._last_max or len(new) >= LIMIT or self._brings_new_choices(new)
        self._load(choices, seen=max([newest, *(e.id for e in new)]))

    def _brings_new_choices(self, new: list[EntryRecord]) -> bool:
        people = {self.person_box.itemText(i) for i in range(self.person_box.count())}
        doors = {self.door_box.itemText(i) for i in range(self.door_box.count())}
        return any((e.person_name is not None and e.person_name not in people) or e.door not in doors for e in new)

    def refresh(self) -> None:
        """Re-read the choices and the entries matching the filters, keeping the selection."""
        self._load(choices=True)

    def _load(self, choices: bool, seen: int | None = None) -> None:
        """Re-read the entries (and the choices if asked); ``seen`` is the newest entry id the
        caller has already looked at (None: ask the store)."""
        if self._closed:
            return
        try:
            self._last_max = self._entries.max_entry_id() if seen is None else seen
            if choices:
                self._fill_choices()
            rows = self._entries.entries(self.query())
        except (FaceAppError, sqlite3.Error) as exc:
            self._failed(exc)
            return
        selected = self.selected_entry()
        self.model.set_entries(rows)
        more = f" (the newest {LIMIT}; narrow the filters to see older ones)" if len(rows) >= LIMIT else ""
        self.status_label.setText(f"{len(rows)} entries{more}")
        if selected is not None:
            for i, e in enumerate(rows):
                if e.id == selected.id:
                    self.table.selectRow(i)
                    break
            else:
                self._show_entry(None)

    def _failed(self, exc: Exception) -> None:
        if isinstance(exc, sqlite3.ProgrammingError):
            self._stop(exc)
        else:
            self.status_label.setText(str(exc))

    def _stop(self, exc: Exception) -> None:
        # The database was closed under us (the app is quitting): stop polling quietly.
        log.debug("entry log polling stopped: %s", exc)
        self._closed = True
        self.timer.stop()

    def _fill_choices(self) -> None:
        people = sorted({p.name for p in self.app.store.list_people()} | set(self._entries.logged_person_names()),
                        key=str.casefold)
        self._set_items(self.person_box, ALL_PEOPLE, people)
        self._set_items(self.door_box, ALL_DOORS, self._entries.logged_door_names())

    def _set_items(self, box: QComboBox, first: str, items: list[str]) -> None:
        wanted = [first, *items]
        if [box.itemText(i) for i in range(box.count())] == wanted:
            return
        current = box.currentText()
        box.blockSignals(True)
        box.clear()
        box.addItems(wanted)
        box.setCurrentIndex(max(0, box.findText(current, Qt.MatchFlag.MatchFixedString)))
        box.blockSignals(False)

    def _filters_changed(self, *_args) -> None:
        self.refresh()

    def showEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)
        if not self._closed:
            self._catch_up()

    # -- selection ----------------------------------------------------------------------------------
    def selected_entry(self) -> EntryRecord | None:
        index = self.table.selectionModel().currentIndex()
        return self.model.entry(index.row()) if index.isValid() else None

    def _show_selected(self, current: Index, _previous: Index) -> None:
        self._show_entry(self.model.entry(current.row()) if current.isValid() else None)

    def _show_entry(self, e: EntryRecord | None) -> None:
        self.snapshot_label.setPixmap(QPixmap())
        if e is None:
            self.snapshot_label.setText("Select an entry to see its snapshot")
            self.detail_label.setText("")
            return
        data = self._entries.snapshot(e.id) if e.has_snapshot else None
        pixmap = QPixmap()
        if data and pixmap.loadFromData(data, "JPG"):
            self.snapshot_label.setText("")
            self.snapshot_label.setPixmap(pixmap.scaled(
                SNAPSHOT_PX, SNAPSHOT_PX, Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation))
        else:
            days = self.app.settings.snapshot_retention_days
            kept = f"snapshots are kept {days} days" if days > 0 else "or it was deleted"
            self.snapshot_label.setText(f"No snapshot\n({kept})")
        self.detail_label.setText("\n".join(entry_details(e)))

    # -- export -------------------------------------------------------------------------------------
    def _ask_save_path(self, title: str, suggested: str) -> str | None:
        return admin.ask_save_path(self, title, suggested, "CSV files (*.csv);;All files (*)") or None

    def _show_error(self, message: str) -> None:
        admin.show_message(self, "faceapp", message, error=True)

    def export_csv(self, path: str | Path | None = None) -> int | None:
        """Write every entry the filters select (not just the newest shown) as CSV; returns the count."""
        return self._export("Export entries", f"entries-{date.today().isoformat()}.csv", path, "entries")

    def export_report(self, path: str | Path | None = None) -> int | None:
        """Write the daily attendance report for the filters' dates, door and person."""
        return self._export("Daily attendance report", f"attendance-{date.today().isoformat()}.csv", path,
                            "report")

    def _export(self, title: str, suggested: str, path, kind: str) -> int | None:
        if not admin_allowed(self, "export the entry log", self.gate):
            return None
        if path is None:
            path = self.ask_save_path(title, suggested)
            if not path:
                return None
        try:
            n = attendance.export_log(self.app, kind, path, self.query(limit=None), bom=self.bom_check.isChecked())
        except FaceAppError as exc:
            self.show_error(str(exc))
            return None
        self.status_label.setText(f"{datetime.now():%H:%M:%S} wrote {n} rows to {path}")
        return n
