"""The Live page's machinery: a capture thread and a recognition thread feeding latest-frame
slots, and a display timer that pulls from them into the :class:`LiveView`. No widgets of its
own: the window, the status bar and the menus read it and call it."""

from __future__ import annotations

import logging
import statistics
import time
from collections import deque
from collections.abc import Callable

from PySide6.QtCore import QObject, QThread, QTimer, Signal

from faceapp.capture.sources import Frame, FrameSource, open_source
from faceapp.gui.live_view import LiveView
from faceapp.gui.widgets import in_window_terms, keep_alive
from faceapp.gui.workers import CaptureStatus, CaptureWorker, LatestSlot, Recognized, RecognitionWorker
from faceapp.service.app import App
from faceapp.service.pipeline import TrackedFace

log = logging.getLogger(__name__)

CameraSpec = str | FrameSource | Callable[[], FrameSource]

TICK_MS = 33
STATUS_SECONDS = 0.5
STALL_SECONDS = 3.0
RESULT_STALE_SECONDS = 2.0  # a result this much older than the newest frame is not shown
CAPTURE_STOP_MS = 5000
RECOGNITION_STOP_MS = 15000  # a model load in progress cannot be interrupted


def source_factory(spec: CameraSpec, loop: bool) -> Callable[[], FrameSource]:
    """A callable opening ``spec`` (a --camera text, a FrameSource or a factory) in the capture thread."""
    if isinstance(spec, str):
        text = spec
        return lambda: open_source(text, loop=loop, realtime=True)
    if callable(spec) and not isinstance(spec, FrameSource):
        return spec
    source = spec
    return lambda: source


def _retire(worker, thread: QThread | None, retired: list) -> list:
    """Ask ``worker`` to stop without waiting; the still running of ``retired`` plus this one."""
    kept = [(w, t) for w, t in retired if not t.isFinished()]
    if worker is not None and thread is not None:
        worker.stop()
        kept.append((worker, thread))
    return kept


