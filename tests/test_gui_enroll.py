"""Enrollment dialog, People page, import and recompute dialogs (pytest-qt, offscreen), with
real photos and the real Hamilton clip as the camera."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest

from faceapp.gui.qt_env import clean_qt_environment

# opencv-python points Qt at its own plugins and fonts on import; undo that before
# pytest-qt creates the QApplication.
clean_qt_environment()

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QDialog, QFileDialog, QMessageBox  # noqa: E402

from conftest import FACES, HAMILTON, person_photos  # noqa: E402
from faceapp.capture.images import load_image  # noqa: E402
from faceapp.capture.sources import ArraySource, VideoFileSource  # noqa: E402
from faceapp.gui import enroll_dialog, people_page  # noqa: E402
from faceapp.gui.enroll_dialog import EnrollDialog  # noqa: E402
from faceapp.gui.import_dialog import ImportDialog  # noqa: E402
from faceapp.gui.people_page import DeleteChoice, PeoplePage  # noqa: E402
from faceapp.service import enroll, recognize, templates  # noqa: E402
from test_enroll import bad_inputs  # noqa: E402

pytestmark = [
    pytest.mark.gui,
    pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints"),
]

WAIT = 60_000  # ms; generous on a shared machine, never a timing assert
OBAMA = person_photos("face_recognition_examples", "Barack_Obama")
BIDEN = person_photos("face_recognition_examples", "Joe_Biden")
LIN_PHOTO = FACES / "face_recognition_examples" / "Lin_Manuel_Miranda" / "lin-manuel-miranda.png"
# Lin-Manuel Miranda alone on stage, turning a little: frames 85-210 of the clip.
LIN_FRAMES = range(85, 211, 3)


@pytest.fixture(scope="module")
def lin_frames() -> list[np.ndarray]:
    """Frames of the clip where one person faces the camera, decoded through VideoFileSource."""
    src = VideoFileSource(HAMILTON)
    src.open()
    wanted, frames = set(LIN_FRAMES), []
    try:
        while (frame := src.read()) is not None and frame.index <= max(wanted):
            if frame.index in wanted:
                frames.append(frame.image)
    finally:
        src.close()
    assert len(frames) == len(wanted)
    return frames


class Replay:
    """A frame provider like the main window's: the newest camera picture on every call."""

    def __init__(self, frames: list[np.ndarray]) -> None:
        self.frames = frames
        self.calls = 0

    def __call__(self) -> np.ndarray:
        self.calls += 1
        return self.frames[self.calls % len(self.frames)]


class Choices:
    """Stands in for ask_choice: records each question and gives scripted answers."""

    def __init__(self, *answers: int | None) -> None:
        self.answers = list(answers)
        self.asked: list[tuple[str, list[str]]] = []

    def __call__(self, parent, title, text, choices, informative="", default=None, warning=True):
        self.asked.append((text, list(choices)))
        assert self.answers, f"unexpected question: {text}"
        return self.answers.pop(0)


def open_dialog(qtbot, app, provider=None, person_id=None) -> EnrollDialog:
    dialog = EnrollDialog(app, provider, person_id=person_id)
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def add_files(qtbot, monkeypatch, dialog: EnrollDialog, paths) -> None:
    monkeypatch.setattr(QFileDialog, "getOpenFileNames",
                        staticmethod(lambda *a, **k: ([str(p) for p in paths], "")))
    before = len(dialog.entries)
    qtbot.mouseClick(dialog.files_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.busy and len(dialog.entries) == before + len(paths), timeout=WAIT)


def item_texts(dialog: EnrollDialog) -> list[str]:
    return [dialog.shot_list.item(i).text() for i in range(dialog.shot_list.count())]


