"""Issue #12: alerts at reception (banner with snapshot and sound, acknowledged with a click, one
per track), the Presence page fed by sightings (the daily report's last out is the last time
seen), the weekly timesheet (GUI and CLI, night shifts paired) and CSV columns for employee id
and department. Real window, real models, the real Hamilton clip."""

from __future__ import annotations

import csv
from dataclasses import replace
from datetime import date, datetime, timedelta

import pytest

from faceapp.gui.qt_env import clean_qt_environment

clean_qt_environment()  # before pytest-qt creates the QApplication

from PySide6.QtCore import Qt  # noqa: E402

from faceapp.cli import main as cli_main  # noqa: E402
from faceapp.core.timesheet import Presence, shifts  # noqa: E402
from faceapp.gui import alerts  # noqa: E402
from faceapp.gui.presence_page import PresencePage  # noqa: E402
from faceapp.service import presence  # noqa: E402
from faceapp.service.attendance import export_log  # noqa: E402
from faceapp.service.enroll import enroll_files, update_person  # noqa: E402
from faceapp.service.pipeline import EntryEvent  # noqa: E402
from faceapp.store.attendance import AttendanceStore, NewEntry  # noqa: E402
from faceapp.store.presence import PresenceStore  # noqa: E402
from test_gui_admin import PASSWORD, Script, cancel, type_password  # noqa: E402
from test_gui_day_defects import make_window  # noqa: E402
from test_gui_live import LIN_FRAMES, WAIT, hamilton, replay  # noqa: E402,F401
from conftest import person_photos  # noqa: E402

# The offscreen platform cannot grab the keyboard or raise a popup menu; it says so.
pytestmark = [pytest.mark.gui, pytest.mark.qt_log_ignore("This plugin does not support (propagateSizeHints|grabbing "
                                                         "the keyboard|raise)")]
LIN = "Lin Manuel Miranda"


def local(y, mo, d, h, mi=0):
    return datetime(y, mo, d, h, mi).astimezone()


def read_csv(path):
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.reader(fh))


def test_a_denied_person_raises_one_alert_with_snapshot_and_sound(qtbot, app, hamilton, monkeypatch):
    lin, _ = enroll_files(app, LIN, person_photos("face_recognition_examples", "Lin_Manuel_Miranda"))
    store = AttendanceStore(app.store)
    store.add_group("Band")
    store.add_door("Stage", groups=["Band"])  # Lin is not in the band: denied
    app.update_settings(door="Stage")
    rung = []
    monkeypatch.setattr(alerts, "play_sound", lambda: rung.append(1))
    window, _ = make_window(qtbot, app, camera=replay(hamilton, LIN_FRAMES))
    banner = window.alerts
    window.start()
    qtbot.waitUntil(lambda: banner.current is not None, timeout=WAIT)
    assert banner.isVisible() and banner.title.text() == f"No access: {LIN}" and "at Stage" in banner.detail.text()
    assert banner.snapshot.pixmap() is not None and not banner.snapshot.pixmap().isNull()
    assert rung == [1]
    # He stays in view (the clip loops): no second alert for the same person and track.
    seen = window.recognition_worker.processed
    qtbot.waitUntil(lambda: window.recognition_worker.processed >= seen + 40, timeout=WAIT * 2)
    assert banner.pending() == 1 and rung == [1]
    # He was seen: the Presence page lists him at Stage.
    page = window.page("Presence")
    page.refresh_today()
    assert page.today.rowCount() == 1 and page.today.item(0, 0).text() == LIN
    assert page.today.item(0, 3).text() == "Stage"
    qtbot.mouseClick(banner.ack_button, Qt.MouseButton.LeftButton)  # acknowledged with a click
    assert banner.current is None and not banner.isVisible()
    window.close()
    assert lin in {r.person_id for r in presence.presence_today(app.store)}


def test_alert_rules_unknowns_tracks_sound_and_settings(qtbot, app, monkeypatch):
    rung = []
    monkeypatch.setattr(alerts, "play_sound", lambda: rung.append(1))
    window, gate = make_window(qtbot, app)
    banner = window.alerts
    now = datetime.now().astimezone()

    def event(decision, track, name=None):
        return EntryEvent(1, now, "Main", 1 if name else None, name, decision, 0.8, track, None, None)

    banner.on_events((event("unknown", 1), event("granted", 2, "Ada")))
    assert banner.current is None and rung == []  # unknowns only when chosen; granted never
    gate.run_dialog = Script(cancel)
    window.alert_unknown_action.trigger()
    assert not app.settings.alert_unknown and not window.alert_unknown_action.isChecked()
    gate.run_dialog = Script(type_password(PASSWORD))
    window.alert_unknown_action.trigger()
    assert app.settings.alert_unknown
    banner.on_events((event("unknown", 1),))
    banner.on_events((event("unknown", 1), event("denied", 3, "Bob")))  # track 1 again: not repeated
    assert banner.pending() == 2 and banner.title.text() == "Unknown visitor" and rung == [1, 1]
    assert "1 more alert waiting" in banner.more.text() and banner.snapshot.text() == "no picture"
    qtbot.mouseClick(banner, Qt.MouseButton.LeftButton)  # a click anywhere on the banner
    assert banner.title.text() == "No access: Bob" and banner.more.text() == ""
    window.alert_sound_action.trigger()
    assert not app.settings.alert_sound
    banner.on_events((event("denied", 4, "Eve"),))
    assert rung == [1, 1] and banner.pending() == 2
    # Another camera at the same door has its own track 1: that is another person.
    banner.on_events((replace(event("unknown", 1), camera=1),))
    assert banner.pending() == 3
    banner.on_events((replace(event("unknown", 1), camera=1),))
    assert banner.pending() == 3


