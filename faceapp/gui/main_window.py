"""The main window: the Live page (video, boxes, names, threshold) plus pages other modules add."""

from __future__ import annotations

import logging
import statistics
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QThread, QTimer, Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QSlider,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from faceapp.capture.sources import STREAM_PREFIXES, Frame, FrameSource, open_source
from faceapp.gui.admin import admin_allowed
from faceapp.gui.live_view import LiveView, format_distance
from faceapp.gui.qt_env import app_icon, guard_pyside_refcount_bug
from faceapp.gui.widgets import keep_alive
from faceapp.gui.workers import CaptureWorker, LatestSlot, Recognized, RecognitionWorker
from faceapp.service.app import App
from faceapp.service.pipeline import TrackedFace

log = logging.getLogger(__name__)

CameraSpec = str | FrameSource | Callable[[], FrameSource]

SLIDER_MAX = 1.20  # user distance scale: 0 identical ... ~1 unrelated
SLIDER_STEPS = 100  # slider units per 1.0 of distance: a step of 0.01
SAVE_DELAY_MS = 600
TICK_MS = 33
STALL_SECONDS = 3.0
RESULT_STALE_SECONDS = 2.0  # a result this much older than the newest frame is not shown
CAPTURE_STOP_MS = 5000
RECOGNITION_STOP_MS = 15000  # a model load in progress cannot be interrupted
VIDEO_FILTER = "Videos (*.mp4 *.avi *.mov *.mkv *.webm *.m4v *.mpg *.mpeg *.wmv);;All files (*)"


def _source_factory(spec: CameraSpec, loop: bool) -> Callable[[], FrameSource]:
    if isinstance(spec, str):
        text = spec
        return lambda: open_source(text, loop=loop, realtime=True)
    if callable(spec) and not isinstance(spec, FrameSource):
        return spec
    source = spec
    return lambda: source