def test_enroll_from_files_shows_reasons_and_stores_only_good_shots(qtbot, app, engine, tmp_path, monkeypatch):
    bad = {}
    for kind, image in bad_inputs(engine).items():
        bad[kind] = tmp_path / f"{kind.replace(' ', '_')}.jpg"
        cv2.imwrite(str(bad[kind]), image)
    monkeypatch.setattr(enroll_dialog, "ask_choice", Choices())  # no question expected
    dialog = open_dialog(qtbot, app)
    assert not dialog.capture_button.isEnabled()  # no camera given
    qtbot.keyClicks(dialog.name_edit, "Barack Obama")
    qtbot.keyClicks(dialog.employee_edit, "E-44")
    qtbot.keyClicks(dialog.department_edit, "Oval Office")
    add_files(qtbot, monkeypatch, dialog, [OBAMA[0], OBAMA[2], *bad.values()])
    texts = item_texts(dialog)
    assert sum("✓ accepted" in t for t in texts) == 2
    for kind, reason in (("blurred", "blurred"), ("dark", "too dark"), ("tiny", "face too small"),
                         ("two_faces", "faces of similar size"), ("no_face", "no face found")):
        line = next(t for t in texts if t.startswith(kind))
        assert "✗" in line and reason in line, line
    tooltips = [dialog.shot_list.item(i).toolTip() for i in range(dialog.shot_list.count())]
    assert any("sharpness" in t and "Rejected: blurred" in t for t in tooltips)
    assert "2 accepted, 5 rejected" in dialog.summary.text()
    # A shot can be removed before saving.
    dialog.shot_list.item(1).setSelected(True)
    qtbot.mouseClick(dialog.remove_button, Qt.MouseButton.LeftButton)
    assert len(dialog.entries) == 6 and "1 accepted" in dialog.summary.text()
    add_files(qtbot, monkeypatch, dialog, [OBAMA[2]])
    assert dialog.save_button.isEnabled()
    with qtbot.waitSignal(dialog.enrolled, timeout=WAIT):
        qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert dialog.result() == QDialog.DialogCode.Accepted
    person = app.store.get_person(dialog.person_id)
    assert (person.name, person.employee_id, person.department) == ("Barack Obama", "E-44", "Oval Office")
    assert person.n_photos == 2 and person.n_templates == 2  # rejected shots were never stored
    assert {p.source for p in app.store.photos(person.id)} == {str(OBAMA[0]), str(OBAMA[2])}
    main_face = max(recognize.identify_file(app, OBAMA[3]), key=lambda r: r.face.bbox.area)
    assert main_face.match.name == "Barack Obama"


def test_cancel_leaves_nothing(qtbot, app, monkeypatch):
    dialog = open_dialog(qtbot, app)
    qtbot.keyClicks(dialog.name_edit, "Joe Biden")
    add_files(qtbot, monkeypatch, dialog, BIDEN[:1])
    dialog.reject()
    assert app.store.list_people() == [] and app.store.template_count() == 0


def test_same_person_twice_is_caught_and_photos_go_to_the_enrolled_one(qtbot, app, engine, monkeypatch):
    obama_id = enroll.save_person(app, "Barack Obama", [enroll.check_file(engine, OBAMA[0])])
    dialog = open_dialog(qtbot, app)
    qtbot.keyClicks(dialog.name_edit, "B. Obama")
    add_files(qtbot, monkeypatch, dialog, [OBAMA[2], OBAMA[3]])
    # First answer "Cancel": nothing is written and the dialog stays open.
    choices = Choices(2)
    monkeypatch.setattr(enroll_dialog, "ask_choice", choices)
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    text, buttons = choices.asked[0]
    assert "look like Barack Obama, who is already enrolled" in text
    assert buttons == ["Add these photos to Barack Obama", "Enroll as a new person anyway", "Cancel"]
    assert dialog.isVisible() and app.store.get_person(obama_id).n_photos == 1
    # Then "Add these photos to Barack Obama".
    monkeypatch.setattr(enroll_dialog, "ask_choice", Choices(0))
    with qtbot.waitSignal(dialog.enrolled, timeout=WAIT) as signal:
        qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert signal.args == [obama_id]
    assert [p.name for p in app.store.list_people()] == ["Barack Obama"]
    assert app.store.get_person(obama_id).n_photos == 3


