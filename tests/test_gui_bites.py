"""The window's real widgets, driven as a person would: the password dialog's own Unlock button
and Enter key, a real main window with its default logging playing the Hamilton clip into the
entry log, and the colours the live view paints for known, unknown, denied and pending faces."""

from __future__ import annotations

import numpy as np
import pytest

from faceapp.gui.qt_env import clean_qt_environment

clean_qt_environment()  # before pytest-qt creates the QApplication

from PySide6.QtCore import QRectF, Qt, QTimer  # noqa: E402
from PySide6.QtGui import QImage, QPainter  # noqa: E402
from PySide6.QtWidgets import QApplication, QDialog  # noqa: E402

from conftest import HAMILTON, person_photos  # noqa: E402
from faceapp.capture.sources import ArraySource, VideoFileSource  # noqa: E402
from faceapp.core.types import BBox  # noqa: E402
from faceapp.gui import admin  # noqa: E402
from faceapp.gui.admin import AdminGate, PasswordDialog  # noqa: E402
from faceapp.gui.live_view import LiveView  # noqa: E402
from faceapp.service import security  # noqa: E402
from faceapp.service.enroll import enroll_files  # noqa: E402
from faceapp.service.pipeline import TrackedFace  # noqa: E402
from faceapp.store.attendance import AttendanceStore, EntryQuery  # noqa: E402