def test_presence_page_and_daily_report_last_out_is_the_last_sighting(qtbot, app, tmp_path):
    lin, _ = enroll_files(app, LIN, person_photos("face_recognition_examples", "Lin_Manuel_Miranda")[:1])
    update_person(app, lin, employee_id="E-42", department="Stage crew")
    today = date.today()
    morning = datetime.combine(today, datetime.min.time()).astimezone() + timedelta(hours=8)
    AttendanceStore(app.store).add_entry(NewEntry(morning, "Main", lin, LIN, "granted", 0.3))
    sightings = PresenceStore(app.store)
    sightings.record(today, lin, LIN, "Main", morning, True)
    sightings.record(today, lin, LIN, "Main", morning + timedelta(hours=9, minutes=30), False)
    sightings.record(today, lin, LIN, "Lab", morning + timedelta(hours=3), True)
    out = tmp_path / "report.csv"
    export_log(app, "report", out)
    rows = read_csv(out)
    assert rows[0][3:5] == ["employee_id", "department"]
    assert rows[1][1:5] == [LIN, str(lin), "E-42", "Stage crew"]
    assert rows[1][5].startswith(f"{today.isoformat()}T08:00") and rows[1][6].startswith(f"{today.isoformat()}T17:30")
    export_log(app, "entries", tmp_path / "entries.csv")
    entries = read_csv(tmp_path / "entries.csv")
    assert entries[0][4:6] == ["employee_id", "department"] and entries[1][4:6] == ["E-42", "Stage crew"]

    page = PresencePage(app)
    qtbot.addWidget(page)
    page.show()
    assert page.today.rowCount() == 1
    texts = [page.today.item(0, c).text() for c in range(page.today.columnCount())]
    assert texts == [LIN, "08:00:00", "17:30:00", "Main", "2", "Lab, Main"]


def test_weekly_timesheet_pairs_a_night_shift(qtbot, app, tmp_path, monkeypatch):
    lin, _ = enroll_files(app, LIN, person_photos("face_recognition_examples", "Lin_Manuel_Miranda")[:1])
    update_person(app, lin, employee_id="E-42", department="Night crew")
    att, seen = AttendanceStore(app.store), PresenceStore(app.store)
    # Week 2026-W49 starts on Monday 30 November 2026. Night shift Mon 22:00 -> Tue 06:00, then a
    # day shift Thu 09:00 -> 17:00; a denied try on Friday is no work.
    att.add_entry(NewEntry(local(2026, 11, 30, 22), "Main", lin, LIN, "granted", 0.3))
    seen.record(date(2026, 11, 30), lin, LIN, "Main", local(2026, 11, 30, 22), True)
    seen.record(date(2026, 11, 30), lin, LIN, "Main", local(2026, 11, 30, 23, 59), False)
    seen.record(date(2026, 12, 1), lin, LIN, "Main", local(2026, 12, 1, 0, 1), True)
    seen.record(date(2026, 12, 1), lin, LIN, "Main", local(2026, 12, 1, 6), False)
    att.add_entry(NewEntry(local(2026, 12, 3, 9), "Main", lin, LIN, "granted", 0.3))
    att.add_entry(NewEntry(local(2026, 12, 3, 17), "Main", lin, LIN, "granted", 0.3))
    att.add_entry(NewEntry(local(2026, 12, 4, 9), "Main", lin, LIN, "denied", 0.3))
    out = tmp_path / "week.csv"
    assert cli_main(["--home", str(app.paths.home), "log", "timesheet", "--week", "2026-W49", "-o", str(out)]) == 0
    rows = read_csv(out)
    assert rows[0] == list(presence.TIMESHEET_HEADER)
    assert [(r[4], r[7]) for r in rows[1:]] == [("2026-11-30", "8.00"), ("2026-12-03", "8.00"), ("week total", "16.00")]
    assert rows[1][:4] == [LIN, str(lin), "E-42", "Night crew"]
    # A bad week: one line, non-zero, nothing written.
    bad = tmp_path / "bad.csv"
    assert cli_main(["--home", str(app.paths.home), "log", "timesheet", "--week", "2026-49", "-o", str(bad)]) != 0
    assert not bad.exists()
    # The same in the window.
    window, gate = make_window(qtbot, app)
    page = window.page("Presence")
    page.week_edit.setDate(date(2026, 12, 2))
    assert page.week_code() == "2026-W49" and page.week.rowCount() == 3
    assert [page.week.item(r, 6).text() for r in range(3)] == ["8.00", "8.00", "16.00"]
    assert page.week.item(0, 5).text() == "12-01 06:00"  # the night shift's out, on the next day
    gate.run_dialog = Script(type_password(PASSWORD))
    target = tmp_path / "from-window.csv"
    monkeypatch.setattr("faceapp.gui.admin.ask_save_path", lambda *a: str(target))
    qtbot.mouseClick(page.export_button, Qt.MouseButton.LeftButton)
    assert read_csv(target) == rows


