"""The live window's recognition worker after a camera switch and after an internal error."""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest

from faceapp.gui.qt_env import clean_qt_environment

clean_qt_environment()

from faceapp.capture.sources import ArraySource, Frame  # noqa: E402
from faceapp.service.enroll import enroll_files  # noqa: E402
from faceapp.service.pipeline import FrameResult  # noqa: E402

from conftest import person_photos  # noqa: E402

pytestmark = [
    pytest.mark.gui,
    pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints"),
]

WAIT = 40_000  # ms; the machine is shared, nothing here is a timing assert


class SlowPipeline:
    """Stands in for the pipeline: ``process`` blocks until released, ``reset`` is counted."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.resets = 0
        self.threshold = 0.5

    def reset(self) -> None:
        self.resets += 1

    def process(self, frame: Frame) -> FrameResult:
        self.entered.set()
        assert self.release.wait(30)
        return FrameResult(frame.index, frame.captured, frame.image, ())


def _frame(index: int) -> Frame:
    return Frame(np.zeros((8, 8, 3), np.uint8), index, time.monotonic(), None)


def _wait(condition, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def test_a_result_of_the_old_camera_is_dropped_after_a_switch():
    from faceapp.gui.workers import LatestSlot, RecognitionWorker

    frames, results = LatestSlot(), LatestSlot()
    worker = RecognitionWorker(None, frames, results, 0.5)
    pipeline = worker.pipeline = SlowPipeline()
    loop = threading.Thread(target=worker._loop, daemon=True)
    loop.start()
    try:
        frames.put(_frame(1))
        assert pipeline.entered.wait(30)
        # What MainWindow.set_camera does while the worker is inside process(old frame).
        frames.clear()
        worker.reset_tracks()
        results.clear()
        cleared = results.get()[0]
        pipeline.release.set()
        assert _wait(lambda: worker.processed == 1)
        frames.put(_frame(2))  # the new camera's first frame: fresh tracks, shown
        assert _wait(lambda: results.get()[1] is not None)
        seq, rec = results.get()
        # The old frame's result was never put: the first result after the clear is frame 2.
        assert seq == cleared + 1 and rec.result.frame_index == 2 and pipeline.resets == 1
    finally:
        pipeline.release.set()
        worker.stop()
        loop.join(30)


def test_retry_restarts_recognition_after_an_internal_error(qtbot, app, monkeypatch):
    from faceapp.gui.main import build_main_window
    from faceapp.gui.workers import RecognitionWorker

    enroll_files(app, "Barack Obama", person_photos("face_recognition_examples", "Barack_Obama"))
    image = cv2.imread(str(person_photos("face_recognition_examples", "Barack_Obama")[0]))
    real_loop = RecognitionWorker._loop
    calls = []

    def loop_failing_once(self):
        calls.append(self)
        if len(calls) == 1:
            raise RuntimeError("simulated bug")
        return real_loop(self)

    monkeypatch.setattr(RecognitionWorker, "_loop", loop_failing_once)
    window = build_main_window(app, camera=ArraySource([image], fps=8.0, loop=True, realtime=True))
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.models_state == "failed", timeout=WAIT)
    assert "internal error" in window.view.banner and window.retry_models_action.isEnabled()
    window.retry_models_action.trigger()
    qtbot.waitUntil(lambda: window.models_state == "ready" and window.latest_result() is not None,
                    timeout=WAIT)
    assert len(calls) == 2
    thread = window.recognition_thread
    window.close()
    assert thread.isFinished()
