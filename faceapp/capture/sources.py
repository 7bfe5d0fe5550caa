"""Frame sources: webcam, video file, network stream, image folder and in-memory replay.

All of them hand out :class:`Frame` objects whose image is already HxWx3 BGR uint8.
A source is opened, read and closed from one thread; only ``ResilientSource.stop`` may
be called from another.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import cv2
import numpy as np

from faceapp.capture.images import IMAGE_SUFFIXES, iter_image_files, load_image
from faceapp.core.errors import FaceAppError, ImageError
from faceapp.core.image import to_bgr8
from faceapp.core.redact import redact_url

__all__ = [
    "ArraySource",
    "CameraSource",
    "Frame",
    "FrameSource",
    "ImageFolderSource",
    "ResilientSource",
    "STREAM_PREFIXES",
    "SourceError",
    "StreamSource",
    "VideoFileSource",
    "open_source",
]

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], object]

STREAM_PREFIXES = ("rtsp://", "rtsps://", "http://", "https://")  # what open_source treats as a stream URL
_STREAM_TIMEOUT_MS = 10_000
# A camera often fails its first grab or two right after opening; a few misses in a row
# are tolerated before we call it lost.
_CAMERA_READ_ATTEMPTS = 3


@dataclass(frozen=True, eq=False)
class Frame:
    """One picture from a source."""

    image: np.ndarray  # HxWx3 BGR uint8
    index: int  # 0, 1, 2... per source, counting on across loops
    captured: float  # time.monotonic() when read
    position: float | None  # seconds into a file/video; None for live sources


class SourceError(FaceAppError):
    """A frame source could not be opened or stopped delivering frames."""


@runtime_checkable
class FrameSource(Protocol):
    """What the GUI worker, the CLI and the tests read frames from."""

    description: str
    live: bool
    fps: float | None

    def open(self) -> None:
        """Start the source; raise SourceError with a clear message."""

    def read(self) -> Frame | None:
        """Next frame, or None at end of stream; raise SourceError on failure."""

    def close(self) -> None:
        """Release the source (idempotent), from the thread that opened it."""


class _Pacer:
    """Sleeps so that frames come out at their stream time, without bursts after a stall."""

    def __init__(self, period: float, clock: Clock, sleep: Sleep) -> None:
        self._period = period
        self._clock = clock
        self._sleep = sleep
        self._origin: tuple[float, float] | None = None  # (clock time, stream time)

    def reset(self) -> None:
        self._origin = None

    def wait(self, stream_time: float) -> None:
        now = self._clock()
        if self._origin is None:
            self._origin = (now, stream_time)
            return
        wall0, stream0 = self._origin
        delay = wall0 + (stream_time - stream0) - now
        # Beyond these bounds the timeline is meaningless (broken timestamps, or the
        # consumer stalled): restart it here rather than sleep long or race to catch up.
        limit = max(1.0, 2.0 * self._period)
        if delay > limit or delay < -limit:
            self._origin = (now, stream_time)
        elif delay > 0:
            self._sleep(delay)


def _normalise(image: object, description: str) -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise SourceError(f"{description}: the decoder returned no picture")
    try:
        return to_bgr8(image)
    except ImageError as exc:
        raise SourceError(f"{description}: unusable frame ({exc})") from None


def _valid_fps(value: float) -> float | None:
    # OpenCV reports 0, NaN or absurd rates when the container does not know.
    return float(value) if math.isfinite(value) and 0.0 < value <= 1000.0 else None


class _CaptureSource:
    """Shared cv2.VideoCapture handling for cameras, files and streams."""

    description: str
    live: bool
    fps: float | None

    def __init__(self) -> None:
        self._cap: cv2.VideoCapture | None = None
        self._index = 0

    def close(self) -> None:
        cap, self._cap = self._cap, None
        if cap is not None:
            try:
                cap.release()
            except cv2.error as exc:  # a vanished device can fail to release; nothing to do
                log.debug("release of %s failed: %s", self.description, exc)

    def _require_open(self) -> cv2.VideoCapture:
        if self._cap is None:
            raise SourceError(f"{self.description} is not open")
        return self._cap

    def _grab(self) -> np.ndarray | None:
        cap = self._require_open()
        try:
            ok, image = cap.read()
        except cv2.error as exc:
            raise SourceError(f"{self.description}: read failed ({' '.join(str(exc).split())})") from None
        return image if ok else None

    def _frame(self, image: np.ndarray, position: float | None) -> Frame:
        frame = Frame(_normalise(image, self.description), self._index, time.monotonic(), position)
        self._index += 1
        return frame


class CameraSource(_CaptureSource):
    """A local webcam by number (0 is the first)."""

    live = True

    def __init__(self, index: int, width: int | None = None, height: int | None = None) -> None:
        super().__init__()
        self.index = int(index)
        self.width = width
        self.height = height
        self.description = f"webcam {self.index}"
        self.fps = None

    def open(self) -> None:
        """Open the webcam; SourceError if it is missing or busy."""
        self.close()
        self._index = 0
        # V4L2 directly: the automatic choice on Linux may pick GStreamer/Orbbec and
        # take seconds to give up; other platforms keep OpenCV's default.
        backends = [cv2.CAP_V4L2, cv2.CAP_ANY] if sys.platform.startswith("linux") else [cv2.CAP_ANY]
        cap = None
        for backend in backends:
            try:
                with quiet_opencv():  # a missing camera is our one-line error, not OpenCV's dozen
                    candidate = cv2.VideoCapture(self.index, backend)
            except cv2.error as exc:
                log.debug("webcam %d with backend %d: %s", self.index, backend, exc)
                continue
            if candidate.isOpened():
                cap = candidate
                break
            candidate.release()
        if cap is None:
            hint = ""
            if sys.platform.startswith("linux") and not Path(f"/dev/video{self.index}").exists():
                hint = f" (there is no /dev/video{self.index})"
            raise SourceError(
                f"cannot open webcam {self.index}{hint}: is it connected, and not in use by another program?")
        if self.width:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, float(self.width))
        if self.height:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, float(self.height))
        # A one-frame driver buffer keeps what we show close to "now".
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1.0)
        self.fps = _valid_fps(cap.get(cv2.CAP_PROP_FPS))
        self._cap = cap
        log.info("opened %s", self.description)

    def read(self) -> Frame | None:
        """Next webcam frame; a camera has no end, so failure raises SourceError."""
        for _ in range(_CAMERA_READ_ATTEMPTS):
            image = self._grab()
            if image is not None:
                return self._frame(image, None)
        raise SourceError(f"{self.description} stopped delivering frames (unplugged?)")


class StreamSource(_CaptureSource):
    """An RTSP or HTTP camera stream."""

    live = True

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self.description = f"stream {redact_url(url)}"
        self.fps = None

    def open(self) -> None:
        """Connect (with a timeout); SourceError if the stream cannot be reached."""
        self.close()
        self._index = 0
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, _STREAM_TIMEOUT_MS, cv2.CAP_PROP_READ_TIMEOUT_MSEC, _STREAM_TIMEOUT_MS]
        try:
            cap = cv2.VideoCapture(self.url, cv2.CAP_FFMPEG, params)
        except cv2.error as exc:
            raise SourceError(f"cannot open {self.description}: {' '.join(str(exc).split())}") from None
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"cannot open {self.description}: unreachable, wrong address or unsupported stream")
        self.fps = _valid_fps(cap.get(cv2.CAP_PROP_FPS))
        self._cap = cap
        log.info("opened %s", self.description)

    def read(self) -> Frame | None:
        """Next frame; a live stream has no end, so a failed read raises SourceError."""
        image = self._grab()
        if image is None:
            raise SourceError(f"{self.description} stopped delivering frames")
        return self._frame(image, None)


class VideoFileSource(_CaptureSource):
    """A video file; ``realtime`` plays it at its own speed, ``loop`` restarts it at the end."""

    live = False

    def __init__(
        self,
        path: str | Path,
        loop: bool = False,
        realtime: bool = False,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        super().__init__()
        self.path = Path(path)
        self.loop = loop
        self.realtime = realtime
        self.description = f"video {self.path.name}"
        self.fps = None
        self._clock = clock
        self._sleep = sleep
        self._pacer: _Pacer | None = None
        self._pending: np.ndarray | None = None
        self._in_cycle = 0  # frames read since the start of the current loop
        self._cycle_offset = 0.0  # stream time at which the current loop started
        self._last_position = 0.0

    def open(self) -> None:
        """Open the file and check it has a first frame; SourceError otherwise."""
        self.close()
        if not self.path.exists():
            raise SourceError(f"video file not found: '{self.path}'")
        if not self.path.is_file():
            raise SourceError(f"'{self.path}' is not a video file")
        cap = self._capture()
        self._cap = cap
        self.fps = _valid_fps(cap.get(cv2.CAP_PROP_FPS))
        first = self._grab()
        if first is None:
            self.close()
            raise SourceError(f"'{self.path}' has no video frames (not a video, or an unsupported codec)")
        self._pending = first
        self._index = 0
        self._in_cycle = 0
        self._cycle_offset = 0.0
        self._last_position = 0.0
        self._pacer = _Pacer(1.0 / (self.fps or 25.0), self._clock, self._sleep) if self.realtime else None
        log.info("opened %s (%s fps)", self.description, f"{self.fps:.2f}" if self.fps else "unknown")

    def _capture(self) -> cv2.VideoCapture:
        try:
            cap = cv2.VideoCapture(str(self.path))
        except cv2.error as exc:
            raise SourceError(f"cannot open video '{self.path}': {' '.join(str(exc).split())}") from None
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"cannot open video '{self.path}': not a video file, or an unsupported format")
        return cap

    def read(self) -> Frame | None:
        """Next frame, paced if realtime; None at the end unless looping."""
        if self._pending is not None:
            image, self._pending = self._pending, None
        else:
            image = self._grab()
            if image is None:
                if not self.loop:
                    return None
                image = self._restart()
        position = self._position()
        self._in_cycle += 1
        self._last_position = position
        if self._pacer is not None:
            self._pacer.wait(self._cycle_offset + position)
        return self._frame(image, position)

    def _position(self) -> float:
        msec = self._require_open().get(cv2.CAP_PROP_POS_MSEC)
        if math.isfinite(msec) and msec >= 0.0 and (msec > 0.0 or self._in_cycle == 0):
            return msec / 1000.0
        # No usable timestamp from the container: count frames instead.
        return self._in_cycle / (self.fps or 25.0)

    def _restart(self) -> np.ndarray:
        if self._in_cycle == 0:
            raise SourceError(f"{self.description}: no frames to loop over")
        # The next loop starts one frame after the last one of this loop, in stream time.
        self._cycle_offset += self._last_position + 1.0 / (self.fps or 25.0)
        self._in_cycle = 0
        cap = self._require_open()
        image = None
        if cap.set(cv2.CAP_PROP_POS_FRAMES, 0.0):
            image = self._grab()
        if image is None:
            # Some containers cannot seek: reopening always works.
            self.close()
            self._cap = self._capture()
            image = self._grab()
        if image is None:
            raise SourceError(f"{self.description}: cannot restart the video at its beginning")
        log.debug("%s: looping", self.description)
        return image


class _ListSource:
    """Frames from a fixed list of items, one per ``1/fps`` of stream time."""

    live = False
    description: str

    def __init__(self, fps: float, loop: bool, realtime: bool, clock: Clock, sleep: Sleep) -> None:
        if not (math.isfinite(fps) and fps > 0):
            raise ValueError(f"fps must be positive, not {fps}")
        self._rate = float(fps)
        self.fps: float | None = self._rate
        self.loop = loop
        self.realtime = realtime
        self._clock = clock
        self._sleep = sleep
        self._pacer: _Pacer | None = None
        self._opened = False
        self._index = 0
        self._cursor = 0  # position in the item list
        self._delivered_in_cycle = 0

    def _start(self) -> None:
        self._opened = True
        self._index = 0
        self._cursor = 0
        self._delivered_in_cycle = 0
        self._pacer = _Pacer(1.0 / self._rate, self._clock, self._sleep) if self.realtime else None

    def close(self) -> None:
        """Forget the read position (idempotent)."""
        self._opened = False

    def _count(self) -> int:
        raise NotImplementedError

    def _produce(self, cursor: int) -> np.ndarray | None:
        """The picture for one item, or None to skip it."""
        raise NotImplementedError

    def read(self) -> Frame | None:
        """Next frame, paced if realtime; None at the end unless looping."""
        if not self._opened:
            raise SourceError(f"{self.description} is not open")
        n = self._count()
        while True:
            if self._cursor >= n:
                if not self.loop or n == 0:
                    return None
                if self._delivered_in_cycle == 0:
                    raise SourceError(f"{self.description}: nothing readable to loop over")
                self._cursor = 0
                self._delivered_in_cycle = 0
            cursor = self._cursor
            self._cursor += 1
            image = self._produce(cursor)
            if image is None:
                continue
            position = cursor / self._rate
            if self._pacer is not None:
                # Stream time keeps growing across loops so the pacing has no gap or burst.
                self._pacer.wait(self._index / self._rate)
            self._delivered_in_cycle += 1
            frame = Frame(image, self._index, time.monotonic(), position)
            self._index += 1
            return frame


class ImageFolderSource(_ListSource):
    """Each image of a folder (or a single image file) as one frame; unreadable images are skipped."""

    def __init__(
        self,
        folder: str | Path,
        fps: float = 2.0,
        loop: bool = False,
        realtime: bool = False,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        super().__init__(fps, loop, realtime, clock, sleep)
        self.folder = Path(folder)
        self._files: list[Path] = []
        self.current_file: Path | None = None  # the file the last frame came from
        self.description = self._describe()

    def _describe(self) -> str:
        if self.folder.is_file():
            return f"image {self.folder.name}"
        count = f" ({len(self._files)} image{'s' if len(self._files) != 1 else ''})" if self._opened else ""
        return f"folder {self.folder.name or self.folder}/{count}"

    def open(self) -> None:
        """List the images; SourceError if the folder is missing or has none."""
        if self.folder.is_file():
            if self.folder.suffix.lower() not in IMAGE_SUFFIXES:
                raise SourceError(f"'{self.folder}' is not an image file")
            files = [self.folder]
        else:
            try:
                files = iter_image_files(self.folder)
            except ImageError as exc:
                raise SourceError(str(exc)) from None
            if not files:
                kinds = " ".join(sorted(IMAGE_SUFFIXES))
                raise SourceError(f"folder '{self.folder}' has no images ({kinds})")
        self._files = files
        self._start()
        self.description = self._describe()
        log.info("opened %s", self.description)

    def _count(self) -> int:
        return len(self._files)

    def _produce(self, cursor: int) -> np.ndarray | None:
        path = self._files[cursor]
        try:
            image = load_image(path)
        except ImageError as exc:
            log.warning("skipping unreadable image: %s", exc)
            return None
        self.current_file = path
        return image


class ArraySource(_ListSource):
    """Replays in-memory frames (tests, recorded sessions)."""

    def __init__(
        self,
        frames: Sequence[np.ndarray],
        fps: float = 25.0,
        loop: bool = False,
        realtime: bool = False,
        description: str = "replay",
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        super().__init__(fps, loop, realtime, clock, sleep)
        self._frames = frames
        self.description = description

    def open(self) -> None:
        """Rewind to the first frame."""
        self._start()

    def _count(self) -> int:
        return len(self._frames)

    def _produce(self, cursor: int) -> np.ndarray | None:
        # A copy, so a consumer drawing on a frame does not alter the next loop's frame.
        return _normalise(self._frames[cursor], self.description).copy()


def open_source(spec: str, loop: bool = False, realtime: bool = True) -> FrameSource:
    """Build (without opening) the source a ``--camera`` value names."""
    text = str(spec).strip()
    if re.fullmatch(r"[0-9]+", text):
        return CameraSource(int(text))
    device = re.fullmatch(r"/dev/video([0-9]+)", text)
    if device and sys.platform.startswith("linux"):
        return CameraSource(int(device.group(1)))
    if text.lower().startswith(STREAM_PREFIXES):
        return StreamSource(text)
    if text:
        path = Path(text).expanduser()
        if path.is_dir():
            return ImageFolderSource(path, loop=loop, realtime=realtime)
        if path.is_file():
            if path.suffix.lower() in IMAGE_SUFFIXES:
                return ImageFolderSource(path, loop=loop, realtime=realtime)
            return VideoFileSource(path, loop=loop, realtime=realtime)
    raise SourceError(
        f"camera source '{text}' not found: give a webcam number, a video file, a URL or a folder of images")


_QUIET_LOCK = threading.Lock()
_quiet_depth = 0
_saved_level: int | None = None


@contextlib.contextmanager
def quiet_opencv() -> Iterator[None]:
    """OpenCV's own console messages off meanwhile (its warnings on every retry of a missing
    webcam went to stderr; ResilientSource logs one line per change of state instead)."""
    global _quiet_depth, _saved_level
    with _QUIET_LOCK:
        if _quiet_depth == 0:
            _saved_level = cv2.utils.logging.getLogLevel()
            cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
        _quiet_depth += 1
    try:
        yield
    finally:
        with _QUIET_LOCK:
            _quiet_depth -= 1
            if _quiet_depth == 0 and _saved_level is not None:
                cv2.utils.logging.setLogLevel(_saved_level)


class ResilientSource:
    """Wraps a source for live use: ``read`` never raises, it reconnects with backoff instead.

    ``state`` is "connecting" (never delivered yet), "running", "lost" (waiting to
    reconnect), "eof" or "stopped"; ``last_error`` keeps the most recent failure message.
    """

    def __init__(
        self,
        factory: Callable[[], FrameSource],
        retry_initial: float = 0.5,
        retry_max: float = 5.0,
        clock: Clock = time.monotonic,
        sleep: Sleep | None = None,
    ) -> None:
        """``sleep=None`` waits on the stop event, so :meth:`stop` cuts a backoff short."""
        self._factory = factory
        self._retry_initial = max(0.0, float(retry_initial))
        self._retry_max = max(self._retry_initial, float(retry_max))
        self._clock = clock
        self._sleep = sleep
        self._stop = threading.Event()
        self._inner: FrameSource | None = None
        self._delay = self._retry_initial
        self._index = 0
        self._ever_ran = False
        self.description = "camera"
        self.live = True
        self.fps: float | None = None
        self.state = "connecting"
        self.last_error: str | None = None
        self.state_since = clock()

    def open(self) -> None:
        """Prepare for reading; never raises (the connection is made by :meth:`read`)."""
        if self.state in ("eof", "stopped") and not self._stop.is_set():
            self._set_state("connecting")

    def read(self) -> Frame | None:
        """Next frame; None only once stopped or at the end of a non-looping file."""
        while not self._stop.is_set():
            if self.state == "eof":
                return None
            if self._inner is None and not self._connect():
                self._backoff()
                continue
            inner = self._inner
            assert inner is not None
            try:
                frame = inner.read()
            except Exception as exc:  # SourceError, but cv2/numpy surprises must not kill the worker
                self._fail(f"{inner.description}: {_message(exc)}")
                self._backoff()
                continue
            if self._stop.is_set():
                break
            if frame is None:
                if inner.live:
                    self._fail(f"{inner.description} ended unexpectedly")
                    self._backoff()
                    continue
                self._drop_inner()
                self._set_state("eof")
                log.info("%s: end of stream", self.description)
                return None
            if self.state != "running":
                log.info("%s: running", self.description)
                self._set_state("running")
            self._ever_ran = True
            self._delay = self._retry_initial
            frame = dataclasses.replace(frame, index=self._index)
            self._index += 1
            return frame
        self._drop_inner()
        self._set_state("stopped")
        return None

    def stop(self) -> None:
        """Ask a reading thread to finish; safe from any thread, wakes a backoff wait."""
        self._stop.set()

    @property
    def stopped(self) -> bool:
        """True once :meth:`stop` or :meth:`close` was called."""
        return self._stop.is_set()

    def close(self) -> None:
        """Stop and release the inner source (idempotent); call from the reading thread."""
        self._stop.set()
        self._drop_inner()
        self._set_state("stopped")

    def _connect(self) -> bool:
        try:
            inner = self._factory()
            self._adopt(inner)
            inner.open()
        except Exception as exc:
            self._fail(_message(exc))
            return False
        self._inner = inner
        self._adopt(inner)  # fps is often only known once open
        return True

    def _adopt(self, inner: FrameSource) -> None:
        self.description = inner.description
        self.live = inner.live
        self.fps = inner.fps

    def _fail(self, message: str) -> None:
        self._drop_inner()
        # Only a new kind of failure is worth a warning; a camera that stays unplugged
        # would otherwise fill the log every few seconds.
        level = logging.DEBUG if message == self.last_error else logging.WARNING
        log.log(level, "%s: %s; retrying in %.1f s", self.description, message, self._delay)
        self.last_error = message
        self._set_state("lost" if self._ever_ran else "connecting")

    def _backoff(self) -> None:
        delay = self._delay
        self._delay = min(self._retry_max, max(delay * 2.0, 0.05))
        if self._stop.is_set():
            return
        if self._sleep is None:
            self._stop.wait(delay)
        else:
            self._sleep(delay)

    def _drop_inner(self) -> None:
        inner, self._inner = self._inner, None
        if inner is not None:
            try:
                inner.close()
            except Exception as exc:  # closing a broken device can fail; it is gone either way
                log.debug("closing %s failed: %s", inner.description, exc)

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.state_since = self._clock()


def _message(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
