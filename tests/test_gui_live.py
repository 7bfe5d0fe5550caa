"""The live window with real models and the real Hamilton clip, fed through the same
frame-source interface as a webcam (offscreen Qt)."""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import numpy as np
import pytest

from faceapp.gui.qt_env import clean_qt_environment

# opencv-python points Qt at its own plugins and fonts on import; undo that before
# pytest-qt creates the QApplication (collection happens before any test runs).
clean_qt_environment()

from faceapp.capture.sources import ArraySource, Frame, SourceError, VideoFileSource  # noqa: E402
from faceapp.service.app import App  # noqa: E402
from faceapp.service.enroll import enroll_files  # noqa: E402

from conftest import HAMILTON, person_photos  # noqa: E402

pytestmark = [
    pytest.mark.gui,
    # The offscreen platform says this whenever a window with size limits is shown.
    pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints"),
]

WAIT = 40_000  # ms; generous: the machine is shared, nothing here is a timing assert
# Alex Lacamoire is only on screen (small, far left) in the first 20 frames; Lin-Manuel
# Miranda fills frames 85-210. A replay of both stretches keeps the tests short.
BOTH_FRAMES = list(range(0, 20)) + list(range(85, 131))
LIN_FRAMES = list(range(85, 131))
REPLAY_FPS = 8.0  # a slow camera: recognition keeps up, so every face gets its votes


@pytest.fixture(scope="module")
def hamilton() -> dict[int, np.ndarray]:
    """The frames of the clip the tests replay, decoded once through VideoFileSource."""
    wanted = set(BOTH_FRAMES)
    src = VideoFileSource(HAMILTON)
    src.open()
    frames = {}
    try:
        while len(frames) < len(wanted):
            frame = src.read()
            assert frame is not None, "the Hamilton clip ended early"
            if frame.index in wanted:
                frames[frame.index] = frame.image
    finally:
        src.close()
    return frames


def replay(hamilton, indices, loop=True, description="hamilton replay") -> ArraySource:
    return ArraySource([hamilton[i] for i in indices], fps=REPLAY_FPS, loop=loop, realtime=True,
                       description=description)


def enroll(app: App, *people: str) -> None:
    for person in people:
        enroll_files(app, person.replace("_", " "), person_photos("face_recognition_examples", person))


def open_window(qtbot, app, camera, **kw):
    from faceapp.gui.main import build_main_window

    window = build_main_window(app, camera=camera, **kw)
    qtbot.addWidget(window)
    window.show()
    return window


class Seen:
    """Everything the window has drawn so far (polled while waiting)."""

    def __init__(self, window) -> None:
        self.window = window
        self.known: set[str] = set()
        self.labels: set[str] = set()
        self.kinds: set[str] = set()

    def poll(self) -> None:
        from faceapp.gui.live_view import face_kind

        view = self.window.view
        self.known |= {f.name for f in view.faces if f.known and f.name}
        self.kinds |= {face_kind(f) for f in view.faces}
        self.labels |= set(view.last_labels)


def test_enrolled_people_are_named_on_the_live_video(qtbot, app, hamilton):
    enroll(app, "Lin_Manuel_Miranda", "Alex_Lacamoire")
    window = open_window(qtbot, app, replay(hamilton, BOTH_FRAMES))
    seen = Seen(window)

    def both_named():
        seen.poll()
        assert {"Lin Manuel Miranda", "Alex Lacamoire"} <= seen.known

    qtbot.waitUntil(both_named, timeout=WAIT)
    # Named within the first pass over the replay, i.e. a few frames per person.
    assert window.recognition_worker.processed <= 2 * len(BOTH_FRAMES)

    def both_drawn():  # the plates painted on the picture: name and distance with 2 decimals
        seen.poll()
        for name in ("Lin Manuel Miranda", "Alex Lacamoire"):
            plates = [t for t in seen.labels if t.startswith(name + " ")]
            assert plates and all(re.fullmatch(r"[01]\.\d\d", t.rsplit(" ", 1)[1]) for t in plates)

    qtbot.waitUntil(both_drawn, timeout=WAIT)
    assert "known" in seen.kinds
    # Boxes belong to the picture they are drawn on.
    rec = window.latest_result()
    h, w = rec.result.image.shape[:2]
    for face in rec.result.faces:
        assert 0 <= face.bbox.x1 < face.bbox.x2 <= w and 0 <= face.bbox.y1 < face.bbox.y2 <= h
    # Live figures in the status bar.
    qtbot.waitUntil(lambda: "recognition" in window.stats_label.text() and "latency" in window.stats_label.text(),
                    timeout=WAIT)
    stats = window.stats()
    assert stats["camera_fps"] > 0 and stats["recognition_fps"] > 0 and stats["latency_ms"] > 0
    assert window.view.message is None and window.view.banner is None