def test_auto_mode_on_the_live_camera_then_recognised_in_the_live_window(qtbot, app, lin_frames, monkeypatch):
    """The whole path: the live window plays the clip, Enroll… from the People menu takes
    shots in Auto mode from the window's newest frames, and the window then names him."""
    from faceapp.gui.main import build_main_window

    camera = ArraySource(lin_frames, fps=8.0, loop=True, realtime=True, description="hamilton replay")
    window = build_main_window(app, camera=camera, log_entries=False)
    qtbot.addWidget(window)
    # An administrator at the desk gives the password when asked (the gate: test_gui_admin_wiring).
    window.admin_gate.run_dialog = lambda dialog: QDialog.DialogCode.Accepted
    window.show()
    page = window.page("People")
    assert isinstance(page, PeoplePage)
    actions = {a.text(): a for a in window.menuBar().actions()}
    people_menu = actions["&People"].menu()
    enroll_action = next(a for a in people_menu.actions() if a.text() == "&Enroll…")
    qtbot.waitUntil(lambda: window.latest_frame() is not None, timeout=WAIT)
    enroll_action.trigger()
    dialog = next(w for w in page.findChildren(EnrollDialog))
    assert dialog.capture_button.isEnabled()
    qtbot.keyClicks(dialog.name_edit, "Lin-Manuel Miranda")
    dialog.start_auto(5)
    qtbot.waitUntil(lambda: not dialog.auto_running, timeout=WAIT)
    shots = dialog.accepted_shots()
    assert len(shots) == 5 and all(e.kind == "auto" for e in dialog.entries), dialog.status.text()
    yaws = [s.quality.yaw for s in shots]
    assert max(yaws) - min(yaws) > 0.05  # not five copies of one pose
    assert "done" in dialog.status.text()
    monkeypatch.setattr(enroll_dialog, "ask_choice", Choices())
    with qtbot.waitSignal(dialog.enrolled, timeout=WAIT):
        qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert page.person_ids() == [dialog.person_id]
    assert app.store.get_person(dialog.person_id).n_photos == 5
    # Recognised on a held-back photo...
    assert recognize.identify_file(app, LIN_PHOTO)[0].match.name == "Lin-Manuel Miranda"
    # ...and by the live window, which reads the refreshed gallery.
    named = set()

    def named_live():
        named.update(f.name for f in window.view.faces if f.known and f.name)
        assert "Lin-Manuel Miranda" in named

    qtbot.waitUntil(named_live, timeout=WAIT)
    window.close()


def test_capture_button_takes_the_newest_frame(qtbot, app, lin_frames):
    provider = Replay(lin_frames)
    dialog = open_dialog(qtbot, app, provider)
    qtbot.waitUntil(lambda: provider.calls >= 3, timeout=WAIT)  # the preview has moved on a few frames
    before = provider.calls
    qtbot.keyClick(dialog.capture_button, Qt.Key.Key_Space)  # capture() runs inside the key press
    newest = lin_frames[(before + 1) % len(lin_frames)]  # what the provider returned to that call
    qtbot.waitUntil(lambda: len(dialog.entries) == 1 and not dialog.busy, timeout=WAIT)
    assert dialog.entries[0].checked.source == "camera 1" and dialog.entries[0].kind == "capture"
    shot = dialog.entries[0].checked.shot
    assert shot is not None
    # The shot is that very picture: same face crop and embedding, not an earlier frame's.
    expected = enroll.inspect_image(app.engine, newest, "camera 1").shot
    assert np.array_equal(shot.face.crop, expected.face.crop)
    assert np.allclose(shot.face.embedding, expected.face.embedding, atol=1e-6)
    first = enroll.inspect_image(app.engine, lin_frames[0], "x").shot
    assert not np.array_equal(shot.face.crop, first.face.crop)
    qtbot.waitUntil(lambda: dialog.preview.pixmap() is not None and not dialog.preview.pixmap().isNull(),
                    timeout=WAIT)


def _add_entry(app, person_id: int, name: str) -> None:
    with app.store.transaction() as conn:
        conn.execute("INSERT INTO entries (time, door, person_id, person_name, decision, distance, snapshot) "
                     "VALUES ('2024-01-01T08:00:00+00:00', 'Main', ?, ?, 'known', 0.3, ?)",
                     (person_id, name, b"jpeg"))


