"""The window at a door that requires liveness: a photo held up gets a red "not live?" plate, the
head-turn prompt is shown on the plate and large over the picture (larger in reception mode)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from faceapp.gui.qt_env import clean_qt_environment

clean_qt_environment()

from faceapp.capture.sources import ArraySource  # noqa: E402
from faceapp.core.types import BBox  # noqa: E402
from faceapp.service.enroll import enroll_files  # noqa: E402
from faceapp.service.pipeline import TrackedFace  # noqa: E402
from faceapp.store.attendance import AttendanceStore  # noqa: E402

from conftest import FACES  # noqa: E402

pytestmark = [
    pytest.mark.gui,
    pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints"),
]

WAIT = 40_000  # ms; generous on a shared machine, not a timing assert


def _face(**kw) -> TrackedFace:
    base = dict(bbox=BBox(200, 120, 380, 360), track_id=1, det_score=0.9, distance=0.3, candidate_id=1,
                candidate_name="Ada Lovelace", known=True, decision="granted")
    base.update(kw)
    return TrackedFace(**base)


def test_plates_and_prompt_of_liveness_states(qtbot):
    from faceapp.gui.live_view import LiveView, face_kind, face_label, plate_scale

    checking = _face(decision="pending", access="pending", liveness="checking",
                     prompt="turn your head left, then right")
    not_live = _face(decision="denied", access="denied", liveness="not live", reason="not live", track_id=2,
                     bbox=BBox(400, 100, 520, 260))
    passive = _face(decision="pending", access="pending", liveness="checking", track_id=3)
    assert face_label(checking)[0] == "Ada Lovelace: turn left, then right"
    assert face_label(not_live)[0] == "Ada Lovelace · not live?" and face_kind(not_live) == "denied"
    assert face_label(passive)[0] == "Ada Lovelace · checking…" and plate_scale(passive) == 1.0
    view = LiveView()
    qtbot.addWidget(view)
    view.resize(900, 560)
    view.show()
    image = np.full((480, 640, 3), 60, np.uint8)
    view.set_frame(image, (checking, not_live))
    view.grab()
    assert "Ada Lovelace · not live? 0.30" in view.last_labels
    assert view.last_prompt == "Ada Lovelace, turn your head left, then right"
    view.set_large(True)   # reception mode
    view.grab()
    assert view.last_prompt == "Ada Lovelace, turn your head left, then right"
    view.set_frame(image, (passive,))
    view.grab()
    assert view.last_prompt is None


def test_window_shows_not_live_for_a_photo_at_a_passive_door(qtbot, app):
    """F2 (a face on a screen held up to a camera) replayed as the camera, its person enrolled from
    the file: the window's plate turns red with "not live?"."""
    from faceapp.gui.live_view import face_kind
    from faceapp.gui.main import build_main_window

    photo = FACES / "spoof_samples" / "image_F2.jpg"
    enroll_files(app, "Screen Person", [photo])
    att = AttendanceStore(app.store)
    att.add_door(app.settings.door)
    att.set_door_liveness(app.settings.door, "passive")
    img = cv2.imread(str(photo))
    src = ArraySource([img] * 30, fps=8.0, loop=True, realtime=True, description="photo held up")
    window = build_main_window(app, camera=src)
    qtbot.addWidget(window)
    window.show()
    seen: set[str] = set()

    def not_live_shown() -> bool:
        seen.update(window.view.last_labels)
        return any(f.liveness == "not live" and face_kind(f) == "denied" for f in window.view.faces) \
            and any("not live?" in t for t in window.view.last_labels)

    qtbot.waitUntil(not_live_shown, timeout=WAIT)
    assert not any(t.startswith("Screen Person ") and "not live" not in t and "checking" not in t for t in seen)
    window.close()


def test_enrollment_refuses_a_spoofed_camera_shot_but_not_an_id_photo_file(qtbot, app, monkeypatch):
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QFileDialog

    from faceapp.gui.enroll_dialog import EnrollDialog
    from faceapp.service.enroll import inspect_camera_shot, inspect_file

    spoof = FACES / "spoof_samples" / "image_F2.jpg"
    live = FACES / "spoof_samples" / "image_T1.jpg"
    # Service level: the camera path checks liveness, the file path does not.
    refused = inspect_camera_shot(app, cv2.imread(str(spoof)), "camera 1")
    assert not refused.ok and any(r.startswith("looks like a photo or a screen") for r in refused.reasons)
    assert inspect_camera_shot(app, cv2.imread(str(live)), "camera 1").ok
    assert inspect_file(app.engine, spoof).ok
    # The dialog: a capture of a screen held up to the camera is listed with the reason.
    dialog = EnrollDialog(app, lambda: cv2.imread(str(spoof)))
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.keyClick(dialog.capture_button, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: len(dialog.entries) == 1 and not dialog.busy, timeout=WAIT)
    assert not dialog.entries[0].checked.ok
    assert "looks like a photo or a screen" in dialog.entries[0].checked.verdict
    # The same picture as an ID-photo file is accepted.
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", staticmethod(lambda *a, **k: ([str(spoof)], "")))
    qtbot.mouseClick(dialog.files_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(dialog.entries) == 2 and not dialog.busy, timeout=WAIT)
    assert dialog.entries[1].checked.ok
    dialog.reject()


def test_doors_page_has_a_liveness_column_and_sets_it_behind_the_password(qtbot, app, monkeypatch):
    from PySide6.QtCore import Qt

    from faceapp.gui import doors_page
    from test_gui_admin import PASSWORD, Script, cancel, type_password
    from test_gui_day_defects import make_window

    window, gate = make_window(qtbot, app)
    page = window.page("Doors")
    store = AttendanceStore(app.store)
    store.add_door("Front")
    page.refresh()
    assert page.select_door("Front")
    col = page.COLUMNS.index("Liveness")
    assert page.table.item(0, col).text() == "off"
    asked = []

    def choose(parent, title, label, items, current):
        asked.append((items, current))
        return "challenge"

    monkeypatch.setattr(doors_page, "ask_item", choose)
    gate.run_dialog = Script(cancel)            # refused: nothing asked, nothing changed
    qtbot.mouseClick(page.liveness_button, Qt.MouseButton.LeftButton)
    assert asked == [] and store.door("Front").liveness == "off"
    gate.run_dialog = Script(type_password(PASSWORD))
    qtbot.mouseClick(page.liveness_button, Qt.MouseButton.LeftButton)
    assert asked == [(["off", "passive", "challenge"], "off")]
    assert store.door("Front").liveness == "challenge"
    assert page.table.item(0, col).text() == "challenge"
    window.close()