def test_someone_not_enrolled_is_unknown(qtbot, app, hamilton):
    enroll(app, "Barack_Obama")
    window = open_window(qtbot, app, replay(hamilton, LIN_FRAMES))
    seen = Seen(window)

    def unknown_shown():
        seen.poll()
        assert "unknown" in seen.kinds and any(t.startswith("unknown ") for t in seen.labels)

    qtbot.waitUntil(unknown_shown, timeout=WAIT)
    qtbot.waitUntil(lambda: window.recognition_worker.processed >= 15, timeout=WAIT)
    seen.poll()
    assert seen.known == set()
    assert not any("Obama" in t for t in seen.labels)


def test_nobody_enrolled_shows_unknown_without_distance(qtbot, app, hamilton):
    window = open_window(qtbot, app, replay(hamilton, LIN_FRAMES))
    seen = Seen(window)

    def unknown_shown():
        seen.poll()
        assert "unknown" in seen.labels

    qtbot.waitUntil(unknown_shown, timeout=WAIT)
    assert seen.known == set()


def test_threshold_slider_redecides_at_once_and_is_remembered(qtbot, app, home, hamilton):
    enroll(app, "Lin_Manuel_Miranda")
    window = open_window(qtbot, app, replay(hamilton, LIN_FRAMES))
    assert window.threshold_label.text() == f"{app.threshold:.2f}"
    default = window.threshold
    qtbot.waitUntil(lambda: any(f.known for f in window.view.faces), timeout=WAIT)

    # No waiting between moving the slider and looking: the shown result is re-decided.
    window.threshold_slider.setValue(5)
    assert window.threshold_label.text() == "0.05"
    assert window.view.faces and not any(f.known for f in window.view.faces)
    assert not any(t.startswith("Lin") for t in window.view.last_labels)
    assert window.recognition_worker.pipeline.threshold == pytest.approx(0.05)

    window.threshold_slider.setValue(round(default * 100))
    assert any(f.known for f in window.view.faces)
    assert any(t.startswith("Lin Manuel Miranda") for t in window.view.last_labels)

    window.threshold_slider.setValue(50)
    qtbot.waitUntil(lambda: app.threshold == pytest.approx(0.50), timeout=WAIT)  # debounced save
    window.close()

    again = App(home, engine=app.engine)
    try:
        assert again.threshold == pytest.approx(0.50)
        from faceapp.gui.main import build_main_window

        w2 = build_main_window(again, camera=replay(hamilton, LIN_FRAMES[:3]), start=False)
        qtbot.addWidget(w2)
        assert w2.threshold_label.text() == "0.50" and w2.threshold == pytest.approx(0.50)
    finally:
        again.close()


class FlakyCamera:
    """A camera that delivers real frames, is unplugged, refuses to reopen twice, then works."""

    def __init__(self, frames: list[np.ndarray]) -> None:
        self.frames = frames
        self.calls = 0
        self.lock = threading.Lock()

    def __call__(self):
        with self.lock:
            self.calls += 1
            call = self.calls
        if call == 1:
            return _Unplugged(self.frames, after=12)
        if call in (2, 3):
            raise SourceError("cannot open webcam 7: is it connected?")
        return ArraySource(self.frames, fps=REPLAY_FPS, loop=True, realtime=True, description="webcam 7")


class _Unplugged(ArraySource):
    live = True

    def __init__(self, frames, after: int) -> None:
        super().__init__(frames, fps=REPLAY_FPS, loop=True, realtime=True, description="webcam 7")
        self.after = after
        self.count = 0

    def read(self) -> Frame | None:
        self.count += 1
        if self.count > self.after:
            raise SourceError("webcam 7 stopped delivering frames (unplugged?)")
        return super().read()


