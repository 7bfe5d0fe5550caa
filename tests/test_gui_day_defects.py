"""Issue #12, the defects a new user hit in a day's use, each reproduced on the real window
(real slider drags, real buttons and keys, offscreen Qt, real models and photos)."""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timezone

import cv2
import numpy as np
import pytest

from faceapp.gui.qt_env import clean_qt_environment

clean_qt_environment()  # before pytest-qt creates the QApplication

from PySide6.QtCore import QPoint, QRect, QRectF, Qt  # noqa: E402
from PySide6.QtWidgets import QApplication, QFileDialog, QStyle, QStyleOptionSlider  # noqa: E402

from conftest import HAMILTON, person_photos  # noqa: E402
from faceapp import __version__  # noqa: E402
from faceapp.capture.sources import ArraySource, ResilientSource, VideoFileSource, open_source  # noqa: E402
from faceapp.core.types import BBox  # noqa: E402
from faceapp.gui.admin import PasswordDialog, SetPasswordDialog  # noqa: E402
from faceapp.gui.live_view import LiveView  # noqa: E402
from faceapp.gui.log_page import entry_details  # noqa: E402
from faceapp.gui.people_page import delete_texts  # noqa: E402
from faceapp.gui.window_geometry import fit_rect  # noqa: E402
from faceapp.service import security  # noqa: E402
from faceapp.service.enroll import enroll_files  # noqa: E402
from faceapp.service.pipeline import TrackedFace  # noqa: E402
from faceapp.store.attendance import AttendanceStore, NewEntry  # noqa: E402
from faceapp.store.audit import AuditLog  # noqa: E402
from test_gui_admin import FAST, PASSWORD, Script, cancel, type_password  # noqa: E402

pytestmark = [pytest.mark.gui, pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")]
WAIT = 40_000
OBAMA = person_photos("face_recognition_examples", "Barack_Obama")


def make_window(qtbot, app, camera=None, **kw):
    """The real main window (workers not started), a password set, the gate locked, shown."""
    from faceapp.gui.main import build_main_window

    camera = camera if camera is not None else ArraySource([cv2.imread(str(OBAMA[0]))])
    window = build_main_window(app, camera=camera, start=False, **kw)
    qtbot.addWidget(window)
    security.set_admin_password(app.store, PASSWORD, params=FAST)
    window.show()
    window.activateWindow()
    return window, window.admin_gate


def activate(qtbot, window) -> None:
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=WAIT)


def handle_center(slider) -> QPoint:
    opt = QStyleOptionSlider()
    slider.initStyleOption(opt)
    return slider.style().subControlRect(QStyle.ComplexControl.CC_Slider, opt,
                                         QStyle.SubControl.SC_SliderHandle, slider).center()


def x_of(slider, units: int) -> int:
    """The handle's x for a value (same mapping QSlider uses for a drag)."""
    opt = QStyleOptionSlider()
    slider.initStyleOption(opt)
    style = slider.style()
    groove = style.subControlRect(QStyle.ComplexControl.CC_Slider, opt, QStyle.SubControl.SC_SliderGroove, slider)
    handle = style.subControlRect(QStyle.ComplexControl.CC_Slider, opt, QStyle.SubControl.SC_SliderHandle, slider)
    span = groove.width() - handle.width()
    return groove.x() + handle.width() // 2 + QStyle.sliderPositionFromValue(slider.minimum(), slider.maximum(),
                                                                            units, span)