class LiveController(QObject):
    """Runs the camera and recognition workers for one LiveView (see the module docstring)."""

    modelsStateChanged = Signal(str, str)  # loading | ready | failed, message
    eventsReady = Signal(object)  # tuple[EntryEvent, ...] just logged by the recognition worker
    resultShown = Signal(object)  # the Recognized now on screen
    statusTick = Signal()  # twice a second: time to refresh fps / source texts
    cameraChanged = Signal()  # another source: track numbers start again

    def __init__(self, app: App, view: LiveView, camera: CameraSpec, threshold: float,
                 log_entries: bool = True, door: str | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.app = app
        self.view = view
        self.log_entries = log_entries
        self.door = door
        self.reception = False  # only changes texts (no "Camera > Restart" hint at reception)
        self._threshold = float(threshold)
        self._loop = bool(app.settings.loop_video)
        self._camera: CameraSpec = camera
        self._frames: LatestSlot[Frame] = LatestSlot()
        self._results: LatestSlot[Recognized] = LatestSlot()
        self.capture_worker: CaptureWorker | None = None
        self.capture_thread: QThread | None = None
        self._retired: list[tuple[CaptureWorker, QThread]] = []  # stopped, maybe still finishing
        self._retired_recognition: list[tuple[RecognitionWorker, QThread]] = []
        self._suspended = False  # the Live page shows the station's door cameras instead
        self.recognition_worker: RecognitionWorker | None = None
        self.recognition_thread: QThread | None = None
        self._shown_frame_seq = -1
        self._shown_result_seq = -1
        self._shown: Recognized | None = None
        self._latencies: deque[float] = deque(maxlen=60)
        self._models_state = "loading"
        self._closing = False
        self._last_status = 0.0
        self.view.on_painted = self._on_painted
        self._timer = QTimer(self)
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self.tick)

    # -- lifecycle --------------------------------------------------------------
    def start(self) -> None:
        """Start loading the models, the camera and the display timer (once, or after :meth:`suspend`)."""
        if self._closing:
            return
        self._suspended = False
        if self.recognition_thread is None:
            self._start_recognition()
        if self.capture_thread is None:
            self._start_capture()
        self._timer.start()
        self.tick()

    @property
    def closing(self) -> bool:
        return self._closing

    def _start_recognition(self) -> None:
        worker = RecognitionWorker(self.app, self._frames, self._results, self._threshold,
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
        worker = CaptureWorker(source_factory(self._camera, self._loop), self._frames)
        thread = QThread(self)
        thread.setObjectName("capture")
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        self.capture_worker, self.capture_thread = worker, thread
        self._last_status = 0.0  # the next tick shows the source's own description at once
        thread.start()

    def _retire_capture(self) -> None:
        """Stop the current capture worker without waiting: its thread releases the camera and
        ends on its own (a stream read can block for seconds; the GUI must not)."""
        self._retired = _retire(self.capture_worker, self.capture_thread, self._retired)
        self.capture_worker = self.capture_thread = None

    def suspend(self) -> None:
        """Stop the camera and recognition until :meth:`start` (the Live page shows the door cameras'
        grid instead: two pipelines would halve the CPU of each). Does not wait: the threads end on
        their own and :meth:`shutdown` joins them."""
        self._suspended = True
        self._timer.stop()
        self._retire_capture()
        self._retired_recognition = _retire(self.recognition_worker, self.recognition_thread,
                                            self._retired_recognition)
        self.recognition_worker = self.recognition_thread = None
        self._frames.clear()
        self._results.clear()
        self._shown = None
        self.view.set_frame(None)
        self._latencies.clear()

    @property
    def suspended(self) -> bool:
        return self._suspended

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
        # Ask everyone first so they stop in parallel, then wait.
        captures = list(self._retired)
        if self.capture_worker is not None and self.capture_thread is not None:
            captures.append((self.capture_worker, self.capture_thread))
        for worker, _ in captures:
            worker.stop()
        recognitions = list(self._retired_recognition)
        if self.recognition_worker is not None and self.recognition_thread is not None:
            recognitions.append((self.recognition_worker, self.recognition_thread))
        for rworker, _ in recognitions:
            rworker.stop()
        deadline = time.monotonic() + CAPTURE_STOP_MS / 1000  # they stop in parallel: one deadline
        for _, thread in captures:
            self._join(thread, round((deadline - time.monotonic()) * 1000))
        deadline = time.monotonic() + RECOGNITION_STOP_MS / 1000
        for _, thread in recognitions:
            self._join(thread, round((deadline - time.monotonic()) * 1000))
        self._retired = []
        self._retired_recognition = []

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
        self._latencies.clear()
        if remember and isinstance(spec, str):
            self.app.update_settings(camera=spec)
        if not self._closing and not self._suspended:
            self._start_capture()
        self.cameraChanged.emit()

    def restart_camera(self) -> None:
        """Reconnect the current source (plays a video from the start again)."""
        self.set_camera(self._camera)

    @property
    def loop(self) -> bool:
        return self._loop

    def set_loop(self, loop: bool) -> None:
        """Loop videos and image folders; remembered in the settings."""
        self._loop = bool(loop)
        if self.capture_worker is not None:
            self.capture_worker.set_loop(self._loop)
        if self.app.settings.loop_video != self._loop:
            self.app.update_settings(loop_video=self._loop)

    def capture_status(self) -> CaptureStatus | None:
        return self.capture_worker.status() if self.capture_worker is not None else None

    # -- door -------------------------------------------------------------------
    @property
    def current_door(self) -> str:
        """The door this window decides and logs for."""
        return self.door or self.app.settings.door

    def set_door(self, name: str) -> None:
        """Decide and log for door ``name`` from the next frame; remembered in the settings."""
        self.door = name
        if self.app.settings.door != name:
            self.app.update_settings(door=name)
        if self.recognition_worker is not None:
            self.recognition_worker.set_door(name)

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
        elif state == "ready":
            self.view.set_banner(None)
        else:
            self.view.set_banner(f"Recognition is off: {in_window_terms(message)}\n"
                                 "(then choose Models ▸ Retry loading models)",
                                 "error")
        self.modelsStateChanged.emit(state, message)

    # -- threshold --------------------------------------------------------------
    @property
    def threshold(self) -> float:
        return self._threshold

    def set_threshold(self, value: float) -> None:
        """Re-decide the faces on screen at once; recognition uses it from the next frame."""
        self._threshold = float(value)
        if self.recognition_worker is not None:
            self.recognition_worker.threshold = self._threshold
        if self._shown is not None:
            self.view.set_faces(self.decide(self._shown))
            self.view.repaint()

    def decide(self, rec: Recognized) -> tuple[TrackedFace, ...]:
        """The result's faces at the current threshold: a face keeps the pipeline's decision
        (votes, margins) unless the slider moved its distance across the line."""
        return tuple(f.relabel(self._threshold) for f in rec.result.faces)

    # -- display ----------------------------------------------------------------
    def latest_frame(self) -> Frame | None:
        return self._frames.get()[1]

    def latest_result(self) -> Recognized | None:
        return self._results.get()[1]

    @property
    def shown(self) -> Recognized | None:
        """The result whose faces are on screen now (None while raw frames are shown)."""
        return self._shown

    def tick(self) -> None:
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
                self.view.set_frame(rec.result.image, self.decide(rec), rec.result.captured)
                self.resultShown.emit(rec)
        elif fseq != self._shown_frame_seq:
            self._shown_frame_seq = fseq
            self._shown_result_seq = -1
            self._shown = None
            self.view.set_frame(frame.image if frame is not None else None, (),
                                frame.captured if frame is not None else None)
        self._update_overlay()
        now = time.monotonic()
        if now - self._last_status >= STATUS_SECONDS:
            self._last_status = now
            self.statusTick.emit()

    def _update_overlay(self) -> None:
        rw = self.recognition_worker
        if self._models_state == "ready" and rw is not None:
            error = rw.last_error
            self.view.set_banner(f"Recognition error: {error}" if error else None, "error")
        st = self.capture_status()
        if st is None:
            self.view.set_message("No camera")
            return
        name = st.description
        if st.state == "connecting":
            text = f"Camera not available: {st.error} — retrying…" if st.error else f"Connecting to {name}…"
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

    def stats_text(self) -> str:
        """'camera 25.0 fps · recognition 6.1 fps · latency 80 ms · 2 faces'; no latency
        while no frame arrives (a stale number next to 0 fps would mislead)."""
        s = self.stats()
        parts = [f"camera {s['camera_fps']:.1f} fps"]
        if self._models_state == "ready":
            parts.append(f"recognition {s['recognition_fps']:.1f} fps")
            if self._latencies and s["camera_fps"] > 0:
                parts.append(f"latency {s['latency_ms']:.0f} ms")
            n = len(self.view.faces)
            parts.append(f"{n} face{'s' if n != 1 else ''}")
        return "  ·  ".join(parts)
