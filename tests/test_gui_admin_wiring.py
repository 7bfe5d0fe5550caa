"""Issue #7 in the whole window: every administrative action a GUI user can reach asks the
administrator password (once per unlock), a refusal changes nothing, a right password does
the action and audits it; door and group changes and CLI log exports are audited too.
The password dialog is driven by code (``gate.run_dialog``), nothing modal ever blocks."""

from __future__ import annotations

import csv
import time
from datetime import datetime, timezone

import cv2
import pytest

from faceapp.gui.qt_env import clean_qt_environment

clean_qt_environment()  # before pytest-qt creates the QApplication

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QMessageBox  # noqa: E402

from conftest import person_photos  # noqa: E402
from faceapp.capture.sources import ArraySource  # noqa: E402
from faceapp.cli import main as cli_main  # noqa: E402
from faceapp.gui import admin, camera_menu, people_page  # noqa: E402
from faceapp.gui.admin import AdminGate, PasswordDialog  # noqa: E402
from faceapp.gui.people_page import DeleteChoice, PeoplePage  # noqa: E402
from faceapp.service import security  # noqa: E402
from faceapp.service.enroll import enroll_files  # noqa: E402
from faceapp.store.attendance import AttendanceStore, NewEntry  # noqa: E402
from faceapp.store.audit import AuditLog  # noqa: E402
from test_gui_admin import FAST, PASSWORD, Script, cancel, type_password  # noqa: E402