def test_camera_lost_then_recovered(qtbot, app, hamilton):
    camera = FlakyCamera([hamilton[i] for i in LIN_FRAMES])
    window = open_window(qtbot, app, camera)
    qtbot.waitUntil(lambda: window.view.image is not None, timeout=WAIT)
    messages = []

    def lost_shown():
        messages.append(window.view.message)
        assert window.view.message and window.view.message.startswith("Camera lost:")

    qtbot.waitUntil(lost_shown, timeout=WAIT)
    assert "retrying" in window.view.message
    assert "unplugged" in window.view.message or "connected" in window.view.message

    def recovered():
        assert camera.calls >= 4
        assert window.view.message is None
        assert window.capture_worker.status().state == "running"

    qtbot.waitUntil(recovered, timeout=WAIT)
    before = window.capture_worker.status().last_frame
    qtbot.waitUntil(lambda: window.capture_worker.status().last_frame != before, timeout=WAIT)


class RecordingSource(ArraySource):
    """Notes the threads it was opened and closed in."""

    def __init__(self, frames) -> None:
        super().__init__(frames, fps=REPLAY_FPS, loop=False, realtime=True, description="recorded clip")
        self.opened_in: list[str] = []
        self.closed_in: list[str] = []

    def open(self) -> None:
        self.opened_in.append(threading.current_thread().name)
        super().open()

    def close(self) -> None:
        self.closed_in.append(threading.current_thread().name)
        super().close()


def test_end_of_video_and_clean_shutdown(qtbot, app, hamilton):
    source = RecordingSource([hamilton[i] for i in LIN_FRAMES[:6]])
    window = open_window(qtbot, app, source)
    qtbot.waitUntil(lambda: window.view.message is not None and window.view.message.startswith("End of video"),
                    timeout=WAIT)
    capture_thread, recognition_thread = window.capture_thread, window.recognition_thread
    worker = window.capture_worker
    assert capture_thread.isRunning() and recognition_thread.isRunning()

    window.close()
    assert capture_thread.isFinished() and recognition_thread.isFinished()
    assert worker.source.state == "stopped"
    main = threading.main_thread().name
    assert source.closed_in and main not in source.closed_in  # released by the capture thread
    assert source.opened_in and main not in source.opened_in
    assert worker.closed_in is not None and worker.closed_in is not threading.main_thread()


def test_loop_switch_replays_the_video(qtbot, app, hamilton):
    source = RecordingSource([hamilton[i] for i in LIN_FRAMES[:4]])
    window = open_window(qtbot, app, source)
    qtbot.waitUntil(lambda: window.capture_worker.status().state == "eof", timeout=WAIT)
    window.set_loop(True)
    assert app.settings.loop_video is True
    qtbot.waitUntil(lambda: window.capture_worker.status().state == "running", timeout=WAIT)
    window.set_loop(False)
    assert App(app.paths.home, engine=app.engine).settings.loop_video is False


def test_missing_models_show_the_fix_and_the_camera_still_plays(qtbot, tmp_path, models_dir, hamilton):
    bare = App(tmp_path / "bare")  # no models installed, no engine
    try:
        window = open_window(qtbot, bare, replay(hamilton, LIN_FRAMES))
        qtbot.waitUntil(lambda: window.models_state == "failed", timeout=WAIT)
        # The window names its own menu entry, not the terminal command the CLI shows.
        assert "Models ▸ Install models…" in window.view.banner and "faceapp models" not in window.view.banner
        qtbot.waitUntil(lambda: window.view.image is not None, timeout=WAIT)
        assert window.view.faces == () and window.latest_result() is None
        assert window.retry_models_action.isEnabled()

        # The user installs the models and chooses Models > Retry loading models.
        models = bare.paths.models
        if models.exists():
            models.rmdir()
        models.symlink_to(models_dir, target_is_directory=True)
        window.retry_models_action.trigger()
        qtbot.waitUntil(lambda: window.models_state == "ready" and window.latest_result() is not None,
                        timeout=WAIT)
        qtbot.waitUntil(lambda: window.view.banner is None and len(window.view.faces) > 0, timeout=WAIT)
        threads = window.recognition_thread, window.capture_thread
        window.close()
        assert all(t.isFinished() for t in threads)
    finally:
        bare.close()


