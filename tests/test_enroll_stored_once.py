"""A picture a person already has is never stored for them a second time, whichever way the
photos are added: the service call, and every "add to this person" path of the enrollment dialog."""

from __future__ import annotations

import pytest

from faceapp.gui.qt_env import clean_qt_environment

clean_qt_environment()  # before pytest-qt creates the QApplication

from PySide6.QtCore import Qt  # noqa: E402

from conftest import person_photos  # noqa: E402
from faceapp.gui import enroll_dialog  # noqa: E402
from faceapp.service import enroll  # noqa: E402
from test_gui_enroll import WAIT, Choices, add_files, open_dialog  # noqa: E402

OBAMA = person_photos("face_recognition_examples", "Barack_Obama")


def sources(app, person_id: int) -> list[str]:
    return sorted(p.source for p in app.store.photos(person_id))


def test_add_new_shots_leaves_out_stored_pictures(app, engine):
    shots = [enroll.check_file(engine, f) for f in (OBAMA[0], OBAMA[2])]
    pid = enroll.save_person(app, "Barack Obama", shots[:1])
    ids, skipped = enroll.add_new_shots(app, pid, shots)
    assert len(ids) == 1 and [s.source for s in skipped] == [str(OBAMA[0])]
    ids, skipped = enroll.add_new_shots(app, pid, shots)  # all stored now: nothing is written
    assert ids == [] and len(skipped) == 2
    assert sources(app, pid) == sorted([str(OBAMA[0]), str(OBAMA[2])])


@pytest.mark.gui
@pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")
def test_new_person_dialog_adds_only_pictures_the_enrolled_person_lacks(qtbot, app, engine, monkeypatch):
    obama = enroll.save_person(app, "Barack Obama", [enroll.check_file(engine, OBAMA[0])])

    # The same name: "Add these photos to Barack Obama" stores just the photo he has not got.
    dialog = open_dialog(qtbot, app)
    qtbot.keyClicks(dialog.name_edit, "Barack Obama")
    add_files(qtbot, monkeypatch, dialog, [OBAMA[0], OBAMA[2]])
    choices = Choices(0)
    monkeypatch.setattr(enroll_dialog, "ask_choice", choices)
    with qtbot.waitSignal(dialog.enrolled, timeout=WAIT):
        qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert choices.asked[0][1] == ["Add these photos to Barack Obama", "Go back"]
    assert sources(app, obama) == sorted([str(OBAMA[0]), str(OBAMA[2])])
    assert len(dialog.saved_photo_ids) == 1

    # Another name, but his face and only pictures he has: nothing is added, the dialog says so.
    dialog = open_dialog(qtbot, app)
    qtbot.keyClicks(dialog.name_edit, "B. Obama")
    add_files(qtbot, monkeypatch, dialog, [OBAMA[2]])
    choices = Choices(0)
    monkeypatch.setattr(enroll_dialog, "ask_choice", choices)
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert choices.asked[0][1][0] == "Add these photos to Barack Obama"
    assert app.store.get_person(obama).n_photos == 2 and [p.name for p in app.store.list_people()] == ["Barack Obama"]
    assert dialog.isVisible() and "already has these pictures" in dialog.status.text()
    dialog.reject()