def test_people_page_manages_people(qtbot, app, engine, monkeypatch):
    obama = enroll.save_person(app, "Barack Obama", [enroll.check_file(engine, f) for f in OBAMA[:3]],
                               employee_id="E-1")
    biden = enroll.save_person(app, "Joe Biden", [enroll.check_file(engine, f) for f in BIDEN])
    _add_entry(app, biden, "Joe Biden")
    page = PeoplePage(app)
    qtbot.addWidget(page)
    page.show()
    assert page.person_ids() == [obama, biden]
    assert not page.table.item(0, 0).icon().isNull()  # first photo's crop as thumbnail
    row = [page.table.item(0, c).text() for c in range(1, 7)]
    assert row == ["Barack Obama", "E-1", "", "3", "3", "active"]
    assert not page.banner.isVisible()

    page.search.setText("bid")
    qtbot.waitUntil(lambda: page.person_ids() == [biden], timeout=WAIT)
    page.search.clear()
    qtbot.waitUntil(lambda: len(page.person_ids()) == 2, timeout=WAIT)

    # Edit details through the dialog.
    def fake_exec(dlg):
        dlg.employee_edit.setText("E-2")
        dlg.department_edit.setText("Executive")
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr(people_page.PersonEditDialog, "exec", fake_exec)
    assert page.select_person(obama)
    qtbot.mouseClick(page.edit_button, Qt.MouseButton.LeftButton)
    p = app.store.get_person(obama)
    assert (p.employee_id, p.department) == ("E-2", "Executive")

    # Deactivate: the live gallery no longer has him; reactivate brings him back.
    qtbot.mouseClick(page.active_button, Qt.MouseButton.LeftButton)
    assert not app.store.get_person(obama).active and app.gallery().n_people == 1
    assert page.active_button.text() == "Re&activate"
    assert not recognize.identify_file(app, OBAMA[3])[0].match.known
    qtbot.mouseClick(page.active_button, Qt.MouseButton.LeftButton)
    assert app.store.get_person(obama).active and app.gallery().n_people == 2

    # View photos and remove one.
    monkeypatch.setattr(QMessageBox, "question", staticmethod(lambda *a, **k: QMessageBox.StandardButton.Yes))
    photos = page.view_photos()
    assert photos.list.count() == 3
    photos.list.item(0).setSelected(True)
    qtbot.mouseClick(photos.remove_button, Qt.MouseButton.LeftButton)
    assert photos.list.count() == 2 and app.store.get_person(obama).n_templates == 2
    assert page.table.item(0, 4).text() == "2"
    photos.close()

    # Add photos to him (the dialog in "add to existing" mode).
    monkeypatch.setattr(enroll_dialog, "ask_choice", Choices())
    dialog = page.add_photos()
    assert dialog.name_edit.isReadOnly() and dialog.name_edit.text() == "Barack Obama"
    add_files(qtbot, monkeypatch, dialog, [OBAMA[3]])
    with qtbot.waitSignal(dialog.enrolled, timeout=WAIT):
        qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert app.store.get_person(obama).n_photos == 3

    # Delete: cancelled first, then confirmed with the log entries.
    asked = []
    monkeypatch.setattr(people_page, "ask_delete", lambda parent, summary: asked.append(summary))
    assert page.select_person(biden)
    qtbot.mouseClick(page.delete_button, Qt.MouseButton.LeftButton)
    assert app.store.get_person(biden).n_photos == 2
    assert (asked[0].photos, asked[0].templates, asked[0].entries) == (2, 2, 1)
    monkeypatch.setattr(people_page, "ask_delete", lambda parent, summary: DeleteChoice(remove_entries=True))
    qtbot.mouseClick(page.delete_button, Qt.MouseButton.LeftButton)
    assert page.person_ids() == [obama]
    q = app.store.query
    assert q("SELECT COUNT(*) AS n FROM photos WHERE person_id = ?", (biden,))[0]["n"] == 0
    assert q("SELECT COUNT(*) AS n FROM templates WHERE person_id = ?", (biden,))[0]["n"] == 0
    assert q("SELECT COUNT(*) AS n FROM entries")[0]["n"] == 0
    assert app.gallery().n_people == 1