pytestmark = [pytest.mark.gui, pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")]

PASSWORD = "open sesame 42"
LIN = "Lin Manuel Miranda"
WAIT = 60_000  # ms; generous on a shared machine, not a timing assert


@pytest.fixture
def with_password(app):
    security.set_admin_password(app.store, PASSWORD, params=security.ScryptParams(n=2 ** 10))
    return app


# -- the password dialog's real buttons -------------------------------------------------------------
def test_the_unlock_button_checks_the_password(qtbot, with_password):
    dialog = PasswordDialog(with_password, "delete a person")
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.keyClicks(dialog.password, "not it at all")
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    assert dialog.isVisible() and dialog.result() != QDialog.DialogCode.Accepted
    assert dialog.message.text() == "Wrong password" and dialog.password.text() == ""
    qtbot.keyClicks(dialog.password, PASSWORD)
    with qtbot.waitSignal(dialog.accepted, timeout=5000):
        qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    assert dialog.result() == QDialog.DialogCode.Accepted and not dialog.isVisible()


def test_enter_in_the_password_field_unlocks(qtbot, with_password):
    dialog = PasswordDialog(with_password, "delete a person")
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.keyClicks(dialog.password, PASSWORD)
    with qtbot.waitSignal(dialog.accepted, timeout=5000):
        qtbot.keyClick(dialog.password, Qt.Key.Key_Return)
    assert dialog.result() == QDialog.DialogCode.Accepted


def test_the_gate_opens_with_the_real_modal_dialog(qtbot, with_password):
    """AdminGate.require with its real ``exec()``: the password is typed into the modal dialog
    that is on screen and its Unlock button is clicked."""
    gate = AdminGate(with_password)
    pressed = []

    def answer() -> None:
        dialog = QApplication.activeModalWidget()
        if not isinstance(dialog, PasswordDialog):
            QTimer.singleShot(20, answer)
            return
        qtbot.keyClicks(dialog.password, PASSWORD)
        qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
        pressed.append(dialog)
        # Should the button not close it, the test must fail, not hang on the modal loop.
        QTimer.singleShot(3000, lambda: dialog.isVisible() and dialog.reject())

    QTimer.singleShot(0, answer)
    assert gate.require(None, "delete a person")
    assert pressed and gate.unlocked and with_password.store.actor == admin.ACTOR_ADMIN


# -- the real window logs what it recognises --------------------------------------------------------
def _lin_frames() -> list[np.ndarray]:
    src = VideoFileSource(HAMILTON)
    src.open()
    frames = []
    try:
        while (frame := src.read()) is not None and frame.index < 131:
            if frame.index >= 85:
                frames.append(frame.image)
    finally:
        src.close()
    return frames


def _color_kind(rgb: tuple[int, int, int]) -> str | None:
    r, g, b = rgb
    if g > r + 60 and g > b + 40:
        return "green"
    if r > 200 and 110 <= g <= 200 and b < 100:
        return "amber"
    if r > 170 and g < 90 and b < 90:
        return "red"
    if max(r, g, b) - min(r, g, b) < 16 and 110 <= r <= 170:
        return "grey"
    return None


def _edge_kinds(image: QImage, box: BBox, scale: float = 1.0) -> dict[str, int]:
    """Colour kinds of the pixels on the top and left edges of ``box`` (image pixels)."""
    counts: dict[str, int] = {}
    x1, y1, x2, y2 = (round(v * scale) for v in (box.x1, box.y1, box.x2, box.y2))
    points = [(x, y1) for x in range(x1 + 6, x2 - 6)] + [(x1, y) for y in range(y1 + 6, y2 - 6)]
    for x, y in points:
        if 0 <= x < image.width() and 0 <= y < image.height():
            c = image.pixelColor(x, y)
            kind = _color_kind((c.red(), c.green(), c.blue()))
            if kind:
                counts[kind] = counts.get(kind, 0) + 1
    return counts


@pytest.mark.slow
def test_the_real_window_logs_entries_by_default(qtbot, app):
    """build_main_window as `faceapp` opens it (logging on by default), the clip as its camera:
    Miranda is logged once, granted, and painted green."""
    from faceapp.gui.main import build_main_window

    enroll_files(app, LIN, person_photos("face_recognition_examples", "Lin_Manuel_Miranda"))
    source = ArraySource(_lin_frames(), fps=8.0, loop=True, realtime=True, description="hamilton replay")
    window = build_main_window(app, camera=source)
    qtbot.addWidget(window)
    window.show()
    att = AttendanceStore(app.store)
    qtbot.waitUntil(lambda: [r.person_name for r in att.entries(EntryQuery())] == [LIN], timeout=WAIT)
    entry = att.entries(EntryQuery())[0]
    assert entry.decision == "granted" and entry.door == "Main entrance"  # the default door

    def painted_green():
        faces = [f for f in window.view.faces if f.known and f.candidate_name == LIN]
        assert faces
        grab = window.view.grab().toImage()
        image = window.view.image
        assert image is not None
        # The frame is drawn scaled into the widget; map the face box into widget pixels.
        s = min(grab.width() / image.shape[1], grab.height() / image.shape[0])
        ox = (grab.width() - image.shape[1] * s) / 2
        oy = (grab.height() - image.shape[0] * s) / 2
        b = faces[0].bbox
        moved = BBox(b.x1 + ox / s, b.y1 + oy / s, b.x2 + ox / s, b.y2 + oy / s)
        kinds = _edge_kinds(grab, moved, s * grab.devicePixelRatio())
        assert kinds.get("green", 0) > 10 and not kinds.get("amber") and not kinds.get("red")

    qtbot.waitUntil(painted_green, timeout=WAIT)
    window.shutdown()


# -- box colours --------------------------------------------------------------------------------------
def _face(bbox: BBox, track: int, *, known: bool, decision: str, name: str | None = "Ada Lovelace") -> TrackedFace:
    return TrackedFace(bbox=bbox, track_id=track, det_score=0.9, distance=0.42, candidate_id=1 if name else None,
                       candidate_name=name, known=known, decision=decision,
                       access="denied" if decision == "denied" else "granted", threshold=0.7)


def test_known_unknown_denied_and_pending_faces_have_their_own_colours(qtbot):
    frame = _lin_frames()[0]  # a real picture under the boxes
    h, w = frame.shape[:2]
    boxes = {"green": BBox(20, 60, 140, 200), "amber": BBox(180, 60, 300, 200),
             "red": BBox(340, 60, 460, 200), "grey": BBox(500, 60, 620, 200)}
    faces = (_face(boxes["green"], 1, known=True, decision="granted"),
             _face(boxes["amber"], 2, known=False, decision="unknown", name=None),
             _face(boxes["red"], 3, known=True, decision="denied"),
             _face(boxes["grey"], 4, known=False, decision="pending"))
    view = LiveView()
    qtbot.addWidget(view)
    view.resize(w, h)
    view.set_frame(frame, faces)
    image = QImage(w, h, QImage.Format.Format_RGB32)
    p = QPainter(image)
    try:
        view.render_scene(p, QRectF(0, 0, w, h))
    finally:
        p.end()
    assert view.last_labels[0].startswith("Ada Lovelace") and view.last_labels[1].startswith("unknown")
    assert "no access" in view.last_labels[2] and view.last_labels[3].startswith("identifying")
    for colour, box in boxes.items():
        kinds = _edge_kinds(image, box)
        assert kinds.get(colour, 0) >= 8, (colour, kinds)
        assert all(kinds.get(other, 0) <= 2 for other in boxes if other != colour), (colour, kinds)


def test_the_threshold_bar_is_readable_with_the_application_stylesheet(qtbot, app):
    """The bar's labels are light text meant for its dark background: both must be painted."""
    from faceapp.gui.qt_env import load_stylesheet
    from faceapp.gui.threshold_bar import ThresholdBar

    style = load_stylesheet()
    assert "adminBar" in style
    from PySide6.QtWidgets import QVBoxLayout, QWidget

    window = QWidget()  # as in the main window: the bar is a child, the sheet is the application's
    qtbot.addWidget(window)
    window.setStyleSheet(style)
    bar = ThresholdBar(app, allowed=lambda reason: True, is_locked=lambda: False, parent=window)
    QVBoxLayout(window).addWidget(bar)
    window.resize(900, 60)
    window.show()
    qtbot.waitExposed(window)
    assert bar.label.text() == f"{app.threshold:.2f}"
    image = window.grab().toImage()  # what the window shows where the bar is
    at = bar.geometry().topLeft()
    corner = image.pixelColor(at.x() + 2, at.y() + 2)
    assert max(corner.red(), corner.green(), corner.blue()) < 80, corner.name()  # the dark bar


def test_a_distance_a_hair_below_zero_is_shown_as_zero():
    from faceapp.gui.live_view import format_distance

    # 1 - cosine of a face with its own template can come out as -1e-7 in float32.
    assert format_distance(-1e-7) == "0.00" and format_distance(0.456) == "0.46"
    assert format_distance(float("inf")) == "–"