class MainWindow(QMainWindow):
    """Pages in tabs; the Live page runs a capture thread and a recognition thread."""

    receptionChanged = Signal(bool)
    eventsReady = Signal(object)  # tuple[EntryEvent, ...] just logged by the recognition worker

    def __init__(self, app: App, camera: CameraSpec | None = None, reception: bool = False,
                 log_entries: bool = True, door: str | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        guard_pyside_refcount_bug()  # in the GUI thread, before any worker runs
        self.app = app
        self.log_entries = log_entries
        self.door = door
        self.reception = False
        self._loop = bool(app.settings.loop_video)
        self._camera: CameraSpec = camera if camera is not None else app.camera_spec()
        self._frames: LatestSlot[Frame] = LatestSlot()
        self._results: LatestSlot[Recognized] = LatestSlot()
        self.capture_worker: CaptureWorker | None = None
        self._retired: list[tuple[CaptureWorker, QThread]] = []  # stopped, maybe still finishing
        self.capture_thread: QThread | None = None
        self.recognition_worker: RecognitionWorker | None = None
        self.recognition_thread: QThread | None = None
        self._shown_frame_seq = -1
        self._shown_result_seq = -1
        self._shown: Recognized | None = None
        self._latencies: deque[float] = deque(maxlen=60)
        self._models_state = "loading"
        self._closing = False
        self._last_status = 0.0
        self._was_maximized = False
        self._admin_actions: list[QAction] = []
        self.admin_gate = None  # an AdminGate, set by faceapp.gui.admin.install_admin
        self._refusing_slider = False

        self.setWindowTitle("Live recognition")
        self.setWindowIcon(app_icon())
        self.resize(1280, 800)
        self._build_pages()
        self._build_menus()
        self._build_status_bar()

        self._save_timer = QTimer(self)
        self._save_timer.setSingleShot(True)
        self._save_timer.setInterval(SAVE_DELAY_MS)
        self._save_timer.timeout.connect(self.save_threshold)
        self._timer = QTimer(self)
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self._tick)
        if reception or app.settings.reception_mode:
            self.set_reception_mode(True, save=False)

    # -- construction -----------------------------------------------------------
    def _build_pages(self) -> None:
        self.tabs = QTabWidget(self)
        self.tabs.setDocumentMode(True)
        self.setCentralWidget(self.tabs)

        self.live_page = QWidget()
        layout = QVBoxLayout(self.live_page)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        self.view = LiveView(self.live_page)
        self.view.on_painted = self._on_painted
        layout.addWidget(self.view, 1)

        self.admin_bar = QWidget(self.live_page)
        self.admin_bar.setObjectName("adminBar")
        bar = QHBoxLayout(self.admin_bar)
        bar.setContentsMargins(12, 6, 12, 6)
        title = QLabel("Match threshold", self.admin_bar)
        self.threshold_slider = QSlider(Qt.Orientation.Horizontal, self.admin_bar)
        self.threshold_slider.setRange(0, round(SLIDER_MAX * SLIDER_STEPS))
        self.threshold_slider.setSingleStep(1)
        self.threshold_slider.setPageStep(5)
        self.threshold_slider.setToolTip(
            "A face is recognised when its distance to an enrolled person is at most this value "
            "(0 = identical, about 1 = unrelated). Lower is stricter.")
        self.threshold_label = QLabel(self.admin_bar)
        self.threshold_label.setObjectName("thresholdValue")
        self.threshold_label.setMinimumWidth(48)
        hint = QLabel("known if distance ≤ threshold; lower = stricter", self.admin_bar)
        hint.setObjectName("hint")
        bar.addWidget(title)
        bar.addWidget(self.threshold_slider, 1)
        bar.addWidget(self.threshold_label)
        bar.addSpacing(12)
        bar.addWidget(hint)
        layout.addWidget(self.admin_bar)
        self._set_slider(self.app.threshold)
        self.threshold_slider.valueChanged.connect(self._on_slider)
        # actionTriggered comes only from the user (mouse, keys, wheel), before the value changes.
        self.threshold_slider.actionTriggered.connect(self._on_slider_action)
        self.threshold_slider.sliderReleased.connect(self.save_threshold)

        self.leave_button = QToolButton()
        self.leave_button.setObjectName("leaveReception")
        self.leave_button.setText("Exit reception")
        self.leave_button.setToolTip("Leave reception mode (Ctrl+Shift+R)")
        self.leave_button.setCursor(Qt.CursorShape.PointingHandCursor)
        self.leave_button.clicked.connect(self.request_leave_reception)
        self.view.set_corner_widget(self.leave_button)
        self.leave_button.hide()

        self.tabs.addTab(self.live_page, "Live")

    def _build_menus(self) -> None:
        mb = self.menuBar()
        file_menu = mb.addMenu("&File")
        quit_action = file_menu.addAction("&Quit")
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        self._admin_actions.append(quit_action)

        cam = mb.addMenu("&Camera")
        self.camera_menu = cam
        for text, shortcut, slot in (
            ("&Webcam…", "", self._choose_webcam),
            ("Open &video file…", "Ctrl+O", self._choose_video),
            ("Open &folder of images…", "Ctrl+Shift+O", self._choose_folder),
            ("Open stream &URL…", "Ctrl+U", self._choose_url),
        ):
            action = cam.addAction(text)
            if shortcut:
                action.setShortcut(QKeySequence(shortcut))
            action.triggered.connect(self._guarded("change the camera", slot))
            self._admin_actions.append(action)
        cam.addSeparator()
        self.loop_action = cam.addAction("&Loop video")
        self.loop_action.setCheckable(True)
        self.loop_action.setChecked(self._loop)
        self.loop_action.triggered.connect(self._on_loop_triggered)
        self._admin_actions.append(self.loop_action)
        self.restart_action = cam.addAction("&Restart / reconnect")
        self.restart_action.setShortcut(QKeySequence("F5"))
        self.restart_action.triggered.connect(self.restart_camera)
        self._admin_actions.append(self.restart_action)

        models = mb.addMenu("&Models")
        self.models_menu = models
        self.retry_models_action = models.addAction("&Retry loading models")
        self.retry_models_action.triggered.connect(self.retry_models)
        self._admin_actions.append(self.retry_models_action)

        view = mb.addMenu("&View")
        # Added to the window too, so the shortcut still works while the menu bar is hidden.
        self.reception_action = QAction("&Reception mode", self)
        self.reception_action.setShortcut(QKeySequence("Ctrl+Shift+R"))
        self.reception_action.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
        self.reception_action.triggered.connect(self._toggle_reception)
        view.addAction(self.reception_action)
        self.addAction(self.reception_action)
        self.view_menu = view

    def _build_status_bar(self) -> None:
        sb = self.statusBar()
        self.source_label = QLabel()
        self.models_label = QLabel()
        self.stats_label = QLabel()
        self.stats_label.setObjectName("stats")
        sb.addWidget(self.source_label, 1)
        sb.addPermanentWidget(self.models_label)
        sb.addPermanentWidget(self.stats_label)
        self.models_label.setText("models: loading…")

    # -- administrator actions --------------------------------------------------
    def admin_allowed(self, reason: str) -> bool:
        """Ask for the administrator password (if locked) before ``reason``; True to go on."""
        return admin_allowed(self, reason, self.admin_gate)

    def _guarded(self, reason: str, fn: Callable[[], object]) -> Callable[..., None]:
        def slot(*_args) -> None:
            if self.admin_allowed(reason):
                fn()
        return slot

    # -- pages ------------------------------------------------------------------
    def add_page(self, title: str, widget: QWidget, admin: bool = True) -> int:
        """Add a page (tab). ``admin`` pages are unreachable in reception mode. Returns its index."""
        index = self.tabs.addTab(widget, title)
        widget.setProperty("adminPage", admin)
        if self.reception and admin:
            self.tabs.setTabEnabled(index, False)
        return index

    def page(self, title: str) -> QWidget | None:
        """The page with this tab title, if any."""
        for i in range(self.tabs.count()):
            if self.tabs.tabText(i).replace("&", "") == title:
                return self.tabs.widget(i)
        return None

    def add_admin_action(self, action: QAction) -> None:
        """Register a menu action other modules add, so reception mode disables it too."""
        self._admin_actions.append(action)
        if self.reception:
            action.setEnabled(False)

    # -- lifecycle --------------------------------------------------------------
    def start(self) -> None:
        """Start loading the models, the camera and the display timer (call once, after building)."""
        if self.recognition_thread is None:
            self._start_recognition()
        if self.capture_thread is None:
            self._start_capture()
        self._timer.start()
        self._tick()

    def _start_recognition(self) -> None:
        worker = RecognitionWorker(self.app, self._frames, self._results, self.threshold,
                                   log_entries=self.log_entries, door=self.door)
        thread = QThread(self)
        thread.setObjectName("recognition")
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        worker.modelsState.connect(self._on_models_state)
        worker.eventsReady.connect(self.eventsReady)
        self.recognition_worker, self.recognition_thread = worker, thread
        thread.start()

    def _start_capture(self) -> None:
        # The loop setting is already in a source built from a spec; a FrameSource passed in
        # keeps its own until the user switches Loop video.
        worker = CaptureWorker(_source_factory(self._camera, self._loop), self._frames)
        thread = QThread(self)
        thread.setObjectName("capture")
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        self.capture_worker, self.capture_thread = worker, thread
        # The next tick shows the source's own (password-free) description at once.
        self._last_status = 0.0
        thread.start()

    def _retire_capture(self) -> None:
        """Stop the current capture worker without waiting: its thread releases the camera and
        ends on its own (a stream read can block for seconds; the GUI must not)."""
        worker, thread = self.capture_worker, self.capture_thread
        self.capture_worker = self.capture_thread = None
        self._retired = [(w, t) for w, t in self._retired if not t.isFinished()]
        if worker is not None and thread is not None:
            worker.stop()
            self._retired.append((worker, thread))

    @staticmethod
    def _join(thread: QThread, wait_ms: int) -> bool:
        if thread.wait(max(0, wait_ms)):
            return True
        log.warning("the %s thread did not stop in time; leaving it to end with the process",
                    thread.objectName())
        # Unparented so the window's deletion does not destroy it while it runs (Qt aborts).
        thread.setParent(None)
        keep_alive(thread)
        return False

    def shutdown(self) -> None:
        """Stop both workers cooperatively and wait for their threads (bounded). Idempotent."""
        if self._closing:
            return
        self._closing = True
        self._timer.stop()
        if self._save_timer.isActive():
            self.save_threshold()
        # Ask everyone first so they stop in parallel, then wait.
        captures = list(self._retired)
        if self.capture_worker is not None and self.capture_thread is not None:
            captures.append((self.capture_worker, self.capture_thread))
        for worker, _ in captures:
            worker.stop()
        if self.recognition_worker is not None:
            self.recognition_worker.stop()
        # One deadline for all capture threads: they were asked together and stop in parallel.
        deadline = time.monotonic() + CAPTURE_STOP_MS / 1000
        for _, thread in captures:
            self._join(thread, round((deadline - time.monotonic()) * 1000))
        if self.recognition_thread is not None:
            self._join(self.recognition_thread, RECOGNITION_STOP_MS)
        self._retired = []

    def closeEvent(self, event: QCloseEvent) -> None:
        self.shutdown()
        super().closeEvent(event)

    # -- camera -----------------------------------------------------------------
    @property
    def camera(self) -> CameraSpec:
        return self._camera

    def set_camera(self, spec: CameraSpec, remember: bool = False) -> None:
        """Switch to another source (webcam number, file, folder, URL, or a FrameSource / factory)."""
        self._retire_capture()
        self._camera = spec
        # In this order: a frame the recognition worker took before the clear is then
        # recognisably old, and its result cannot arrive after the result slot is cleared.
        self._frames.clear()
        if self.recognition_worker is not None:
            self.recognition_worker.reset_tracks()
        self._results.clear()
        self._shown = None
        self.view.set_frame(None)
        if remember and isinstance(spec, str):
            self.app.update_settings(camera=spec)
        if not self._closing:
            self._start_capture()

    def restart_camera(self) -> None:
        """Reconnect the current source (plays a video from the start again)."""
        self.set_camera(self._camera)

    def set_loop(self, loop: bool) -> None:
        """Loop videos and image folders; remembered in the settings."""
        self._loop = bool(loop)
        if self.loop_action.isChecked() != self._loop:
            self.loop_action.setChecked(self._loop)
        if self.capture_worker is not None:
            self.capture_worker.set_loop(self._loop)
        if self.app.settings.loop_video != self._loop:
            self.app.update_settings(loop_video=self._loop)

    def _on_loop_triggered(self, checked: bool) -> None:
        if self.admin_allowed("change the camera settings"):
            self.set_loop(checked)
        else:
            self.loop_action.setChecked(self._loop)

    def _choose_webcam(self) -> None:
        current = self._camera if isinstance(self._camera, str) and self._camera.isdigit() else "0"
        index, ok = QInputDialog.getInt(self, "Webcam", "Webcam number (0 is the first camera):",
                                        int(current), 0, 63)
        if ok:
            self.set_camera(str(index), remember=True)

    def _choose_video(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open video file", str(Path.home()), VIDEO_FILTER)
        if path:
            self.set_camera(path, remember=True)

    def _choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open folder of images", str(Path.home()))
        if path:
            self.set_camera(path, remember=True)

    def _choose_url(self) -> None:
        url, ok = QInputDialog.getText(self, "Camera stream", "RTSP or HTTP address of the camera:",
                                       text="rtsp://")
        url = url.strip()
        if not ok or not url:
            return
        if not url.lower().startswith(STREAM_PREFIXES):
            QMessageBox.warning(self, "Camera stream", "The address must start with rtsp://, http:// or https://")
            return
        self.set_camera(url, remember=True)

    # -- models -----------------------------------------------------------------
    def retry_models(self) -> None:
        """Load the models again after they failed; restarts recognition if its thread ended."""
        worker, thread = self.recognition_worker, self.recognition_thread
        if self._models_state != "failed" or self._closing or worker is None or thread is None:
            return
        if worker.ended or thread.isFinished():
            # It gave up after an internal error and its thread quits: nobody waits for a retry.
            # The old thread may still be finishing; held elsewhere, the window can close meanwhile.
            thread.setParent(None)
            keep_alive(thread)
            self._start_recognition()
        else:
            worker.retry_models()

    @property
    def models_state(self) -> str:
        """loading | ready | failed"""
        return self._models_state

    def _on_models_state(self, state: str, message: str) -> None:
        self._models_state = state
        if state == "loading":
            self.view.set_banner("Loading models…")
            self.models_label.setText("models: loading…")
        elif state == "ready":
            self.view.set_banner(None)
            self.models_label.setText(f"models: {message}")
        else:
            self.view.set_banner(f"Recognition is off: {message}\n(then choose Models ▸ Retry loading models)",
                                 "error")
            self.models_label.setText("models: not loaded")
        self._sync_retry_action()

    def _sync_retry_action(self) -> None:
        self.retry_models_action.setEnabled(self._models_state == "failed" and not self.reception)

    # -- threshold --------------------------------------------------------------
    @property
    def threshold(self) -> float:
        return self.threshold_slider.value() / SLIDER_STEPS

    def set_threshold(self, value: float) -> None:
        """Move the slider (re-decides the faces shown at once; saved shortly after)."""
        self._set_slider(value, notify=True)

    def _set_slider(self, value: float, notify: bool = False) -> None:
        units = round(min(SLIDER_MAX, max(0.0, float(value))) * SLIDER_STEPS)
        if not notify:
            self.threshold_slider.blockSignals(True)
        self.threshold_slider.setValue(units)
        self.threshold_slider.blockSignals(False)
        if not notify:  # else _on_slider writes the label (if the value changed at all)
            self.threshold_label.setText(format_distance(units / SLIDER_STEPS))

    def _on_slider_action(self, _action: int) -> None:
        """A user moves the slider: only an administrator may; refused, it stays where it was."""
        if self._refusing_slider or self.admin_allowed("change the match threshold"):
            return
        slider = self.threshold_slider
        self._refusing_slider = True  # ending a drag re-triggers the action
        try:
            slider.setSliderPosition(slider.value())  # cancels the pending move
            slider.setSliderDown(False)  # a drag interrupted by the password dialog ends here
            self._set_slider(self.app.threshold, notify=True)
        finally:
            self._refusing_slider = False

    def _on_slider(self, units: int) -> None:
        value = units / SLIDER_STEPS
        self.threshold_label.setText(format_distance(value))
        if self.recognition_worker is not None:
            self.recognition_worker.threshold = value
        if self._shown is not None:
            self.view.set_faces(self._decide(self._shown))
            self.view.repaint()
        self._save_timer.start()

    def save_threshold(self) -> None:
        """Persist the slider's value for the current recognition model."""
        self._save_timer.stop()
        value = self.threshold
        if abs(value - self.app.threshold) > 1e-9:
            self.app.set_threshold(value)
            log.info("threshold for %s set to %.2f", self.app.model_id, value)

    def _decide(self, rec: Recognized) -> tuple[TrackedFace, ...]:
        """The result's faces at the slider's threshold: a face keeps the pipeline's decision
        (votes, margins) unless the slider moved its distance across the line."""
        return tuple(f.relabel(self.threshold) for f in rec.result.faces)

    # -- reception mode ---------------------------------------------------------
    def _toggle_reception(self) -> None:
        if self.reception:
            self.request_leave_reception()
        else:
            self.set_reception_mode(True)

    def request_leave_reception(self) -> bool:
        """The one way out of reception mode: asks for the administrator password. True if left."""
        if not self.admin_allowed("leave reception mode"):
            return False
        self.set_reception_mode(False)
        return True

    def set_reception_mode(self, on: bool, save: bool = True) -> None:
        """Full screen, recognition only, large names; or back to the admin window."""
        on = bool(on)
        if on == self.reception:
            return
        self.reception = on
        self.menuBar().setVisible(not on)
        self.statusBar().setVisible(not on)
        self.admin_bar.setVisible(not on)
        self.tabs.tabBar().setVisible(not on)
        if on:
            self.tabs.setCurrentWidget(self.live_page)
        for i in range(self.tabs.count()):
            if self.tabs.widget(i) is not self.live_page:
                self.tabs.setTabEnabled(i, not on)
        for action in self._admin_actions:
            action.setEnabled(not on)
        self._sync_retry_action()
        self.view.set_large(on)
        self.leave_button.setVisible(on)
        state = self.windowState()
        if on:
            self._was_maximized = bool(state & Qt.WindowState.WindowMaximized)
            state |= Qt.WindowState.WindowFullScreen
        else:
            state &= ~Qt.WindowState.WindowFullScreen
            if self._was_maximized:
                state |= Qt.WindowState.WindowMaximized
        # Before the first show this only records the state; show() then applies it.
        self.setWindowState(state)
        if save and self.app.settings.reception_mode != on:
            self.app.update_settings(reception_mode=on)
        self.receptionChanged.emit(on)

    # -- display ----------------------------------------------------------------
    def latest_frame(self) -> Frame | None:
        """The newest camera frame (for enrollment from the live camera)."""
        return self._frames.get()[1]

    def latest_result(self) -> Recognized | None:
        return self._results.get()[1]

    def _tick(self) -> None:
        if self._closing:
            return
        fseq, frame = self._frames.get()
        rseq, rec = self._results.get()
        # Boxes are only ever drawn on the frame they were found in. Raw frames (no boxes)
        # only while recognition is not running: models loading or missing, no result yet,
        # or no result for a while although the camera delivers (recognition failing).
        fresh = rec is not None and self._models_state == "ready" and (
            frame is None or frame.captured - rec.result.captured <= RESULT_STALE_SECONDS)
        if fresh:
            if rseq != self._shown_result_seq:
                self._shown_result_seq = rseq
                self._shown_frame_seq = -1
                self._shown = rec
                self.view.set_frame(rec.result.image, self._decide(rec), rec.result.captured)
        elif fseq != self._shown_frame_seq:
            self._shown_frame_seq = fseq
            self._shown_result_seq = -1
            self._shown = None
            self.view.set_frame(frame.image if frame is not None else None, (),
                                frame.captured if frame is not None else None)
        self._update_overlay()
        now = time.monotonic()
        if now - self._last_status >= 0.5:
            self._last_status = now
            self._update_status()

    def _update_overlay(self) -> None:
        rw = self.recognition_worker
        if self._models_state == "ready" and rw is not None:
            error = rw.last_error
            self.view.set_banner(f"Recognition error: {error}" if error else None, "error")
        worker = self.capture_worker
        if worker is None:
            self.view.set_message("No camera")
            return
        st = worker.status()
        name = st.description
        if st.state == "connecting":
            if st.error:
                text = f"Camera not available: {st.error} — retrying…"
            else:
                text = f"Connecting to {name}…"
            self.view.set_message(text, dim=True)
        elif st.state == "lost":
            self.view.set_message(f"Camera lost: {st.error or name} — retrying…", dim=True)
        elif st.state == "eof":
            what = "the images" if name.startswith(("folder", "image")) else "video"
            hint = "" if self.reception else " (Camera ▸ Restart to play it again)"
            self.view.set_message(f"End of {what}{hint}", dim=True)
        elif st.state == "running" and st.last_frame is not None \
                and time.monotonic() - st.last_frame > STALL_SECONDS:
            self.view.set_message(f"No picture from {name} for {time.monotonic() - st.last_frame:.0f} s…", dim=True)
        else:
            self.view.set_message(None)

    def _on_painted(self, captured: float) -> None:
        self._latencies.append((time.monotonic() - captured) * 1000.0)

    def stats(self) -> dict[str, float]:
        """Camera fps, recognition fps and median latency (ms, frame captured -> drawn)."""
        cam = self.capture_worker.rate.rate() if self.capture_worker else 0.0
        rec = self.recognition_worker.rate.rate() if self.recognition_worker else 0.0
        lat = statistics.median(self._latencies) if self._latencies else float("nan")
        return {"camera_fps": cam, "recognition_fps": rec, "latency_ms": lat}

    def _update_status(self) -> None:
        s = self.stats()
        parts = [f"camera {s['camera_fps']:.1f} fps"]
        if self._models_state == "ready":
            parts.append(f"recognition {s['recognition_fps']:.1f} fps")
            if self._latencies:
                parts.append(f"latency {s['latency_ms']:.0f} ms")
            parts.append(f"{len(self.view.faces)} face{'s' if len(self.view.faces) != 1 else ''}")
        self.stats_label.setText("  ·  ".join(parts))
        worker = self.capture_worker
        if worker is not None:
            st = worker.status()
            self.source_label.setText(f"{st.description} — {st.state}")