def test_import_dialog_reports_rejections(qtbot, app, tmp_path, monkeypatch):
    root = tmp_path / "staff"
    for d, files in (("Barack_Obama", OBAMA[:2]), ("Joe_Biden", BIDEN[:1])):
        (root / d).mkdir(parents=True)
        for f in files:
            shutil.copy(f, root / d / f.name)
    cv2.imwrite(str(root / "Joe_Biden" / "dark.jpg"), (load_image(BIDEN[1]) * 0.15).astype(np.uint8))
    shutil.copy(FACES / "group_photos" / "face_recognition_obama_and_biden.jpg", root / "Joe_Biden" / "group.jpg")
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(root)))
    dialog = ImportDialog(app)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.browse()
    assert dialog.folder_edit.text() == str(root)
    with qtbot.waitSignal(dialog.imported, timeout=WAIT):
        qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    assert sorted(dialog.report.people_created) == ["Barack Obama", "Joe Biden"]
    rows = {dialog.table.item(r, 0).text(): dialog.table.item(r, 1).text() for r in range(dialog.table.rowCount())}
    assert "too dark" in rows["Joe_Biden/dark.jpg"]
    assert "similar size" in rows["Joe_Biden/group.jpg"]
    assert dialog.progress.value() == dialog.progress.maximum() == 5
    assert "2 people enrolled" in dialog.summary.text() and "2 rejected" in dialog.summary.text()


def test_recompute_from_the_people_page_after_a_model_change(qtbot, app, engine):
    enroll.save_person(app, "Joe Biden", [enroll.check_file(engine, f) for f in BIDEN])
    app.update_settings(pack="opencv")
    page = PeoplePage(app)
    qtbot.addWidget(page)
    page.show()
    assert page.banner.isVisible() and "2 of 2 photos" in page.banner_label.text()
    assert page.table.item(0, 5).text() == "0"
    dialog = page.recompute()
    assert dialog.start_button.isEnabled()
    with qtbot.waitSignal(dialog.recomputed, timeout=WAIT):
        qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    assert dialog.added == 2 and templates.template_status(app).complete
    qtbot.waitUntil(lambda: not page.banner.isVisible(), timeout=WAIT)
    assert page.table.item(0, 5).text() == "2"
    qtbot.waitUntil(lambda: not dialog.start_button.isEnabled(), timeout=WAIT)


def test_lookalike_is_pointed_out(qtbot, app, engine, monkeypatch):
    """A face just beyond the threshold of an enrolled person is named as a look-alike
    (here: a stricter threshold than the distance of two real photos of one man)."""
    first, second = (enroll.check_file(engine, f) for f in (OBAMA[0], OBAMA[3]))
    enroll.save_person(app, "Barack Obama", [first])
    d = float(1.0 - first.face.embedding @ second.face.embedding)
    app.set_threshold(d - 0.05)
    dialog = open_dialog(qtbot, app)
    qtbot.keyClicks(dialog.name_edit, "Someone Similar")
    add_files(qtbot, monkeypatch, dialog, [OBAMA[3]])
    choices = Choices(1)
    monkeypatch.setattr(enroll_dialog, "ask_choice", choices)
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    text, buttons = choices.asked[0]
    assert text.startswith("Barack Obama looks similar") and buttons == ["Enroll", "Cancel"]
    assert len(app.store.list_people()) == 1 and dialog.isVisible()


def test_missing_models_are_reported_in_the_dialog(qtbot, tmp_path, monkeypatch):
    from faceapp.service.app import App

    with App(tmp_path / "no_models") as bare:
        dialog = open_dialog(qtbot, bare, Replay([load_image(OBAMA[0])]))
        dialog.add_files([OBAMA[0]])
        qtbot.waitUntil(lambda: not dialog.busy, timeout=WAIT)
        assert "models are not available" in dialog.status.text()
        assert not dialog.capture_button.isEnabled() and not dialog.save_button.isEnabled()
        assert dialog.entries == []
        dialog.reject()
