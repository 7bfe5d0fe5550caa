"""The Presence page: everyone seen today (first seen, last seen, at which door, how many
appearances), refreshed while shown; and the weekly timesheet (hours first in to last out per
person per day, with the week's total), exportable as CSV."""

from __future__ import annotations

from datetime import date, timedelta

from PySide6.QtCore import QDate, QTimer
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDateEdit,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from faceapp.core.errors import FaceAppError
from faceapp.gui import admin
from faceapp.gui.admin import admin_allowed
from faceapp.service import presence
from faceapp.service.app import App

REFRESH_MS = 3000


def _table(columns: tuple[str, ...], parent: QWidget) -> QTableWidget:
    table = QTableWidget(0, len(columns), parent)
    table.setHorizontalHeaderLabels(columns)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setAlternatingRowColors(True)
    table.verticalHeader().setVisible(False)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    table.horizontalHeader().setStretchLastSection(True)
    return table


def _fill(table: QTableWidget, rows: list[list[str]]) -> None:
    table.setRowCount(len(rows))
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            table.setItem(r, c, QTableWidgetItem(text))


class PresencePage(QWidget):
    """Today's presence on top, the weekly timesheet below."""

    TODAY = ("Person", "First seen", "Last seen", "Last door", "Appearances", "Doors")
    WEEK = ("Person", "Employee ID", "Department", "Day", "First in", "Last out", "Hours")

    def __init__(self, app: App, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.app = app
        layout = QVBoxLayout(self)
        self.title = QLabel(self)
        self.title.setObjectName("presenceTitle")
        layout.addWidget(self.title)
        self.today = _table(self.TODAY, self)
        layout.addWidget(self.today, 3)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Weekly timesheet, week of", self))
        self.week_edit = QDateEdit(QDate.currentDate(), self)
        self.week_edit.setCalendarPopup(True)
        self.week_edit.setDisplayFormat("yyyy-MM-dd")
        self.week_edit.dateChanged.connect(lambda *_: self.refresh_week())
        bar.addWidget(self.week_edit)
        self.week_label = QLabel(self)
        bar.addWidget(self.week_label, 1)
        self.export_button = QPushButton("Export timesheet CSV…", self)
        self.export_button.clicked.connect(lambda *_: self.export_timesheet())
        bar.addWidget(self.export_button)
        layout.addLayout(bar)
        self.week = _table(self.WEEK, self)
        layout.addWidget(self.week, 2)
        self.status = QLabel(self)
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        self.timer = QTimer(self)
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self.refresh_today)
        self.refresh()

    def week_code(self) -> str:
        y, w, _ = self.week_edit.date().toPython().isocalendar()
        return f"{y}-W{w:02d}"

    def refresh(self) -> None:
        self.refresh_today()
        self.refresh_week()

    def refresh_today(self) -> None:
        try:
            rows = presence.presence_today(self.app.store)
        except FaceAppError as exc:
            self.status.setText(f"Cannot read who is in: {exc}")
            return
        self.title.setText(f"Seen today ({date.today():%A %d %B}): {len(rows)} "
                           f"{'person' if len(rows) == 1 else 'people'}")
        _fill(self.today, [[r.person, f"{r.first_seen.astimezone():%H:%M:%S}", f"{r.last_seen.astimezone():%H:%M:%S}",
                            r.last_door, str(r.visits), ", ".join(r.doors)] for r in rows])

    def refresh_week(self) -> None:
        monday = presence.parse_week(self.week_code())
        try:
            rows = presence.timesheet_rows(self.app.store, monday)
        except FaceAppError as exc:
            self.status.setText(f"Cannot compute the timesheet: {exc}")
            return
        self.week_label.setText(f"{self.week_code()}: {monday:%d %b} – {monday + timedelta(days=6):%d %b}")
        shown = []
        for person, _pid, emp, dept, day, first, last, hours in rows:
            if day == "week total":
                shown.append([person, emp, dept, "week total", "", "", hours])
            else:
                shown.append([person, emp, dept, day, first[11:16], last[11:16] if last[:10] == day
                              else f"{last[5:10]} {last[11:16]}", hours])
        _fill(self.week, shown)

    def export_timesheet(self, path: str | None = None) -> int | None:
        """Ask for a file and write the shown week's timesheet (administrator, audited)."""
        if not admin_allowed(self, "export the timesheet"):
            return None
        week = self.week_code()
        if path is None:
            path = admin.ask_save_path(self, "Export timesheet", f"timesheet-{week}.csv",
                                       "CSV files (*.csv);;All files (*)")
            if not path:
                return None
        try:
            n = presence.export_timesheet(self.app, path, week)
        except FaceAppError as exc:
            self.status.setText(f"Export failed: {exc}")
            return None
        self.status.setText(f"Wrote {n} rows to {path}")
        return n

    def showEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)
        self.refresh()
        self.timer.start()

    def hideEvent(self, event) -> None:  # noqa: N802 - Qt API
        self.timer.stop()
        super().hideEvent(event)


def install_presence_page(window, app: App) -> PresencePage:
    page = PresencePage(app)
    window.add_page("Presence", page, admin=True)
    return page
