"""The live recognition pipeline shared by the reception window and `faceapp watch`.

``Pipeline.process(frame)`` detects and embeds faces, matches them against the
gallery and returns what to draw plus any attendance events to log. It is called
from one worker thread; ``threshold`` may be changed from another thread at any time
(a float assignment is atomic) and applies to the next frame.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from faceapp.capture.sources import Frame
from faceapp.core.matcher import Aggregate
from faceapp.core.types import BBox
from faceapp.service.app import App

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrackedFace:
    """One face as the screen shows it.

    ``candidate_*`` is the nearest enrolled person whatever the threshold, so the
    display can re-decide known/unknown immediately when the slider moves.
    ``decision``: "granted" | "denied" | "unknown" | "pending" (still voting)."""

    bbox: BBox
    track_id: int
    det_score: float
    distance: float
    candidate_id: int | None
    candidate_name: str | None
    known: bool
    decision: str

    @property
    def person_id(self) -> int | None:
        return self.candidate_id if self.known else None

    @property
    def name(self) -> str | None:
        return self.candidate_name if self.known else None

    def relabel(self, threshold: float) -> TrackedFace:
        """The same face judged with another threshold (for an instant slider preview)."""
        known = self.candidate_id is not None and self.distance <= threshold
        decision = self.decision
        if known != self.known:
            decision = "granted" if known else "unknown"
        return TrackedFace(self.bbox, self.track_id, self.det_score, self.distance, self.candidate_id,
                           self.candidate_name, known, decision)


@dataclass(frozen=True)
class EntryEvent:
    """A logged entry: one walk past the camera by one person (or an unknown face)."""

    entry_id: int | None
    time: datetime
    door: str
    person_id: int | None
    name: str | None
    decision: str
    distance: float | None


@dataclass(frozen=True, eq=False)
class FrameResult:
    """What the pipeline made of one frame. ``image`` is the frame the boxes belong to."""

    frame_index: int
    captured: float
    image: np.ndarray
    faces: tuple[TrackedFace, ...]
    events: tuple[EntryEvent, ...] = ()
    detect_ms: float = 0.0
    embed_ms: float = 0.0
    total_ms: float = 0.0
    extra: dict = field(default_factory=dict)


class Pipeline:
    """Frame in, :class:`FrameResult` out. Owns no thread; the caller provides one."""

    def __init__(self, app: App, door: str | None = None, log_entries: bool = False) -> None:
        self.app = app
        self.door = door or app.settings.door
        self.log_entries = log_entries
        self.threshold = app.threshold
        self.aggregate = Aggregate.parse(app.settings.aggregate)

    def reset(self) -> None:
        """Forget tracks (after a camera change or a gap in the stream)."""

    def process(self, frame: Frame) -> FrameResult:
        t0 = time.perf_counter()
        engine = self.app.engine
        detections = engine.detect(frame.image)
        t1 = time.perf_counter()
        faces = engine.embed(frame.image, detections)
        t2 = time.perf_counter()
        gallery = self.app.gallery()
        out = []
        if faces:
            emb = np.vstack([f.embedding for f in faces])
            pd = gallery.person_distances(emb, self.aggregate)
            threshold = self.threshold
            for i, f in enumerate(faces):
                if pd.shape[1] == 0:
                    out.append(TrackedFace(f.bbox, i, f.detection.score, float("inf"), None, None, False, "unknown"))
                    continue
                j = int(np.argmin(pd[i]))
                d = float(pd[i, j])
                pid = int(gallery.person_ids[j])
                known = d <= threshold
                out.append(TrackedFace(f.bbox, i, f.detection.score, d, pid, gallery.names.get(pid), known,
                                       "granted" if known else "unknown"))
        t3 = time.perf_counter()
        return FrameResult(frame.index, frame.captured, frame.image, tuple(out), (),
                           (t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t0) * 1e3)