def test_reception_mode_hides_admin_controls(qtbot, app, hamilton):
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QDialog, QLabel

    window = open_window(qtbot, app, replay(hamilton, LIN_FRAMES), reception=True)
    # An administrator gives the password to leave (refusals: test_gui_admin_wiring).
    window.admin_gate.run_dialog = lambda dialog: QDialog.DialogCode.Accepted
    window.add_page("People", QLabel("people"))
    assert window.reception
    # The platform applies the state recorded before show() once the window is on screen.
    qtbot.waitUntil(lambda: bool(window.windowState() & Qt.WindowState.WindowFullScreen), timeout=10_000)
    assert not window.menuBar().isVisible() and not window.admin_bar.isVisible()
    assert not window.tabs.tabBar().isVisible() and not window.statusBar().isVisible()
    assert not window.tabs.isTabEnabled(window.tabs.indexOf(window.page("People")))
    assert window.leave_button.isVisible()
    assert window.view.text_px() >= 24
    assert app.settings.reception_mode is False  # --reception alone is not remembered

    window.leave_button.click()  # goes through request_leave_reception()
    assert not window.reception and window.menuBar().isVisible() and window.admin_bar.isVisible()
    assert window.tabs.isTabEnabled(window.tabs.indexOf(window.page("People")))
    assert not window.leave_button.isVisible()
    qtbot.waitUntil(lambda: not window.windowState() & Qt.WindowState.WindowFullScreen, timeout=10_000)

    window.reception_action.trigger()  # Ctrl+Shift+R
    assert window.reception and app.settings.reception_mode is True
    window.reception_action.trigger()
    assert not window.reception and app.settings.reception_mode is False


def test_qt_environment_and_resources(monkeypatch):
    import cv2

    from faceapp.gui.qt_env import app_icon, resource_path

    cv2_plugins = os.path.join(os.path.dirname(cv2.__file__), "qt", "plugins")
    monkeypatch.setenv("QT_QPA_PLATFORM_PLUGIN_PATH", cv2_plugins)
    monkeypatch.setenv("QT_QPA_FONTDIR", "/usr/share/fonts")  # not cv2's: kept
    assert clean_qt_environment() == ["QT_QPA_PLATFORM_PLUGIN_PATH"]
    assert "QT_QPA_PLATFORM_PLUGIN_PATH" not in os.environ and os.environ["QT_QPA_FONTDIR"] == "/usr/share/fonts"
    for name in ("faceapp.svg", "faceapp.desktop", "faceapp.qss"):
        assert resource_path(name).is_file(), name
    assert not app_icon().isNull()


def test_faceapp_command_opens_the_window(qtbot, home, hamilton, monkeypatch):
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from faceapp.cli import main
    from faceapp.gui.main_window import MainWindow

    monkeypatch.setattr(QApplication, "setStyleSheet", lambda self, s: None)  # keep the shared qapp plain
    found = {}

    def look_and_close():
        windows = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
        if windows and windows[0].view.image is not None:
            found["title"] = windows[0].windowTitle()
            found["source"] = windows[0].capture_worker.status().description
            windows[0].close()
        else:
            QTimer.singleShot(100, look_and_close)

    QTimer.singleShot(0, look_and_close)
    assert main(["--home", str(home), "--camera", str(HAMILTON)]) == 0
    assert found["title"] == "Live recognition" and "hamilton" in found["source"]
    assert not QApplication.windowIcon().isNull()
    assert Path(home, "faceapp.db").is_file()


