"""The two background workers of the live window and the slots they share.

The capture worker reads a :class:`ResilientSource` in its own thread and overwrites a
one-item :class:`LatestSlot`; the recognition worker, in a second thread, always takes
the newest frame it has not seen (older ones are simply overwritten, never queued) and
publishes its newest :class:`Recognized` result the same way. The GUI pulls both slots
on a timer, so nothing can pile up and the GUI never waits for inference.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from PySide6.QtCore import QObject, Signal, Slot

from faceapp.capture.sources import Frame, FrameSource, ResilientSource
from faceapp.core.errors import FaceAppError
from faceapp.service.app import App
from faceapp.service.pipeline import FrameResult, Pipeline

log = logging.getLogger(__name__)

T = TypeVar("T")

SourceFactory = Callable[[], FrameSource]

# How long a worker blocks before looking at its stop flag again.
_POLL = 0.1


class LatestSlot(Generic[T]):
    """The newest item only (a lock and one reference): ``put`` replaces, readers never queue."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self._seq = 0

    def put(self, item: T | None) -> int:
        """Replace the item; returns its sequence number."""
        with self._cond:
            self._item = item
            self._seq += 1
            self._cond.notify_all()
            return self._seq

    def clear(self) -> None:
        self.put(None)

    def get(self) -> tuple[int, T | None]:
        """(sequence number, item) of the newest put."""
        with self._cond:
            return self._seq, self._item

    def wait_newer(self, seq: int, timeout: float) -> tuple[int, T | None]:
        """Like :meth:`get`, but first waits up to ``timeout`` s for something newer than ``seq``."""
        with self._cond:
            self._cond.wait_for(lambda: self._seq != seq, timeout)
            return self._seq, self._item


