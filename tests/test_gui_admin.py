"""Issue #7 in the window: the administrator gate (first-run password, slow-down, unlock
timeout), the audit-log page and the privacy dialog (offscreen; dialogs are driven by code,
nothing modal ever blocks)."""

from __future__ import annotations

import csv
from datetime import datetime, timedelta, timezone

import cv2
import pytest

from faceapp.gui.qt_env import clean_qt_environment

clean_qt_environment()  # before pytest-qt creates the QApplication

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QDialog  # noqa: E402

from conftest import person_photos  # noqa: E402
from faceapp.core.settings import DEFAULT_THRESHOLDS  # noqa: E402
from faceapp.gui import admin  # noqa: E402
from faceapp.gui.admin import AdminGate, AuditPage, PasswordDialog, PrivacySettingsDialog, SetPasswordDialog  # noqa: E402
from faceapp.service import security  # noqa: E402
from faceapp.service.enroll import enroll_files  # noqa: E402
from faceapp.store.attendance import AttendanceStore, NewEntry, make_snapshot  # noqa: E402
from faceapp.store.audit import AuditLog  # noqa: E402

pytestmark = [pytest.mark.gui, pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")]

PASSWORD = "open sesame 42"
FAST = security.ScryptParams(n=2 ** 10)


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class Script:
    """Stands in for ``dialog.exec()``: runs ``steps(dialog)`` and returns the dialog's result."""

    def __init__(self, *steps) -> None:
        self.steps = list(steps)
        self.shown: list[QDialog] = []

    def __call__(self, dialog: QDialog) -> int:
        self.shown.append(dialog)
        step = self.steps.pop(0) if self.steps else (lambda d: d.reject())
        step(dialog)
        result = dialog.result()
        dialog.deleteLater()
        return result


def type_password(text: str):
    def step(d: PasswordDialog) -> None:
        d.password.setText(text)
        d.try_password()
    return step


def cancel(d: QDialog) -> None:
    d.reject()


def gate_for(app, **kw) -> AdminGate:
    kw.setdefault("clock", Clock())
    kw.setdefault("wall_clock", Clock())
    return AdminGate(app, **kw)


def test_first_run_asks_to_set_the_password(qtbot, app):
    gate = gate_for(app)
    assert app.store.actor == admin.ACTOR_LOCKED and not gate.has_password

    def set_password(d: SetPasswordDialog) -> None:
        assert d.first_run and "Set the administrator password" == d.windowTitle()
        d.password.setText("short")
        d.confirm.setText("short")
        assert not d.try_set() and "at least 8" in d.message.text()
        d.password.setText(PASSWORD)
        d.confirm.setText(PASSWORD + "!")
        assert not d.try_set() and d.message.text() == "The two passwords differ."
        d.confirm.setText(PASSWORD)
        assert d.try_set()

    gate.run_dialog = Script(set_password)
    with qtbot.waitSignal(gate.lockChanged) as unlocked:
        assert gate.require(None, "enroll a person")
    assert unlocked.args == [True] and gate.unlocked and app.store.actor == admin.ACTOR_ADMIN
    assert security.check_admin_password(app.store, PASSWORD).ok
    assert "admin.password_set" in [r.action for r in AuditLog(app.store).records()]


def test_unlock_lasts_a_few_minutes_then_asks_again(qtbot, app):
    security.set_admin_password(app.store, PASSWORD, params=FAST)
    clock = Clock()
    gate = gate_for(app, unlock_minutes=5, clock=clock)
    texts = []

    def read_and_cancel(d: PasswordDialog) -> None:
        texts.extend(label.text() for label in d.findChildren(admin.QLabel))
        d.reject()

    script = Script(read_and_cancel, type_password(PASSWORD))
    gate.run_dialog = script
    assert not gate.require(None, "delete a person")  # cancelled
    assert "To delete a person, enter the administrator password." in texts
    assert not gate.unlocked and app.store.actor == admin.ACTOR_LOCKED
    assert gate.require(None, "delete a person")
    clock.t += 4 * 60
    assert gate.require(None, "change the threshold") and len(script.shown) == 2  # no dialog while unlocked
    assert 50 < gate.remaining() <= 60
    clock.t += 61
    assert not gate.unlocked and app.store.actor == admin.ACTOR_LOCKED
    assert not gate.require(None, "change the threshold") and len(script.shown) == 3  # asked again
    gate.run_dialog = Script(type_password(PASSWORD))
    assert gate.require(None, "export the log")
    with qtbot.waitSignal(gate.lockChanged) as locked:
        gate.lock()
    assert locked.args == [False] and not gate.unlocked and gate.remaining() == 0


def test_wrong_passwords_count_down_in_the_dialog(qtbot, app):
    security.set_admin_password(app.store, PASSWORD, params=FAST)
    wall = Clock()
    gate = gate_for(app, wall_clock=wall)

    def three_wrong_then_wait(d: PasswordDialog) -> None:
        for guess in ("guess one", "guess two"):
            d.password.setText(guess)
            assert not d.try_password()
            assert d.message.text() == "Wrong password" and d.ok_button.isEnabled()
        d.password.setText("guess three")
        assert not d.try_password()
        assert d.message.text() == "Wrong password; try again in 1 s"
        assert not d.ok_button.isEnabled() and d.ok_button.text() == "Wait 1 s" and d.password.text() == ""
        d.password.setText(PASSWORD)
        assert not d.try_password()  # the button is off: nothing is checked during the wait
        wall.t += 1.5
        d._tick()  # what the dialog's timer does every 250 ms
        assert d.ok_button.isEnabled() and d.ok_button.text() == "Unlock"
        assert d.try_password()

    gate.run_dialog = Script(three_wrong_then_wait)
    assert gate.require(None, "open the People page")
    failures = [r for r in AuditLog(app.store).records() if r.action == "admin.login_failed"]
    assert len(failures) == 3 and all(r.actor == admin.ACTOR_LOCKED for r in failures)

    # The wait survives closing the dialog: a new one opens with its button disabled.
    gate.lock()
    for i in range(3):
        security.check_admin_password(app.store, f"wrong {i}", now=wall.t)
    dialog = PasswordDialog(app, "unlock", clock=wall)
    qtbot.addWidget(dialog)
    assert not dialog.ok_button.isEnabled() and dialog._timer.isActive()
    dialog.reject()
    assert not dialog._timer.isActive()


def test_protect_wraps_actions_and_password_change(qtbot, app):
    security.set_admin_password(app.store, PASSWORD, params=FAST)
    gate = gate_for(app)
    calls = []
    slot = gate.protect(None, "open the settings", lambda: calls.append("ran"))
    gate.run_dialog = Script(cancel)
    slot(True)  # a QAction's triggered(bool)
    assert calls == []
    gate.run_dialog = Script(type_password(PASSWORD))
    slot()
    slot()
    assert calls == ["ran", "ran"]

    def new_password(d: SetPasswordDialog) -> None:
        assert not d.first_run
        d.password.setText("a brand new one")
        d.confirm.setText("a brand new one")
        d.try_set()

    gate.run_dialog = Script(new_password)
    assert gate.change_password(None)
    assert security.check_admin_password(app.store, "a brand new one").ok
    change = AuditLog(app.store).records(action="admin.password_change")[0]
    assert change.actor == admin.ACTOR_ADMIN


@pytest.fixture
def history(app):
    """A few real administrative actions: enrolment, edits, a threshold change, a deletion."""
    app.store.actor = "cli:alice"
    pid, _ = enroll_files(app, "Barack Obama", person_photos("face_recognition_examples", "Barack_Obama")[:2],
                          employee_id="P-44")
    bid, _ = enroll_files(app, "Joe Biden", person_photos("face_recognition_examples", "Joe_Biden")[:1])
    app.store.actor = "gui:admin"
    app.store.update_person(pid, department="Office", employee_id="P-45")
    app.set_threshold(0.6)
    app.update_settings(snapshot_retention_days=14)
    app.store.remove_person(bid)
    app.audit("log.export", {"path": "/home/alice/=entries.csv", "rows": 12})
    return pid


def test_audit_page_lists_filters_and_exports(qtbot, app, history, tmp_path, monkeypatch):
    gate = gate_for(app)
    security.set_admin_password(app.store, PASSWORD, params=FAST)
    page = AuditPage(app, gate)
    qtbot.addWidget(page)
    page.resize(1100, 340)
    page.show()
    model = page.model
    n = model.rowCount()
    assert n == 8
    newest = [[model.text(model.record(r), c) for c in range(1, 5)] for r in (0, 1)]
    assert newest == [[admin.ACTOR_LOCKED, "admin.password_set", "admin", "n: 1024, p: 1, r: 8, scheme: 'scrypt'"],
                      ["gui:admin", "log.export", "", "path: '/home/alice/=entries.csv', rows: 12"]]
    rows = {model.record(r).action: r for r in range(n)}
    # a removed person's audit rows keep the id, not who they were (#11 item 6)
    assert model.about(model.record(rows["person.remove"])) == f"removed person #{history + 1}"
    assert model.about(model.record(rows["person.update"])) == f"Barack Obama (#{history})"
    default = DEFAULT_THRESHOLDS["w600k_mbf"]
    assert model.text(model.record(rows["threshold.change"]), 4) == f"thresholds.w600k_mbf: {default} → 0.6"
    index = model.index(0, 4)
    assert not (model.flags(index) & Qt.ItemFlag.ItemIsEditable)
    assert page.status.text().startswith("8 rows")
    shot = page.grab().toImage()
    assert shot.save(str(tmp_path / "audit.png")) and (tmp_path / "audit.png").stat().st_size > 5_000
    # The page drew its table: more than a blank background (many distinct colours of text).
    colours = {shot.pixel(x, y) for x in range(0, shot.width(), 7) for y in range(0, shot.height(), 5)}
    assert len(colours) > 20

    page.filter.setText("Biden")   # removed: the log no longer says who they were (#11 item 6) ...
    page.refresh()
    assert model.rowCount() == 0
    page.filter.setText(f"removed person #{history + 1}")   # ... but what was done to them stays
    page.refresh()
    assert {model.record(r).action for r in range(model.rowCount())} == {"person.add", "person.remove"}
    page.filter.clear()

    target = tmp_path / "audit 'export' ü.csv"
    monkeypatch.setattr(admin, "ask_save_path", lambda *a: str(target))
    gate.run_dialog = Script(cancel)
    assert page.export_csv() is None and not target.exists()  # no password, no export
    gate.run_dialog = Script(type_password(PASSWORD))
    assert page.export_csv() == target
    with open(target, encoding="utf-8", newline="") as fh:
        table = list(csv.reader(fh))
    assert len(table) == 1 + 8 + 1  # header, rows, and the login written before the export
    assert [r[2] for r in table[1:]][-2:] == ["admin.password_set", "admin.login"]  # oldest first
    assert "Wrote" in page.status.text()
    assert model.record(0).action == "audit.export" and model.record(0).actor == admin.ACTOR_ADMIN


def test_privacy_dialog_previews_and_applies(qtbot, app, history):
    att = AttendanceStore(app.store)
    image = cv2.imread(str(person_photos("face_recognition_examples", "Barack_Obama")[0]))
    face = app.engine.analyze(image)[0]
    now = datetime.now(timezone.utc)
    for days in (200, 20, 1):
        att.add_entry(NewEntry(now - timedelta(days=days), "Door", None, None, "unknown", 0.9, None, None,
                               make_snapshot(image, face.bbox)))
    dialog = PrivacySettingsDialog(app)
    qtbot.addWidget(dialog)
    assert dialog.snapshot_days.value() == 14 and dialog.entry_days.value() == 0
    assert dialog.entry_days.text() == "forever"
    assert dialog.preview.text() == "Applying now deletes 2 snapshot(s) and 0 entries."
    dialog.entry_days.setValue(90)
    assert dialog.preview.text() == "Applying now deletes 1 snapshot(s) and 1 entry."
    report = dialog.apply()
    assert (report.snapshots, report.entries) == (1, 1) and dialog.result() == QDialog.DialogCode.Accepted
    assert app.settings.entry_retention_days == 90
    assert app.store.load_settings().entry_retention_days == 90
    actions = [r.action for r in AuditLog(app.store).records(limit=2)]
    assert actions == ["retention.purge", "settings.change"]


def test_subject_export_and_backup_from_the_gui(qtbot, app, history, tmp_path, monkeypatch):
    gate = gate_for(app)
    security.set_admin_password(app.store, PASSWORD, params=FAST)
    gate.run_dialog = Script(type_password(PASSWORD))
    messages = []
    monkeypatch.setattr(admin, "show_message", lambda parent, title, text, error=False: messages.append((title, error)))
    monkeypatch.setattr(admin, "ask_save_path", lambda *a: str(tmp_path / "obama data"))
    path = admin.export_person_dialog(None, app, history, gate)
    assert path == tmp_path / "obama data.zip" and path.is_file()
    monkeypatch.setattr(admin, "ask_save_path", lambda *a: str(tmp_path / "b.faceapp-backup"))
    assert admin.backup_dialog(None, app, gate) == tmp_path / "b.faceapp-backup"
    monkeypatch.setattr(admin, "ask_save_path", lambda *a: str(tmp_path / "missing" / "b.faceapp-backup"))
    assert admin.backup_dialog(None, app, gate) is None
    assert messages == [("Export done", False), ("Backup done", False), ("Backup failed", True)]
    monkeypatch.setattr(admin, "ask_save_path", lambda *a: "")  # cancelled
    assert admin.backup_dialog(None, app, gate) is None
    assert [r.action for r in AuditLog(app.store).records(limit=2)] == ["backup.create", "person.export"]


def test_install_admin_guards_the_admin_pages(qtbot, app):
    from faceapp.capture.sources import ArraySource
    from faceapp.gui.main import build_main_window

    image = cv2.imread(str(person_photos("face_recognition_examples", "Barack_Obama")[0]))
    window = build_main_window(app, camera=ArraySource([image]), start=False)
    qtbot.addWidget(window)
    security.set_admin_password(app.store, PASSWORD, params=FAST)
    gate = window.admin_gate  # build_main_window installs it (admin.install_admin) before the other pages
    assert isinstance(gate, AdminGate) and window.page("Audit log") is not None
    menu = [a for a in window.menuBar().actions() if a.text() == "&Admin"][0].menu()
    assert [a.text() for a in menu.actions() if a.text()] == [
        "&Privacy and retention…", "&Back up database…", "&Change administrator password…",
        "&Lock administrator actions"]
    audit_index = window.tabs.indexOf(window.page("Audit log"))
    gate.run_dialog = Script(cancel)
    window.tabs.setCurrentIndex(audit_index)
    assert window.tabs.currentIndex() == 0  # refused: back on the Live page
    gate.run_dialog = Script(type_password(PASSWORD))
    window.tabs.setCurrentIndex(audit_index)
    assert window.tabs.currentIndex() == audit_index and gate.unlocked
    window.set_reception_mode(True, save=False)
    assert not gate.unlocked  # reception mode locks at once
    assert all(not a.isEnabled() for a in menu.actions() if a.text())
    window.set_reception_mode(False, save=False)
    window.shutdown()