def test_switching_camera_releases_the_old_one(qtbot, app, hamilton):
    first = RecordingSource([hamilton[i] for i in LIN_FRAMES[:5]])
    first.loop = True
    window = open_window(qtbot, app, first)
    qtbot.waitUntil(lambda: window.capture_worker.status().state == "running", timeout=WAIT)

    window.set_camera(str(HAMILTON), remember=True)  # as the Camera menu does
    qtbot.waitUntil(lambda: bool(first.closed_in), timeout=WAIT)
    assert threading.main_thread().name not in first.closed_in
    qtbot.waitUntil(lambda: "hamilton" in window.capture_worker.status().description
                    and window.capture_worker.status().state == "running", timeout=WAIT)
    assert app.settings.camera == str(HAMILTON)
    qtbot.waitUntil(lambda: window.view.image is not None and window.view.image.shape == (360, 640, 3),
                    timeout=WAIT)


def test_recognition_errors_are_shown_and_recognition_recovers(qtbot, app, hamilton, monkeypatch):
    from faceapp.service.pipeline import Pipeline

    broken = threading.Event()
    broken.set()
    real_process = Pipeline.process

    def process(self, frame):
        if broken.is_set():
            raise RuntimeError("simulated failure")
        return real_process(self, frame)

    monkeypatch.setattr(Pipeline, "process", process)
    window = open_window(qtbot, app, replay(hamilton, LIN_FRAMES))
    qtbot.waitUntil(lambda: window.view.banner is not None and "simulated failure" in window.view.banner,
                    timeout=WAIT)
    qtbot.waitUntil(lambda: window.view.image is not None, timeout=WAIT)  # the camera still plays
    assert window.latest_result() is None
    broken.clear()
    qtbot.waitUntil(lambda: window.view.banner is None and window.latest_result() is not None, timeout=WAIT)
    qtbot.waitUntil(lambda: len(window.view.faces) > 0, timeout=WAIT)


def test_latest_slot_keeps_only_the_newest_item():
    from faceapp.gui.workers import LatestSlot

    slot = LatestSlot()
    assert slot.get() == (0, None)
    for i in range(100):
        slot.put(i)
    seq, item = slot.get()
    assert (seq, item) == (100, 99)
    assert slot.wait_newer(seq, timeout=0.01) == (100, 99)  # nothing newer: returns after the timeout

    got = []
    reader = threading.Thread(target=lambda: got.append(slot.wait_newer(seq, timeout=30)))
    reader.start()
    slot.put("new")
    reader.join(30)
    assert got == [(101, "new")]


def test_rate_meter_counts_events_in_its_window():
    from faceapp.gui.workers import RateMeter

    now = [0.0]
    meter = RateMeter(window=2.0, clock=lambda: now[0])
    assert meter.rate() == 0.0
    for _ in range(21):
        meter.tick()
        now[0] += 0.1
    assert meter.rate() == pytest.approx(10.0, rel=0.1)
    now[0] += 5.0
    assert meter.rate() == 0.0


def test_plates_stay_inside_and_avoid_each_other():
    from PySide6.QtCore import QRectF

    from faceapp.core.types import BBox
    from faceapp.gui.live_view import face_label, fit_rect, place_plate
    from faceapp.service.pipeline import TrackedFace

    assert fit_rect(640, 360, QRectF(0, 0, 1000, 1000)) == QRectF(0, 218.75, 1000, 562.5)
    bounds = QRectF(0, 0, 800, 450)
    top_box = QRectF(700, 2, 90, 120)  # a face in the top-right corner: no room above
    plate = place_plate(top_box, (300, 40), bounds, [], 2)
    assert bounds.contains(plate) and plate.top() >= top_box.bottom()
    first = place_plate(QRectF(100, 200, 80, 100), (200, 40), bounds, [], 2)
    second = place_plate(QRectF(120, 210, 80, 100), (200, 40), bounds, [first], 2)
    assert not first.intersects(second)

    def face(distance, decision, known, name="Ada"):
        return TrackedFace(BBox(0, 0, 10, 10), 1, 0.9, distance, 1, name, known, decision)

    assert face_label(face(0.4123, "granted", True)) == ("Ada", "0.41")
    assert face_label(face(0.9, "unknown", False)) == ("unknown", "0.90")
    assert face_label(face(0.4, "denied", True)) == ("Ada · no access", "0.40")
    assert face_label(face(0.5, "pending", False)) == ("identifying…", "0.50")
    assert face_label(TrackedFace(BBox(0, 0, 1, 1), 1, 0.9, float("inf"), None, None, False, "unknown")) \
        == ("unknown", "")
