"""The entry-log page (offscreen Qt): filters, live updates, snapshot on selection, CSV export.
Entries carry snapshots cut from real photos; one person is enrolled from real photos."""

from __future__ import annotations

import csv
from datetime import date, datetime, timedelta, timezone

import pytest

from faceapp.gui.qt_env import clean_qt_environment

clean_qt_environment()  # before pytest-qt creates the QApplication

from PySide6.QtCore import QDate, Qt  # noqa: E402

from faceapp.capture.images import load_image  # noqa: E402
from faceapp.core.csvexport import ENTRY_HEADER, REPORT_HEADER  # noqa: E402
from faceapp.core.types import BBox  # noqa: E402
from faceapp.service.attendance import export_entries  # noqa: E402
from faceapp.service.enroll import enroll_files  # noqa: E402
from faceapp.store.attendance import AttendanceStore, NewEntry, make_snapshot  # noqa: E402

from conftest import FACES, person_photos  # noqa: E402

pytestmark = [pytest.mark.gui, pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")]

ALEX = "Alex Lacamoire"


@pytest.fixture
def logged(app):
    """A real enrolled person and five entries of the last hour (two with real snapshots)."""
    pid, _ = enroll_files(app, ALEX, person_photos("face_recognition_examples", "Alex_Lacamoire"))
    photo = load_image(FACES / "face_recognition_examples" / "Joe_Biden" / "biden.jpg")
    snap = make_snapshot(photo, BBox(120, 80, 320, 330))
    att = AttendanceStore(app.store)
    now = datetime.now(timezone.utc)
    rows = [
        (50, "Main entrance", pid, ALEX, "granted", 0.41, None),
        (40, "Lab", pid, ALEX, "denied", 0.43, snap),
        (30, "Main entrance", None, None, "unknown", 0.93, snap),
        (20, "Lab", None, "Gone, \"Former\" Employee", "granted", 0.38, None),
        (10, "Main entrance", pid, ALEX, "granted", 0.40, None),
    ]
    ids = [att.add_entry(NewEntry(now - timedelta(minutes=m), door, p, name, decision, d,
                                  "not in a group admitted at Lab" if decision == "denied" else None, snapshot=s))
           for m, door, p, name, decision, d, s in rows]
    return app, att, ids


def make_page(qtbot, app):
    from faceapp.gui.log_page import LogPage

    page = LogPage(app)
    qtbot.addWidget(page)
    page.resize(1000, 600)
    page.show()
    return page


def shown(page) -> list[tuple[str, str, str]]:
    m = page.model
    return [(m.index(r, 1).data(), m.index(r, 2).data(), m.index(r, 3).data()) for r in range(m.rowCount())]


def test_entries_newest_first_and_every_filter(qtbot, logged):
    app, att, ids = logged
    page = make_page(qtbot, app)
    assert [e.id for e in page.model.entries()] == ids[::-1]
    assert shown(page)[0] == ("Main entrance", ALEX, "granted")
    assert page.model.index(2, 2).data() == "unknown"
    assert page.model.index(0, 3).data(Qt.ItemDataRole.ForegroundRole).name() == "#1e8f4e"
    assert page.status_label.text() == "5 entries"

    page.decision_box.setCurrentText("denied")
    assert shown(page) == [("Lab", ALEX, "denied")]
    page.decision_box.setCurrentIndex(0)
    page.door_box.setCurrentText("Lab")
    assert [s[1] for s in shown(page)] == ['Gone, "Former" Employee', ALEX]
    page.door_box.setCurrentIndex(0)
    page.person_box.setCurrentText(ALEX)
    assert len(shown(page)) == 3
    page.person_box.setCurrentIndex(0)
    tomorrow = date.today() + timedelta(days=1)
    page.to_edit.setDate(QDate(tomorrow.year, tomorrow.month, tomorrow.day))
    page.from_edit.setDate(QDate(tomorrow.year, tomorrow.month, tomorrow.day))
    assert shown(page) == [] and page.status_label.text() == "0 entries"


def test_new_entries_appear_without_touching_the_page(qtbot, logged):
    app, att, ids = logged
    page = make_page(qtbot, app)
    page.table.selectRow(1)
    selected = page.selected_entry().id
    new = att.add_entry(NewEntry(datetime.now(timezone.utc), "Lab", None, None, "unknown", 0.9))
    qtbot.waitUntil(lambda: page.model.rowCount() == 6, timeout=10_000)
    assert page.model.entry(0).id == new
    assert page.selected_entry().id == selected   # the selection follows its entry
    # Left running past midnight: the "to" date moves on by itself.
    yesterday = date.today() - timedelta(days=1)
    page.to_edit.setDate(QDate(yesterday.year, yesterday.month, yesterday.day))
    page._follow_today = True   # as if the page had been opened yesterday
    page.poll()
    assert page.to_edit.date() == QDate.currentDate() and page.model.rowCount() == 6


def test_the_snapshot_of_the_selected_entry_is_shown(qtbot, logged):
    app, att, ids = logged
    page = make_page(qtbot, app)
    page.table.selectRow(3)   # the denied entry, with a snapshot
    pixmap = page.snapshot_label.pixmap()
    assert not pixmap.isNull() and max(pixmap.width(), pixmap.height()) == 200
    assert "not in a group admitted at Lab" in page.detail_label.text()
    page.table.selectRow(0)   # granted: no picture is kept
    assert page.snapshot_label.pixmap().isNull()
    assert page.snapshot_label.text().startswith("No snapshot")


def test_export_buttons_write_the_same_csv_as_the_cli(qtbot, logged, tmp_path):
    app, att, ids = logged
    page = make_page(qtbot, app)
    page.door_box.setCurrentText("Lab")
    target = tmp_path / "from-gui.csv"
    asked = []
    page.ask_save_path = lambda title, suggested: asked.append(suggested) or str(target)
    qtbot.mouseClick(page.export_button, Qt.MouseButton.LeftButton)
    assert asked and asked[0].startswith("entries-") and asked[0].endswith(".csv")
    reference = tmp_path / "reference.csv"
    assert export_entries(app.store, reference, page.query(limit=None)) == 2
    assert target.read_bytes() == reference.read_bytes()
    assert "wrote 2 rows" in page.status_label.text()
    with target.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == list(ENTRY_HEADER) and rows[1][2] == ALEX and rows[2][2] == 'Gone, "Former" Employee'

    page.bom_check.setChecked(True)
    page.door_box.setCurrentIndex(0)
    report = tmp_path / "report.csv"
    page.ask_save_path = lambda title, suggested: str(report)
    qtbot.mouseClick(page.report_button, Qt.MouseButton.LeftButton)
    assert report.read_bytes().startswith(b"\xef\xbb\xbf")
    with report.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == list(REPORT_HEADER)
    assert sorted(r[1] for r in rows[1:]) == sorted([ALEX, 'Gone, "Former" Employee'])

    errors = []
    page.show_error = errors.append
    page.ask_save_path = lambda title, suggested: str(tmp_path / "no-such-folder" / "x.csv")
    qtbot.mouseClick(page.export_button, Qt.MouseButton.LeftButton)
    assert errors and "does not exist" in errors[0]
    page.ask_save_path = lambda title, suggested: None   # cancelled
    assert page.export_csv() is None


def test_the_main_window_gets_an_entry_log_page(qtbot, logged):
    from faceapp.gui.log_page import LogPage
    from faceapp.gui.main import build_main_window

    app, att, ids = logged
    window = build_main_window(app, camera=str(FACES / "extras"), start=False)   # no threads started
    qtbot.addWidget(window)
    window.show()
    page = window.page("Entry log")
    assert isinstance(page, LogPage)
    # It is a tab of the window and shows the database's entries, newest first.
    assert window.tabs.indexOf(page) >= 0 and window.tabs.tabText(window.tabs.indexOf(page)) == "Entry log"
    page.refresh()
    qtbot.waitUntil(lambda: page.model.rowCount() == len(ids), timeout=10_000)
    assert [page.model.entry(r).id for r in range(page.model.rowCount())] == sorted(ids, reverse=True)