class RateMeter:
    """Events per second over a sliding window (thread-safe)."""

    def __init__(self, window: float = 2.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._window = window
        self._clock = clock
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def tick(self) -> None:
        now = self._clock()
        with self._lock:
            self._times.append(now)
            self._trim(now)

    def rate(self) -> float:
        now = self._clock()
        with self._lock:
            self._trim(now)
            if len(self._times) < 2:
                return 0.0
            span = now - self._times[0]
            return (len(self._times) - 1) / span if span > 0 else 0.0

    def _trim(self, now: float) -> None:
        while self._times and now - self._times[0] > self._window:
            self._times.popleft()


@dataclass(frozen=True, eq=False)
class Recognized:
    """A pipeline result as published to the window (each face carries its own threshold)."""

    result: FrameResult


@dataclass(frozen=True)
class CaptureStatus:
    """What the window shows about the camera."""

    state: str  # connecting | running | lost | eof | stopped
    description: str
    error: str | None
    last_frame: float | None  # time.monotonic() of the newest frame


class CaptureWorker(QObject):
    """Owns a ResilientSource: opens, reads and closes it in the thread it runs in.

    It emits nothing: the window polls :meth:`status` and the frame slot."""

    def __init__(self, factory: SourceFactory, frames: LatestSlot[Frame], retry_initial: float = 0.5,
                 retry_max: float = 5.0) -> None:
        super().__init__()
        self._factory = factory
        self._frames = frames
        self._stop = threading.Event()
        self._restart = threading.Event()
        self._inner: FrameSource | None = None
        self._loop: bool | None = None
        self._last_frame: float | None = None
        self.source = ResilientSource(self._make_source, retry_initial=retry_initial, retry_max=retry_max)
        self.rate = RateMeter()
        self.closed_in: threading.Thread | None = None  # the thread that released the camera

    def _make_source(self) -> FrameSource:
        inner = self._factory()
        if self._loop is not None and hasattr(inner, "loop"):
            inner.loop = self._loop
        self._inner = inner
        return inner

    @Slot()
    def run(self) -> None:
        """The read loop; returns (and ends the thread) once :meth:`stop` is called."""
        source = self.source
        try:
            source.open()
            while not self._stop.is_set():
                frame = source.read()
                if frame is not None and not self._stop.is_set():
                    self._last_frame = frame.captured
                    self.rate.tick()
                    self._frames.put(frame)
                    continue
                if frame is None and source.state == "eof":
                    # Wait for "play again" (or the loop switch) instead of spinning.
                    if self._restart.wait(_POLL):
                        self._restart.clear()
                        source.open()
        except Exception:  # a bug here must still release the camera below
            log.exception("capture worker failed")
        finally:
            source.close()
            self.closed_in = threading.current_thread()
            thread = self.thread()
            if thread is not None:
                thread.quit()

    def stop(self) -> None:
        """Ask the loop to end (any thread); wakes a reconnect backoff at once."""
        self._stop.set()
        self.source.stop()

    def restart(self) -> None:
        """Play a finished video or folder again (any thread)."""
        self._restart.set()

    def set_loop(self, loop: bool) -> None:
        """Switch looping of the current (and any reopened) video or folder (any thread)."""
        self._loop = loop
        inner = self._inner
        if inner is not None and hasattr(inner, "loop"):
            inner.loop = loop
        if loop and self.source.state == "eof":
            self.restart()

    def status(self) -> CaptureStatus:
        s = self.source
        return CaptureStatus(s.state, s.description, s.last_error, self._last_frame)


class RecognitionWorker(QObject):
    """Loads the models, then runs the pipeline on the newest frame, again and again.

    Results go to the result slot only (the window polls it); signals are for rare news."""

    modelsState = Signal(str, str)  # loading | ready | failed, message
    eventsReady = Signal(object)  # tuple[EntryEvent, ...]: entries just logged

    def __init__(self, app: App, frames: LatestSlot[Frame], results: LatestSlot[Recognized],
                 threshold: float, log_entries: bool = False, door: str | None = None) -> None:
        super().__init__()
        self.app = app
        self._frames = frames
        self._results = results
        self._threshold = float(threshold)
        self._log_entries = log_entries
        self._door = door
        self._stop = threading.Event()
        self._retry = threading.Event()
        self._door_changed = threading.Event()
        # Bumped by reset_tracks. A frame is tagged with the generation current before it
        # was taken; comparing and publishing under the lock means a result of the old camera
        # cannot land in the slot after the window cleared it for the new one.
        self._generation = 0
        self._publish = threading.Lock()
        self.pipeline: Pipeline | None = None
        self.rate = RateMeter()
        self.processed = 0
        self.ended = False  # True once run() gave up: a retry then needs a new worker
        self._last_error: str | None = None

    @property
    def threshold(self) -> float:
        return self._threshold

    @threshold.setter
    def threshold(self, value: float) -> None:
        """Applies from the next frame (a float assignment is atomic)."""
        self._threshold = float(value)
        pipeline = self.pipeline
        if pipeline is not None:
            pipeline.threshold = self._threshold

    @property
    def last_error(self) -> str | None:
        """Why the latest frame could not be processed (None once a frame succeeds)."""
        return self._last_error

    def stop(self) -> None:
        self._stop.set()
        self._retry.set()

    def retry_models(self) -> None:
        """Try loading the models again (after `faceapp models install`)."""
        self._retry.set()

    def set_door(self, door: str) -> None:
        """Decide and log for another door from the next frame (any thread)."""
        self._door = door
        self._door_changed.set()

    def reset_tracks(self) -> None:
        """Forget tracks before the next frame (the camera changed) and drop the result of any
        frame taken before this call. Clear the frame slot first: once this returns, no result
        of an old-camera frame reaches the result slot."""
        with self._publish:
            self._generation += 1

    @Slot()
    def run(self) -> None:
        try:
            if self._load_models():
                self._loop()
        except Exception:
            log.exception("recognition worker failed")
            self.ended = True  # before the news, so the window's retry already sees it
            self._set_models("failed", "recognition stopped after an internal error (see the log)")
        finally:
            self.ended = True
            thread = self.thread()
            if thread is not None:
                thread.quit()

    def _set_models(self, state: str, message: str = "") -> None:
        self.modelsState.emit(state, message)

    def _load_models(self) -> bool:
        while not self._stop.is_set():
            self._retry.clear()
            self._set_models("loading", "Loading models…")
            try:
                t0 = time.perf_counter()
                engine = self.app.engine
                log.info("models %s ready in %.1f s", engine.pack.name, time.perf_counter() - t0)
                pipeline = Pipeline(self.app, door=self._door, log_entries=self._log_entries)
                pipeline.threshold = self._threshold
                self.pipeline = pipeline
                self._set_models("ready", engine.pack.name)
                return True
            except FaceAppError as exc:
                log.warning("models not available: %s", exc)
                self._set_models("failed", str(exc))
            except Exception as exc:  # onnxruntime errors on a damaged file, for one
                log.exception("loading the models failed")
                self._set_models("failed", f"could not load the models: {exc}")
            self._retry.wait()
        return False

    def _loop(self) -> None:
        pipeline = self.pipeline
        assert pipeline is not None
        seq, _ = self._frames.get()
        tracked = self._generation  # the pipeline is fresh
        while not self._stop.is_set():
            generation = self._generation  # read before taking the frame: see reset_tracks
            new_seq, frame = self._frames.wait_newer(seq, _POLL)
            if new_seq == seq:
                continue
            seq = new_seq
            if self._door_changed.is_set():  # a new door: its own rules, cooldowns and tracks
                self._door_changed.clear()
                pipeline = Pipeline(self.app, door=self._door, log_entries=self._log_entries)
                pipeline.threshold = self._threshold
                self.pipeline = pipeline
            current = self._generation  # not `generation`: a new camera must never meet old tracks
            if current != tracked:
                tracked = current
                pipeline.reset()
            if frame is None:
                continue
            try:
                result = pipeline.process(frame)
            except Exception as exc:  # one bad frame must not stop recognition
                message = f"{type(exc).__name__}: {exc}"
                if message != self._last_error:
                    log.exception("recognition failed on frame %d", frame.index)
                self._last_error = message
                time.sleep(_POLL)
                continue
            self._last_error = None
            self.processed += 1
            self.rate.tick()
            with self._publish:
                if self._generation == generation:
                    self._results.put(Recognized(result))
            # Entries are in the log already (the person was seen), whichever camera is on now.
            if result.events:
                self.eventsReady.emit(result.events)
