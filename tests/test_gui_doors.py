"""Issue #12: doors and access groups in the window (Doors page, groups on the Enroll and Edit
dialogs, which door this window is), each change behind the administrator password and audited."""

from __future__ import annotations

import pytest

from faceapp.gui.qt_env import clean_qt_environment

clean_qt_environment()  # before pytest-qt creates the QApplication

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QDialog  # noqa: E402

from conftest import person_photos  # noqa: E402
from faceapp.gui import admin, doors_page, people_page  # noqa: E402
from faceapp.gui.doors_page import DoorsPage  # noqa: E402
from faceapp.service.enroll import enroll_files  # noqa: E402
from faceapp.store.attendance import AttendanceStore  # noqa: E402
from faceapp.store.audit import AuditLog  # noqa: E402
from test_gui_admin import PASSWORD, Script, cancel, type_password  # noqa: E402
from test_gui_day_defects import make_window  # noqa: E402

pytestmark = [pytest.mark.gui, pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")]
OBAMA = person_photos("face_recognition_examples", "Barack_Obama")


class Answers:
    """Stands in for ask_text: scripted answers, records the questions."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.asked = []

    def __call__(self, parent, title, label, text=""):
        self.asked.append((title, label, text))
        return self.answers.pop(0)


def audit(app, action):
    return AuditLog(app.store).records(action=action)


def click(qtbot, button):
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def test_doors_page_adds_renames_sets_hours_groups_and_removes(qtbot, app, monkeypatch):
    window, gate = make_window(qtbot, app)
    page = window.page("Doors")
    assert isinstance(page, DoorsPage)
    store = AttendanceStore(app.store)
    # Refused: nothing asked, nothing changed.
    gate.run_dialog = Script(cancel)
    monkeypatch.setattr(doors_page, "ask_text", lambda *a: pytest.fail("asked before the password"))
    click(qtbot, page.add_button)
    assert store.doors() == [] and len(gate.run_dialog.shown) == 1

    gate.run_dialog = Script(type_password(PASSWORD))
    answers = Answers("Main entrance", "Mon-Fri 07:00-19:00", "Staff", "Stage door", "Mon-Fri 22:00-06:00")
    monkeypatch.setattr(doors_page, "ask_text", answers)
    monkeypatch.setattr(doors_page, "confirm", lambda *a: True)
    window.tabs.setCurrentWidget(page)
    click(qtbot, page.add_button)
    assert [(d.name, d.hours) for d in store.doors()] == [("Main entrance", "Mon-Fri 07:00-19:00")]
    assert page.door_names() == ["Main entrance"] and page.table.item(0, 4).text() == "this window"
    click(qtbot, page.add_group_button)
    assert [g.name for g in store.groups()] == ["Staff"] and page.groups.count() == 1
    page.groups.item(0).setCheckState(Qt.CheckState.Checked)  # tick: the door admits Staff
    assert store.door("Main entrance").groups == (("Staff", None),)
    assert page.table.item(0, 2).text() == "Staff"
    click(qtbot, page.rename_button)
    assert [d.name for d in store.doors()] == ["Stage door"]
    # This window was that door: it follows the rename (settings, status bar).
    assert app.settings.door == "Stage door" and window.door_indicator.text() == "Door: Stage door"
    click(qtbot, page.hours_button)
    assert store.door("Stage door").hours == "Mon-Fri 22:00-06:00"
    # Unticking the last group opens the door to everyone: confirmed, then done.
    page.groups.item(0).setCheckState(Qt.CheckState.Unchecked)
    assert store.door("Stage door").groups == ()
    assert len(gate.run_dialog.shown) == 1  # one password for the whole session
    for action in ("door.add", "group.add", "door.allow", "door.rename", "door.hours", "door.disallow"):
        rows = audit(app, action)
        assert rows and rows[0].actor == admin.ACTOR_ADMIN, action

    # Which door this window is: from the page and from the status bar.
    answers.answers = ["Side door", ""]
    click(qtbot, page.add_button)
    assert page.select_door("Side door")
    click(qtbot, page.use_button)
    assert app.settings.door == "Side door" and window.live.current_door == "Side door"
    assert window.door_indicator.text() == "Door: Side door" and audit(app, "window.door")[0].details
    assert window.door_indicator.choices() == ["Side door", "Stage door"]
    gate.lock()  # choosing the window's door is an administrator action
    gate.run_dialog = Script(cancel)
    assert not window.door_indicator.choose("Stage door") and app.settings.door == "Side door"
    gate.run_dialog = Script(type_password(PASSWORD))
    assert window.door_indicator.choose("Stage door") and window.door_indicator.text() == "Door: Stage door"

    page.select_door("Side door")
    click(qtbot, page.remove_button)
    assert [d.name for d in store.doors()] == ["Stage door"] and audit(app, "door.remove")


def test_groups_on_the_enroll_and_edit_dialogs(qtbot, app, engine, monkeypatch):
    store = AttendanceStore(app.store)
    store.add_group("Staff")
    store.add_group("Night shift")
    pid, _ = enroll_files(app, "Barack Obama", OBAMA[:1])
    window, gate = make_window(qtbot, app)
    people = window.page("People")
    gate.run_dialog = Script(type_password(PASSWORD))
    people.select_person(pid)

    def tick_night_shift(dialog, *_a):
        assert dialog.groups is not None and dialog.groups.checked() == []
        dialog.groups.set_checked("Night shift")
        return QDialog.DialogCode.Accepted
    monkeypatch.setattr(people_page.PersonEditDialog, "exec", tick_night_shift)
    click(qtbot, people.edit_button)
    assert store.person_groups(pid) == ["Night shift"]
    assert audit(app, "group.assign")[0].actor == admin.ACTOR_ADMIN

    # A new person gets groups at enrollment.
    from faceapp.gui.enroll_dialog import EnrollDialog
    from test_gui_enroll import add_files

    dialog = EnrollDialog(app)
    qtbot.addWidget(dialog)
    dialog.show()
    assert [dialog.groups.item(i).text() for i in range(dialog.groups.count())] == ["Night shift", "Staff"]
    dialog.name_edit.setText("Joe Biden")
    dialog.groups.set_checked("Staff")
    add_files(qtbot, monkeypatch, dialog, person_photos("face_recognition_examples", "Joe_Biden")[:1])
    assert dialog.save()
    assert store.person_groups(dialog.person_id) == ["Staff"]
