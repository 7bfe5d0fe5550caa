"""Several door cameras in one process: one engine, one gallery, a fair recognition scheduler.

Each camera has its own capture thread that keeps only the newest frame (nothing queues), and its
own :class:`~faceapp.service.pipeline.Pipeline` (tracks, votes, cooldowns and the door it logs
for). One recognition loop serves the cameras in turn: it always takes a camera's newest frame,
and picks the camera that has waited longest, weighted by need: a camera with faces still being
identified counts double, so a camera that shows nobody (detection only) or only settled faces
(the pipeline re-embeds none of them) yields to the others when the CPU is short. A camera that is
slow, ends, or cannot be opened only affects itself: the loop never waits for one camera.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

from faceapp.capture.sources import Frame, FrameSource, ResilientSource, SourceError, open_source
from faceapp.core.errors import FaceAppError, ImageError
from faceapp.core.settings import split_door_camera
from faceapp.service.app import App
from faceapp.service.attendance import WatchSummary, resolve_door, stop_reason
from faceapp.service.pipeline import FrameResult, Pipeline

log = logging.getLogger(__name__)

BUSY_WEIGHT = 2.0   # a camera with faces still being identified waits half as long for its turn


@dataclass(frozen=True)
class CameraSpec:
    """One camera of a station: a ``--camera``-style source text and the door it guards."""

    source: str
    door: str | None = None

    @classmethod
    def parse(cls, text: str) -> CameraSpec:
        """``SOURCE=DOOR``, split at the last '=' (so URLs with query strings work)."""
        return cls(*split_door_camera(text))


class CameraFeed:
    """A capture thread with a newest-frame slot. States: starting, running, ended, error."""

    def __init__(self, name: str, factory: Callable[[], FrameSource], wake: threading.Condition) -> None:
        self.name = name
        self._factory = factory
        self._wake = wake
        self._lock = threading.Lock()
        self._frame: Frame | None = None
        self._seq = 0
        self._taken = 0
        self.state = "starting"
        self.error: str | None = None
        self.description = name
        self.frames_read = 0
        self._stop = threading.Event()
        self._source: FrameSource | None = None
        self._thread = threading.Thread(target=self._run, name=f"camera {name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        try:
            src = self._factory()
            self._source = src
            src.open()
            self.description = src.description
            self.state = "running"
            while not self._stop.is_set():
                frame = src.read()
                if frame is None:
                    break
                with self._lock:
                    self._frame, self._seq = frame, self._seq + 1
                    self.frames_read += 1
                self._notify()
            self.state = "ended"
        except (SourceError, FaceAppError, OSError) as exc:
            self.error = str(exc)
            self.state = "error"
            log.error("camera %s: %s", self.name, exc)
        finally:
            src = self._source
            if src is not None:
                try:
                    src.close()
                except Exception as exc:  # noqa: BLE001 - closing must not hide why it stopped
                    log.debug("closing %s failed: %s", self.name, exc)
            self._notify()

    def _notify(self) -> None:
        with self._wake:
            self._wake.notify_all()

    def has_new(self) -> bool:
        return self._seq > self._taken

    def take(self) -> Frame | None:
        """The newest frame not handed out yet (older unseen ones are dropped), or None."""
        with self._lock:
            if self._seq <= self._taken:
                return None
            self._taken = self._seq
            return self._frame

    @property
    def finished(self) -> bool:
        """Nothing more will come (ended or failed) and the last frame was handed out."""
        return self.state in ("ended", "error") and not self.has_new()

    def stop(self) -> None:
        self._stop.set()
        src = self._source
        if isinstance(src, ResilientSource):
            src.stop()      # a reconnect back-off must not keep the thread

    def join(self, timeout: float | None = None) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout)


@dataclass
class CameraStats:
    """What one camera of a station did (latency = frame captured -> its labels ready)."""

    frames: int = 0
    latencies: list[float] = field(default_factory=list)
    events: list = field(default_factory=list)
    last_served: float = 0.0
    busy: bool = True


class FairScheduler:
    """Chooses the next camera: the one waiting longest for its turn, busy ones counting double."""

    def pick(self, ready: Sequence[int], stats: Sequence[CameraStats], now: float) -> int | None:
        best, best_score = None, -1.0
        for i in ready:
            s = stats[i]
            score = (now - s.last_served) * (BUSY_WEIGHT if s.busy else 1.0)
            if score > best_score:
                best, best_score = i, score
        return best


class Station:
    """Several cameras sharing one :class:`App` (engine and gallery). Call :meth:`start`, then
    :meth:`step` from one recognition thread (or :meth:`run`), then :meth:`stop`."""

    def __init__(self, app: App, cameras: Sequence[CameraSpec], log_entries: bool = True,
                 realtime: bool = True, loop: bool = False) -> None:
        if not cameras:
            raise ValueError("a station needs at least one camera")
        self.app = app
        self.cameras = list(cameras)
        self.doors = [resolve_door(app, c.door) for c in self.cameras]
        self._wake = threading.Condition()
        self.feeds = [CameraFeed(f"{d} ({c.source})", self._factory(c.source, realtime, loop), self._wake)
                      for c, d in zip(self.cameras, self.doors)]
        self.log_entries = log_entries
        self.threshold: float | None = None   # None: the settings' threshold
        # Built by prepare(), in the thread that runs the station: loading the gallery and the
        # retention purge take time, and a window builds its station in the GUI thread.
        self.pipelines: list[Pipeline] = []
        self.stats = [CameraStats() for _ in self.cameras]
        self.scheduler = FairScheduler()
        self.last_results: list[FrameResult | None] = [None] * len(self.cameras)

    @staticmethod
    def _factory(spec: str, realtime: bool, loop: bool) -> Callable[[], FrameSource]:
        def make() -> FrameSource:
            src = open_source(spec, loop=loop, realtime=realtime)
            if src.live:
                return ResilientSource(lambda: open_source(spec, loop=False, realtime=realtime))
            return src
        return make

    def prepare(self) -> None:
        """Load the models and build each door's pipeline (the slow part of :meth:`start`; once)."""
        self.app.engine  # noqa: B018 - load the models once, before any camera needs them
        if not self.pipelines:
            self.pipelines = [Pipeline(self.app, door=d, log_entries=self.log_entries, camera=i)
                              for i, d in enumerate(self.doors)]
        if self.threshold is not None:
            for p in self.pipelines:
                p.threshold = self.threshold

    def start(self) -> None:
        """Prepare, then start every camera's capture thread."""
        self.prepare()
        t = time.monotonic()
        for s in self.stats:
            s.last_served = t
        for f in self.feeds:
            f.start()

    @property
    def finished(self) -> bool:
        return all(f.finished for f in self.feeds)

    def step(self, timeout: float = 0.2) -> tuple[int, FrameResult] | None:
        """Process the newest frame of the camera whose turn it is; None if no camera had a new
        frame within ``timeout`` seconds."""
        with self._wake:
            ready = [i for i, f in enumerate(self.feeds) if f.has_new()]
            if not ready:
                self._wake.wait(timeout)
                ready = [i for i, f in enumerate(self.feeds) if f.has_new()]
        if not ready:
            return None
        now = time.monotonic()
        i = self.scheduler.pick(ready, self.stats, now)
        frame = self.feeds[i].take() if i is not None else None
        if frame is None:
            return None
        stats = self.stats[i]
        stats.last_served = now
        try:
            result = self.pipelines[i].process(frame)
        except ImageError as exc:    # one unusable frame must not end the station
            log.warning("%s: frame %d skipped: %s", self.doors[i], frame.index, exc)
            return None
        stats.frames += 1
        stats.latencies.append(time.monotonic() - frame.captured)
        stats.busy = any(f.decision == "pending" for f in result.faces)
        stats.events.extend(result.events)
        self.last_results[i] = result
        return i, result

    def take_events(self) -> list:
        """The entries logged since the last call, every camera's, oldest camera first; they are
        dropped from ``stats[i].events`` (a window that runs for days must not hoard them).
        Safe from another thread than :meth:`step`'s: only the already-seen head is cut."""
        out = []
        for s in self.stats:
            n = len(s.events)
            if n:
                out.extend(s.events[:n])
                del s.events[:n]
        return out

    def run(self, seconds: float | None = None, should_stop: Callable[[], bool] | None = None,
            on_event: Callable | None = None) -> list[WatchSummary]:
        """Start, serve every camera until all have ended (or ``seconds`` / ``should_stop``), stop."""
        self.start()
        t0 = time.monotonic()
        stopped_by = "eof"
        try:
            while not self.finished:
                reason = stop_reason(should_stop, seconds, t0)
                if reason:
                    stopped_by = reason
                    break
                done = self.step()
                if done is not None and on_event is not None:
                    for ev in done[1].events:
                        on_event(ev)
        except KeyboardInterrupt:
            stopped_by = "interrupted"
        finally:
            self.stop()
        elapsed = time.monotonic() - t0
        out = []
        for feed, door, stats in zip(self.feeds, self.doors, self.stats):
            why = f"error: {feed.error}" if feed.state == "error" else ("eof" if feed.state == "ended" else stopped_by)
            out.append(WatchSummary(feed.description, door, stats.frames, elapsed, why, tuple(stats.events)))
        return out

    def stop(self) -> None:
        for f in self.feeds:
            f.stop()
        with self._wake:
            self._wake.notify_all()
        for f in self.feeds:
            f.join(5.0)