def drag(qtbot, slider, to_units: int) -> None:
    """Press on the handle, move in steps, release: a real mouse drag."""
    start = handle_center(slider)
    end = QPoint(x_of(slider, to_units), start.y())
    qtbot.mousePress(slider, Qt.MouseButton.LeftButton, pos=start)
    for i in range(1, 6):
        qtbot.mouseMove(slider, QPoint(start.x() + (end.x() - start.x()) * i // 5, start.y()))
    qtbot.mouseRelease(slider, Qt.MouseButton.LeftButton, pos=end)


# -- defect 1 ---------------------------------------------------------------------------------------
def test_threshold_drag_while_locked_asks_once_about_the_released_value(qtbot, app):
    app.set_threshold(0.88)
    window, gate = make_window(qtbot, app)
    slider = window.threshold_slider
    asked: list[str] = []

    def remember_then(step):
        def run(d):
            asked.append(d.intro.text())
            assert not slider.isSliderDown()  # never mid-drag
            step(d)
        return run

    gate.run_dialog = Script(remember_then(cancel))
    drag(qtbot, slider, 70)
    assert len(asked) == 1 and "0.88" in asked[0]
    # Cancel: the old value, the handle drawn there (no ghost), nothing saved.
    assert slider.value() == 88 and slider.sliderPosition() == 88 and not slider.isSliderDown()
    assert window.threshold_label.text() == "0.88" and app.threshold == pytest.approx(0.88)
    assert slider.hasTracking()

    gate.run_dialog = Script(remember_then(type_password(PASSWORD)))
    drag(qtbot, slider, 70)
    released = slider.value() / 100
    assert len(asked) == 2 and f"to {released:.2f}" in asked[1] and abs(released - 0.70) <= 0.011
    qtbot.waitUntil(lambda: app.threshold == pytest.approx(released), timeout=WAIT)
    change = AuditLog(app.store).records(action="threshold.change")[0]
    assert change.changes[f"thresholds.{app.model_id}"] == [0.88, pytest.approx(released)]


# -- defect 3 ---------------------------------------------------------------------------------------
def test_ctrl_l_locks_after_the_open_video_dialog_and_the_indicator_shows_it(qtbot, app, monkeypatch):
    window, gate = make_window(qtbot, app)
    indicator = window.lock_state.indicator
    assert indicator.text() == "Locked"
    gate.run_dialog = Script(type_password(PASSWORD))
    qtbot.mouseClick(indicator, Qt.MouseButton.LeftButton)  # click to unlock
    assert gate.unlocked and indicator.text().startswith("Admin unlocked (")

    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (str(HAMILTON), "")))
    actions = {a.text(): a for a in window.camera_menu.actions()}
    actions["Open &video file…"].trigger()
    assert window.camera == str(HAMILTON)
    activate(qtbot, window)  # as after any dialog closes
    focus = window.focusWidget() or window.threshold_slider
    qtbot.keyClick(focus, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
    assert not gate.unlocked and indicator.text() == "Locked"
    # Locked for real: the next slider move asks.
    gate.run_dialog = Script(cancel)
    window.threshold_slider.setFocus()
    qtbot.keyClick(window.threshold_slider, Qt.Key.Key_Right)
    assert len(gate.run_dialog.shown) == 1

    # From a text field on another page too.
    gate.run_dialog = Script(type_password(PASSWORD))
    qtbot.mouseClick(indicator, Qt.MouseButton.LeftButton)
    log_page = window.page("Entry log")
    window.tabs.setCurrentWidget(log_page)
    log_page.from_edit.setFocus()
    activate(qtbot, window)
    qtbot.keyClick(log_page.from_edit, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
    assert not gate.unlocked
    qtbot.mouseClick(indicator, Qt.MouseButton.LeftButton)  # click when locked: asks (refused here)
    assert not gate.unlocked


def test_admin_pages_are_covered_when_the_unlock_expires(qtbot, app):
    enroll_files(app, "Barack Obama", OBAMA[:1])
    window, gate = make_window(qtbot, app)
    people = window.page("People")
    gate.run_dialog = Script(type_password(PASSWORD))
    gate.unlock_seconds = 0.3
    window.tabs.setCurrentWidget(people)
    assert gate.unlocked and not window.lock_state.is_covered(people)
    # The silent expiry: the list disappears behind the cover at once, no prompt.
    gate.run_dialog = Script()
    qtbot.waitUntil(lambda: window.lock_state.is_covered(people), timeout=WAIT)
    cover = window.lock_state._covers[people]
    assert cover.isVisible() and cover.geometry() == people.rect() and gate.run_dialog.shown == []
    # Coming back to the page asks; the people list stays hidden while the prompt is up.
    window.tabs.setCurrentIndex(0)
    seen = []
    gate.run_dialog = Script(lambda d: seen.append(window.lock_state.is_covered(people)) or cancel(d))
    window.tabs.setCurrentWidget(people)
    assert seen == [True] and window.tabs.currentIndex() == 0
    # Unlocking from the cover's button shows the page again.
    gate.run_dialog = Script(type_password(PASSWORD))
    qtbot.mouseClick(cover.button, Qt.MouseButton.LeftButton)
    assert gate.unlocked and not window.lock_state.is_covered(people)


# -- defect 6 ---------------------------------------------------------------------------------------
def test_window_opens_within_the_screen_and_remembers_its_geometry(qtbot, app):
    window, _ = make_window(qtbot, app)
    avail = window.screen().availableGeometry()
    assert avail.contains(window.geometry())
    window.resize(640, 480)
    window.move(avail.x() + 10, avail.y() + 20)
    size = window.size()
    window.close()
    assert app.settings.window_geometry
    again, _ = make_window(qtbot, app)
    assert again.size() == size
    again.close()
    # A geometry from a larger screen (1920x1200 at 1.5x on a 1600x1000 one) is brought inside.
    assert fit_rect(QRect(-50, 0, 1920, 1200), QRect(0, 0, 1066, 666)) == QRect(0, 0, 1066, 666)
    assert fit_rect(QRect(900, 500, 400, 300), QRect(0, 0, 1066, 666)) == QRect(666, 366, 400, 300)


def test_status_bar_elides_instead_of_cutting_at_800x500(qtbot, app):
    window, _ = make_window(qtbot, app)
    window.resize(800, 500)
    status = window.status
    status.set_source("video face_recognition_short_hamilton_clip.mp4 (looping) — running")
    status.set_stats("camera 25.0 fps  ·  recognition 6.1 fps  ·  latency 87 ms  ·  2 faces")
    qtbot.waitUntil(lambda: window.statusBar().width() <= 800, timeout=WAIT)
    window.statusBar().repaint()
    bar = window.statusBar().rect()
    for label in (status.source_label, status.models_label, status.stats_label):
        shown = label.shown_text()
        assert shown == label.text() or (shown.endswith("…") and label.text().startswith(shown[:-1])), shown
        assert bar.contains(QRect(label.mapTo(window.statusBar(), QPoint(0, 0)), label.size())), label.objectName()
    assert window.lock_state.indicator.isVisible()


# -- defect 7 ---------------------------------------------------------------------------------------
def test_reception_plates_keep_the_decision_words_and_never_overlap(qtbot):
    view = LiveView()
    qtbot.addWidget(view)
    view.set_large(True)
    view.resize(1066, 666)  # a 1600x1000 screen at QT_SCALE_FACTOR=1.5
    image = np.full((720, 1280, 3), 60, np.uint8)
    names = ("Lin-Manuel Miranda de la Reception Principale", "Alexander Lacamoire-Hamilton", "Ada")
    faces = tuple(TrackedFace(BBox(300 + 120 * i, 300 + 8 * i, 420 + 120 * i, 440 + 8 * i), i, 0.9, 0.4, i, name,
                              True, "denied", "denied", 0.7) for i, name in enumerate(names))
    faces += (TrackedFace(BBox(660, 330, 760, 460), 9, 0.9, 0.9, None, None, False, "unknown"),)
    view.set_frame(image, faces)
    view.show()
    qtbot.waitExposed(view)
    view.grab()  # paints
    labels, plates = view.last_labels, view.last_plates
    assert len(plates) == 4, (labels, plates, view.isVisible(), view.size())
    assert sum("· no access" in text for text in labels) == 3
    for a in range(len(plates)):
        assert QRectF(view.rect()).contains(plates[a])
        for b in range(a + 1, len(plates)):
            assert not plates[a].intersects(plates[b]), (labels, plates)
    # A very narrow window: the name shrinks to "…", the decision words stay whole.
    view.resize(260, 400)
    view.grab()  # paints
    assert all("· no access" in text for text in view.last_labels if "unknown" not in text)


# -- defect 8 ---------------------------------------------------------------------------------------
def test_password_dialog_intro_stays_whole_when_the_error_appears(qtbot, app):
    for dialog in (SetPasswordDialog(app), PasswordDialog(app, "change the match threshold to 0.70 (now 0.88)")):
        qtbot.addWidget(dialog)
        dialog.show()
        if isinstance(dialog, SetPasswordDialog):
            dialog.password.setText("short")
            assert not dialog.try_set()
        else:
            security.set_admin_password(app.store, PASSWORD, params=FAST)
            dialog.password.setText("wrong password here")
            assert not dialog.try_password()
        assert dialog.message.text()
        intro = dialog.intro
        assert intro.height() >= intro.heightForWidth(intro.width()), intro.text()
        message = dialog.message
        assert message.height() >= message.heightForWidth(message.width())


def test_texts_say_what_they_mean(app):
    e = NewEntry(datetime(2026, 12, 2, 4, 48, 7, tzinfo=timezone.utc), "Main", None, None, "unknown", 0.93)
    store = AttendanceStore(app.store)
    store.add_entry(e)
    record = store.entries()[0]
    lines = entry_details(record)
    assert "T04:48" not in "\n".join(lines) and "+00:00" not in "\n".join(lines)
    assert "unknown: unknown" not in lines and "Unknown face (not enrolled)" in lines

    class Summary:
        person = None
        photos, templates, entries = 2, 2, 0
    text, also = delete_texts(Summary())
    assert "0 log entries" not in text and also is None
    Summary.entries = 1
    text, also = delete_texts(Summary())
    assert "Their log entry is kept" in text and also == "Also delete their log entry"


def test_no_latency_is_shown_without_a_camera_picture(qtbot, app, engine):
    frames = [cv2.imread(str(OBAMA[0]))] * 3
    window, _ = make_window(qtbot, app, camera=ArraySource(frames, fps=10, loop=False, realtime=True))
    window.start()
    qtbot.waitUntil(lambda: "latency" in window.stats_label.text(), timeout=WAIT)
    # The video ended: the camera delivers nothing; the status bar says 0 fps and no latency.
    qtbot.waitUntil(lambda: window.stats_label.text().startswith("camera 0.0 fps"), timeout=WAIT)
    assert "latency" not in window.stats_label.text()
    window.close()


def test_about_box_says_version_models_licence_and_data_folder(qtbot, app):
    window, _ = make_window(qtbot, app)
    about = {a.text(): a for a in window.help_menu.actions()}["&About faceapp…"]
    shown = []
    window.about_hooks.append(shown.append)
    about.trigger()
    text = shown[0].text.text()
    assert __version__ in text and app.settings.pack in text and str(app.paths.home) in text
    assert "licence" in text.lower() and "README" in text
    shown[0].close()


# -- defect 9 ---------------------------------------------------------------------------------------
def test_webcam_retries_are_quiet_and_logged_once(capfd, caplog):
    source = ResilientSource(lambda: open_source("63"), retry_initial=0.01, retry_max=0.02)
    tries = []
    real_fail = source._fail
    source._fail = lambda message: tries.append(message) or real_fail(message)  # count the retries

    def stop_after_some():
        while len(tries) < 8:
            threading.Event().wait(0.01)
        source.stop()

    stopper = threading.Thread(target=stop_after_some)
    stopper.start()
    with caplog.at_level(logging.DEBUG, logger="faceapp.capture.sources"):
        assert source.read() is None
    stopper.join()
    out, err = capfd.readouterr()
    assert len(tries) >= 8
    assert "WARN" not in err and "VIDEOIO" not in err and "cap_v4l" not in err, err[:500]
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "webcam 63" in warnings[0].getMessage()


def test_enroll_rows_show_whole_names_reasons_and_quality(qtbot, app, engine, monkeypatch):
    from test_gui_enroll import add_files, item_texts, open_dialog

    powell = sorted(person_photos("lfw_krasserm", "Colin_Powell"))[0]
    group = sorted((HAMILTON.parents[1] / "group_photos").glob("*"))[0]
    dialog = open_dialog(qtbot, app)
    add_files(qtbot, monkeypatch, dialog, [powell, group])
    good, bad = item_texts(dialog)
    assert powell.name in good and "✓ accepted" in good and "sharpness" in good and "brightness" in good
    reasons = "; ".join(dialog.entries[1].checked.reasons)
    assert group.name in bad and f"✗ rejected: {reasons}" in bad and "…" not in bad
    assert powell.name in dialog.status.text() or "Checked 2" in dialog.status.text()
    # Removing the accepted shot: the status no longer talks about it as accepted.
    dialog.shot_list.item(0).setSelected(True)
    qtbot.mouseClick(dialog.remove_button, Qt.MouseButton.LeftButton)
    assert dialog.status.text() == f"Removed {powell.name}." and len(dialog.entries) == 1
    dialog.reject()