GUI = [pytest.mark.gui, pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")]
OBAMA = person_photos("face_recognition_examples", "Barack_Obama")


def actions(app, prefix: str | None = None) -> list[str]:
    return [r.action for r in AuditLog(app.store).records(action=prefix)]


def make_window(qtbot, app, **kw):
    """The real main window (no threads), an administrator password set, the gate locked."""
    from faceapp.gui.main import build_main_window

    window = build_main_window(app, camera=ArraySource([cv2.imread(str(OBAMA[0]))]), start=False, **kw)
    qtbot.addWidget(window)
    security.set_admin_password(app.store, PASSWORD, params=FAST)
    gate = window.admin_gate
    assert isinstance(gate, AdminGate) and not gate.unlocked
    return window, gate


@pytest.fixture
def obama(app) -> int:
    pid, _ = enroll_files(app, "Barack Obama", OBAMA[:2])
    return pid


def gui(fn):
    for mark in GUI:
        fn = mark(fn)
    return fn


@gui
def test_every_people_action_asks_and_a_refusal_changes_nothing(qtbot, app, obama, monkeypatch):
    window, gate = make_window(qtbot, app)
    page = window.page("People")
    assert isinstance(page, PeoplePage) and page.gate is gate
    assert page.select_person(obama) and page.export_button.isEnabled()
    asked_delete = []
    monkeypatch.setattr(people_page, "ask_delete", lambda parent, summary: asked_delete.append(summary)
                        or DeleteChoice(remove_entries=False))
    monkeypatch.setattr(admin, "ask_save_path", lambda *a: pytest.fail("no export without the password"))
    audit_before = actions(app)
    for action in (page.enroll, page.add_photos, page.edit, page.toggle_active, page.delete, page.export_data,
                   page.import_folder, page.recompute):
        script = Script(cancel)
        gate.run_dialog = script
        assert not action(), action.__name__
        assert [type(d) for d in script.shown] == [PasswordDialog], action.__name__
    assert not page.apply_edit(obama, name="Someone Else")
    person = app.store.get_person(obama)
    assert (person.name, person.active, person.n_photos) == ("Barack Obama", True, 2) and asked_delete == []
    assert actions(app) == audit_before  # refusals write nothing but the log line

    # Removing one photo from the photo viewer asks too; viewing does not.
    gate.run_dialog = Script()  # would refuse; viewing must not even ask
    photos = page.view_photos()
    assert photos is not None and photos.list.count() == 2 and gate.run_dialog.shown == []
    photos.list.item(0).setSelected(True)
    gate.run_dialog = Script(cancel)
    monkeypatch.setattr(QMessageBox, "question", staticmethod(lambda *a, **k: pytest.fail("asked before the password")))
    photos.remove_selected()
    assert app.store.get_person(obama).n_photos == 2 and len(gate.run_dialog.shown) == 1
    photos.close()


@gui
def test_delete_with_the_right_password_is_done_and_audited(qtbot, app, obama, monkeypatch):
    window, gate = make_window(qtbot, app)
    page = window.page("People")
    page.select_person(obama)
    monkeypatch.setattr(people_page, "ask_delete", lambda parent, summary: DeleteChoice(remove_entries=False))
    gate.run_dialog = Script(cancel)
    qtbot.mouseClick(page.delete_button, Qt.MouseButton.LeftButton)
    assert [p.id for p in app.store.list_people()] == [obama]
    script = Script(type_password(PASSWORD))
    gate.run_dialog = script
    qtbot.mouseClick(page.delete_button, Qt.MouseButton.LeftButton)
    assert app.store.list_people() == [] and page.person_ids() == []
    removal = AuditLog(app.store).records(action="person.remove")[0]
    assert removal.actor == admin.ACTOR_ADMIN and removal.target == f"person:{obama}"
    assert gate.unlocked and len(script.shown) == 1


@gui
def test_subject_access_export_from_the_people_page(qtbot, app, obama, tmp_path, monkeypatch):
    window, gate = make_window(qtbot, app)
    page = window.page("People")
    page.select_person(obama)
    monkeypatch.setattr(admin, "ask_save_path", lambda *a: str(tmp_path / "obama"))
    messages = []
    monkeypatch.setattr(admin, "show_message", lambda parent, title, text, error=False: messages.append(title))
    gate.run_dialog = Script(type_password(PASSWORD))
    assert page.export_button.text() == "E&xport stored data…"
    qtbot.mouseClick(page.export_button, Qt.MouseButton.LeftButton)
    assert (tmp_path / "obama.zip").is_file() and messages == ["Export done"]
    assert actions(app)[:2] == ["person.export", "admin.login"]


@gui
def test_threshold_slider_needs_the_password_and_snaps_back(qtbot, app):
    window, gate = make_window(qtbot, app)
    window.show()
    slider = window.threshold_slider
    before, units = app.threshold, slider.value()
    script = Script(cancel)
    gate.run_dialog = script
    qtbot.keyClick(slider, Qt.Key.Key_Right)
    slider.triggerAction(slider.SliderAction.SliderPageStepAdd)  # a click on the groove
    slider.setSliderDown(True)  # a drag of the handle: asked on release, not mid-drag (issue #12)
    slider.setSliderPosition(units + 20)
    assert len(script.shown) == 2 and slider.value() == units
    slider.setSliderDown(False)
    assert len(script.shown) == 3 and not slider.isSliderDown()
    assert slider.value() == units and window.threshold == pytest.approx(before)
    window.save_threshold()
    assert app.threshold == before and "threshold.change" not in actions(app)

    # Code (the calibration dialog, after its own check) moves it without asking.
    window.set_threshold(before - 0.02)
    assert len(script.shown) == 3
    window.set_threshold(before)
    window.save_threshold()

    script = Script(type_password(PASSWORD))
    gate.run_dialog = script
    qtbot.keyClick(slider, Qt.Key.Key_Right)
    qtbot.keyClick(slider, Qt.Key.Key_Right)  # unlocked: no second question
    assert len(script.shown) == 1 and slider.value() == units + 2
    qtbot.waitUntil(lambda: app.threshold == pytest.approx(before + 0.02), timeout=5000)  # saved shortly after
    change = AuditLog(app.store).records(action="threshold.change")[0]
    assert change.actor == admin.ACTOR_ADMIN
    window.shutdown()


@gui
def test_exporting_the_entry_log_needs_the_password_and_is_audited(qtbot, app, tmp_path):
    AttendanceStore(app.store).add_entry(NewEntry(datetime.now(timezone.utc), "Main", None, None, "unknown", 0.9))
    window, gate = make_window(qtbot, app)
    page = window.page("Entry log")
    page.refresh()
    target = tmp_path / "entries ü.csv"
    page.ask_save_path = lambda title, suggested: str(target)
    gate.run_dialog = Script(cancel)
    qtbot.mouseClick(page.export_button, Qt.MouseButton.LeftButton)
    assert not target.exists() and "log.export" not in actions(app)
    gate.run_dialog = Script(type_password(PASSWORD))
    qtbot.mouseClick(page.export_button, Qt.MouseButton.LeftButton)
    with open(target, encoding="utf-8", newline="") as fh:
        assert len(list(csv.reader(fh))) == 2
    export = AuditLog(app.store).records(action="log.export")[0]
    assert export.changes == {"path": str(target), "rows": 1, "kind": "entries"} and export.actor == admin.ACTOR_ADMIN
    report = tmp_path / "report.csv"
    page.ask_save_path = lambda title, suggested: str(report)
    gate.run_dialog = Script()  # still unlocked: not asked
    qtbot.mouseClick(page.report_button, Qt.MouseButton.LeftButton)
    assert report.is_file() and gate.run_dialog.shown == []
    assert AuditLog(app.store).records(action="log.export")[0].changes["kind"] == "report"


@gui
def test_leaving_reception_needs_the_password(qtbot, app):
    window, gate = make_window(qtbot, app, reception=True)
    assert window.reception
    gate.run_dialog = Script(cancel, cancel)
    window.leave_button.click()
    assert not window.request_leave_reception()
    window.reception_action.trigger()  # Ctrl+Shift+R
    assert window.reception and window.menuBar().isHidden() and len(gate.run_dialog.shown) == 3
    gate.run_dialog = Script(type_password(PASSWORD))
    window.leave_button.click()
    assert not window.reception and gate.unlocked and not window.menuBar().isHidden()
    window.set_reception_mode(True, save=False)
    assert not gate.unlocked  # the next administrator has to give the password again


@gui
def test_camera_menu_needs_the_password(qtbot, app, monkeypatch):
    window, gate = make_window(qtbot, app)
    monkeypatch.setattr(camera_menu.QInputDialog, "getInt",
                        staticmethod(lambda *a, **k: pytest.fail("asked for a webcam before the password")))
    camera_actions = {a.text(): a for a in window.camera_menu.actions()}
    loop = app.settings.loop_video
    assert window.loop_action.isChecked() == loop
    gate.run_dialog = Script(cancel, cancel)
    camera_actions["&Webcam…"].trigger()
    window.loop_action.trigger()
    assert window.loop_action.isChecked() == loop and app.settings.loop_video == loop
    assert len(gate.run_dialog.shown) == 2
    gate.run_dialog = Script(type_password(PASSWORD))
    window.loop_action.trigger()
    assert window.loop_action.isChecked() != loop and app.settings.loop_video != loop


@gui
def test_wrong_passwords_slow_down_without_sleeping_the_gui(qtbot, app, monkeypatch):
    window, gate = make_window(qtbot, app, reception=True)

    def three_wrong_then_wait_then_right(d: PasswordDialog) -> None:
        with monkeypatch.context() as m:
            m.setattr(time, "sleep", lambda *_: pytest.fail("the GUI thread must not sleep"))
            for guess in ("guess one", "guess two", "guess three"):
                d.password.setText(guess)
                assert not d.try_password()
        assert "try again in" in d.message.text() and not d.ok_button.isEnabled()
        assert d.ok_button.text().startswith("Wait ")
        # The countdown runs on the event loop: it re-enables the button when the wait is over.
        qtbot.waitUntil(d.ok_button.isEnabled, timeout=10000)
        assert d.ok_button.text() == "Unlock"
        type_password(PASSWORD)(d)

    gate.run_dialog = Script(three_wrong_then_wait_then_right)
    assert window.request_leave_reception() and not window.reception
    assert actions(app, "admin.")[:4] == ["admin.login"] + ["admin.login_failed"] * 3


@gui
def test_window_pages_without_a_gate_still_work(qtbot, app, obama):
    """A page used on its own (no window, no gate) allows its actions."""
    page = PeoplePage(app)
    qtbot.addWidget(page)
    assert admin.find_gate(page) is None and page.apply_edit(obama, department="Office")
    assert app.store.get_person(obama).department == "Office"


def test_door_and_group_changes_and_cli_exports_are_audited(app, tmp_path, capsys):
    att = AttendanceStore(app.store)
    pid, _ = enroll_files(app, "Barack Obama", OBAMA[:1])
    att.add_group("Staff")
    att.add_door("Lab", hours="mon-fri 7:00-19:00", groups=["staff"])
    att.assign(pid, "staff")
    att.assign(pid, "staff")  # already a member: nothing changes, nothing audited
    att.allow_group("lab", "staff", hours="sat 10:00-12:00")
    att.set_door_hours("lab", None)
    att.disallow_group("lab", "staff", open_door=True)
    att.unassign(pid, "staff")
    att.remove_group("staff")
    att.remove_door("lab")
    rows = AuditLog(app.store).records(newest_first=False)
    mine = [(r.action, r.target) for r in rows if r.action.startswith(("door.", "group."))]
    assert mine == [("group.add", "group:Staff"), ("door.add", "door:Lab"), ("group.assign", f"person:{pid}"),
                    ("door.allow", "door:Lab"), ("door.hours", "door:Lab"), ("door.disallow", "door:Lab"),
                    ("group.unassign", f"person:{pid}"), ("group.remove", "group:Staff"),
                    ("door.remove", "door:Lab")]
    details = {r.action: r.changes for r in rows}
    assert details["door.add"]["groups"] == ["Staff"]
    assert details["door.hours"] == {"hours": ["Mon-Fri 07:00-19:00", None]}
    assert details["door.disallow"] == {"group": "Staff", "open_door": True}

    att.add_entry(NewEntry(datetime.now(timezone.utc), "Main", pid, "Barack Obama", "granted", 0.3))
    out = tmp_path / "log.csv"
    assert cli_main(["--home", str(app.paths.home), "log", "export", "-o", str(out)]) == 0
    capsys.readouterr()
    export = AuditLog(app.store).records(action="log.export")[0]
    assert export.changes == {"path": str(out), "rows": 1, "kind": "entries"}