def test_shifts_logic():
    t = local(2026, 11, 30, 22)
    moments = [Presence(1, "A", t + timedelta(hours=h)) for h in (0, 3, 8)]
    moments += [Presence(1, "A", t + timedelta(hours=30)), Presence(1, "A", t + timedelta(hours=38))]
    got = shifts(moments)
    assert [(s.day.isoformat(), s.hours) for s in got] == [("2026-11-30", 8.0), ("2026-12-02", 8.0)]


def right_click(qtbot, widget, pos) -> None:
    from PySide6.QtCore import QPoint
    from PySide6.QtGui import QContextMenuEvent
    from PySide6.QtWidgets import QApplication

    qtbot.mouseClick(widget, Qt.MouseButton.RightButton, pos=pos)
    window = widget.window()
    if window.enroll_unknown.menu is None:  # the platform did not turn the click into a menu event
        QApplication.sendEvent(widget, QContextMenuEvent(QContextMenuEvent.Reason.Mouse, pos,
                                                         widget.mapToGlobal(QPoint(pos))))


def test_right_click_an_unknown_face_enrolls_it_with_its_best_shots(qtbot, app, hamilton):
    from PySide6.QtCore import QPoint, QRectF

    from faceapp.gui.live_view import face_kind, fit_rect

    window, gate = make_window(qtbot, app, camera=replay(hamilton, LIN_FRAMES))
    gate.run_dialog = Script(type_password(PASSWORD))
    window.start()
    view = window.view
    qtbot.waitUntil(lambda: any(face_kind(f) == "unknown" and f.bbox.width > 60 for f in view.faces), timeout=WAIT)
    qtbot.waitUntil(lambda: bool(window.enroll_unknown._best), timeout=WAIT)
    face = next(f for f in view.faces if face_kind(f) == "unknown")
    h, w = view.image.shape[:2]
    target = fit_rect(w, h, QRectF(view.rect()))
    s = target.width() / w
    cx, cy = face.bbox.center
    pos = QPoint(int(target.x() + cx * s), int(target.y() + cy * s))
    assert view.face_at(pos) is not None
    right_click(qtbot, view, pos)
    menu = window.enroll_unknown.menu
    assert menu is not None and [a.text() for a in menu.actions()] == ["Enroll this person…"]
    menu.actions()[0].trigger()
    dialog = window.enroll_unknown.dialogs[-1]
    qtbot.waitUntil(lambda: not dialog.busy and len(dialog.entries) >= 2, timeout=WAIT)
    assert dialog.entries[0].checked.source.startswith("unknown face")
    assert dialog.accepted_shots()
    dialog.name_edit.setText(LIN)
    assert dialog.save()
    assert [p.name for p in app.store.list_people()] == [LIN]
    window.close()


def test_right_click_an_unknown_entry_in_the_log_enrolls_its_snapshot(qtbot, app, hamilton):
    import cv2

    from faceapp.store.attendance import make_snapshot

    frame = hamilton[LIN_FRAMES[10]]
    face = app.engine.detect(frame)[0]
    snap = make_snapshot(frame, face.bbox)
    AttendanceStore(app.store).add_entry(NewEntry(datetime.now().astimezone(), "Main", None, None, "unknown", 0.9,
                                                  snapshot=snap))
    AttendanceStore(app.store).add_entry(NewEntry(datetime.now().astimezone(), "Main", None, None, "unknown", 0.9))
    window, gate = make_window(qtbot, app)
    gate.run_dialog = Script(type_password(PASSWORD))
    page = window.page("Entry log")
    window.tabs.setCurrentWidget(page)
    page.refresh()
    qtbot.waitUntil(lambda: page.model.rowCount() == 2, timeout=WAIT)
    rows = {page.model.entry(r).has_snapshot: r for r in range(2)}
    table = page.table
    # No snapshot, nothing to enroll from: no menu.
    right_click(qtbot, table.viewport(), table.visualRect(table.model().index(rows[False], 1)).center())
    assert window.enroll_unknown.menu is None
    right_click(qtbot, table.viewport(), table.visualRect(table.model().index(rows[True], 1)).center())
    window.enroll_unknown.menu.actions()[0].trigger()
    dialog = window.enroll_unknown.dialogs[-1]
    qtbot.waitUntil(lambda: not dialog.busy and len(dialog.entries) == 1, timeout=WAIT)
    assert dialog.entries[0].ok, dialog.entries[0].checked.reasons
    assert cv2 is not None
