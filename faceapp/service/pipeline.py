"""The live recognition pipeline shared by the reception window and `faceapp watch`.

``Pipeline.process(frame)`` detects faces on every frame, follows them with a
:class:`faceapp.core.tracking.Tracker`, embeds only the faces whose identity can change
(new, unsettled, periodically, or moved a lot: see the tracking module), in one batch,
votes identities over several frames, decides access for the door, and logs each
walk past the camera once. It is called from one worker thread; ``threshold`` may be
changed from another thread at any time (a float assignment is atomic) and applies to
the next frame.

Event times are wall-clock UTC; tracking and cooldowns run on ``frame.captured``
(monotonic seconds), so a video file processed faster than real time still has a
consistent timeline within one run.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone

import cv2
import numpy as np

from faceapp.capture.sources import Frame
from faceapp.core.access import AccessDecision, AccessRules
from faceapp.core.errors import StoreError
from faceapp.core.image import to_bgr8
from faceapp.core.matcher import Aggregate, Gallery
from faceapp.core.tracking import KNOWN, PENDING, LogRequest, Tracker, TrackerConfig, TrackView, frame_observations
from faceapp.core.types import BBox
from faceapp.service.app import App
from faceapp.service.visitors import FaceEventLog, entry_face
from faceapp.store.attendance import AttendanceStore, NewEntry, make_snapshot, utc_iso

log = logging.getLogger(__name__)

# How often access rules and the template signature are re-read (changes made by another process).
REFRESH_SECONDS = 2.0
# Mean absolute change (0..255) of a 32x18 grey thumbnail between two processed frames above
# which the picture is a different scene (a cut, a camera switch or bump). Measured on our
# videos: ordinary motion stays under ~16, the Hamilton clip's three cuts are 26-30.
SCENE_CUT = 20.0


def scene_thumbnail(image: np.ndarray) -> np.ndarray:
    """Tiny grey version of a frame, enough to notice a change of scene."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return cv2.resize(grey, (32, 18), interpolation=cv2.INTER_AREA).astype(np.float32)


@dataclass(frozen=True)
class TrackedFace:
    """One face as the screen shows it.

    ``candidate_*`` is the nearest enrolled person whatever the threshold, so the
    display can re-decide known/unknown immediately when the slider moves.
    ``decision``: "granted" | "denied" | "unknown" | "pending" (still voting).
    ``access`` is what the door says about the candidate (granted/denied), and
    ``threshold`` the threshold ``decision`` was made with."""

    bbox: BBox
    track_id: int
    det_score: float
    distance: float
    candidate_id: int | None
    candidate_name: str | None
    known: bool
    decision: str
    access: str = "granted"
    threshold: float = math.nan

    @property
    def person_id(self) -> int | None:
        return self.candidate_id if self.known else None

    @property
    def name(self) -> str | None:
        return self.candidate_name if self.known else None

    def relabel(self, threshold: float) -> TrackedFace:
        """The same face judged with another threshold (for an instant slider preview).

        Only a distance that crosses between the two thresholds changes the verdict, so
        what the vote decided (margin, one person per frame) stays unless the slider says otherwise."""
        if self.decision == "pending" or self.candidate_id is None or not math.isfinite(self.distance):
            return self
        now_known = self.distance <= threshold
        was_known = self.distance <= self.threshold if math.isfinite(self.threshold) else self.known
        if now_known == was_known:
            return self
        if now_known:
            return replace(self, known=True, decision=self.access, threshold=threshold)
        return replace(self, known=False, decision="unknown", threshold=threshold)


@dataclass(frozen=True)
class EntryEvent:
    """A logged entry: one walk past the camera by one person (or an unknown face).

    ``time`` is aware UTC; ``entry_id`` is None when the pipeline does not log (preview)
    or the database refused the write. ``snapshot`` is a JPEG of the face with some context."""

    entry_id: int | None
    time: datetime
    door: str
    person_id: int | None
    name: str | None
    decision: str
    distance: float | None
    track_id: int | None = None
    reason: str | None = None
    snapshot: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True, eq=False)
class FrameResult:
    """What the pipeline made of one frame. ``image`` is the frame the boxes belong to.
    ``embedded`` counts the faces embedded for this frame (the others reused their track's vote)."""

    frame_index: int
    captured: float
    image: np.ndarray
    faces: tuple[TrackedFace, ...]
    events: tuple[EntryEvent, ...] = ()
    detect_ms: float = 0.0
    embed_ms: float = 0.0
    total_ms: float = 0.0
    embedded: int = 0


class Pipeline:
    """Frame in, :class:`FrameResult` out. Owns no thread; the caller provides one.

    With ``log_entries`` every event is written to the entry log (and old snapshots are
    purged at start); without it events are still returned (entry_id None)."""

    def __init__(self, app: App, door: str | None = None, log_entries: bool = False) -> None:
        self.app = app
        settings = app.settings
        self.door = door or settings.door
        self.log_entries = log_entries
        self.threshold = app.threshold
        self.aggregate = Aggregate.parse(settings.aggregate)
        self.tracker = Tracker(TrackerConfig.from_settings(settings))
        self._attendance = AttendanceStore(app.store)
        self._events = FaceEventLog(app)
        self._rules = AccessRules()
        self._refreshed = -math.inf
        self._signature: tuple | None = None
        self._gallery: Gallery | None = None
        self._thumb: np.ndarray | None = None
        self.scene_cuts = 0
        self._refresh()
        if self._rules.doors and self._rules.door(self.door) is None:
            # The CLI refuses this (service.attendance.resolve_door); a window just says so.
            log.warning("door '%s' is not configured: it admits every enrolled person", self.door)
        if log_entries:
            from faceapp.service.privacy import apply_retention

            # A station that logs also enforces retention (old snapshots and entries, audited).
            apply_retention(app)
            self._seed_cooldowns(settings.cooldown_seconds)
            try:
                self._events.regroup_pending(self.threshold)   # unknowns a crash left without a visitor
            except (StoreError, sqlite3.Error) as exc:
                log.warning("could not group earlier unknown entries into visitors: %s", exc)

    def _seed_cooldowns(self, cooldown: float) -> None:
        """People logged at this door moments before a restart are still in their cooldown."""
        if cooldown <= 0:
            return
        now_utc = datetime.now(timezone.utc)
        now = time.monotonic()
        recent = self._attendance.recent_people(self.door, utc_iso(now_utc - timedelta(seconds=cooldown)))
        for pid, t in recent.items():
            age = (now_utc - datetime.fromisoformat(t)).total_seconds()
            self.tracker.note_person_seen(pid, now - max(0.0, age))

    def reset(self) -> None:
        """Forget tracks (after a camera change or a gap in the stream); cooldowns are kept."""
        self.tracker.reset()
        self._thumb = None

    # -- per frame --------------------------------------------------------------------------
    def process(self, frame: Frame) -> FrameResult:
        t0 = time.perf_counter()
        threshold = float(self.threshold)
        self._refresh()
        engine = self.app.engine
        gallery = self._current_gallery()
        # Any source may hand over odd pixel formats; boxes, snapshots and the display all want BGR8.
        image = to_bgr8(frame.image)
        detections = engine.detect(image)
        t1 = time.perf_counter()
        now = frame.captured
        # After a cut, a face where someone else's box was would inherit that person's identity
        # without a fresh look; identities across a cut are unrelated, so start tracking afresh
        # (per-person cooldowns survive, so nobody is logged twice).
        thumb = scene_thumbnail(image)
        if self._thumb is not None and float(np.abs(thumb - self._thumb).mean()) > SCENE_CUT:
            self.tracker.reset()
            self.scene_cuts += 1
        self._thumb = thumb
        track_ids = self.tracker.update([d.bbox for d in detections], [d.score for d in detections], now)
        todo = [i for i, tid in enumerate(track_ids) if self.tracker.needs_embedding(tid)]
        if todo:
            faces = engine.embed(image, [detections[i] for i in todo])
            dist = gallery.person_distances(np.vstack([f.embedding for f in faces]), self.aggregate)
            blocked = self.tracker.held_people(track_ids, exclude=[track_ids[i] for i in todo])
            observations = frame_observations(dist, gallery.person_ids, threshold, blocked)
            for i, obs, face in zip(todo, observations, faces):
                self.tracker.observe(track_ids[i], obs, face.embedding)
        t2 = time.perf_counter()
        views, requests = self.tracker.resolve(track_ids, threshold, now)
        wall = datetime.now(timezone.utc)
        shown = tuple(self._tracked_face(v, gallery, threshold, wall) for v in views)
        events = tuple(self._event(r, image, gallery, wall) for r in requests)
        t3 = time.perf_counter()
        return FrameResult(frame.index, frame.captured, image, shown, events,
                           (t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t0) * 1e3, len(todo))

    def _current_gallery(self) -> Gallery:
        gallery = self.app.gallery()
        if gallery is not self._gallery:
            if self._gallery is not None:
                self.tracker.clear_votes()   # person ids/templates changed: look again
            self._gallery = gallery
            # The new gallery already holds the change that caused the reload (an in-process
            # change invalidates before the next frame), so _refresh must not see it as another
            # one and reload again. A change committed by another process in the moment between
            # the gallery query and this one is missed until the next change.
            try:
                self._signature = self._read_signature()
            except (StoreError, sqlite3.Error) as exc:
                log.warning("could not read the template signature: %s", exc)
        return gallery

    def _read_signature(self) -> tuple:
        """Counts and highest ids of templates and people: changes whenever the gallery would."""
        row = self.app.store.query(
            "SELECT (SELECT COUNT(*) FROM templates) AS a, (SELECT IFNULL(MAX(id), 0) FROM templates) AS b, "
            "(SELECT COUNT(*) FROM people WHERE active = 1) AS c, (SELECT IFNULL(MAX(id), 0) FROM people) AS d, "
            "(SELECT IFNULL(MAX(id), 0) FROM negatives) AS e")[0]
        return row["a"], row["b"], row["c"], row["d"], row["e"]

    def _refresh(self) -> None:
        """Re-read access rules, and notice templates changed by another process (cheap queries)."""
        now = time.monotonic()
        if now - self._refreshed < REFRESH_SECONDS:
            return
        self._refreshed = now
        try:
            self._rules = self._attendance.access_rules()
            signature = self._read_signature()
        except (StoreError, sqlite3.Error) as exc:
            log.warning("could not refresh access rules: %s", exc)
            return
        if self._signature is not None and signature != self._signature:
            self.app.invalidate_gallery()
        self._signature = signature

    def _access(self, person_id: int, when: datetime) -> AccessDecision:
        return self._rules.decide(self.door, person_id, when)

    def _tracked_face(self, v: TrackView, gallery: Gallery, threshold: float, wall: datetime) -> TrackedFace:
        cand = v.candidate_id
        name = gallery.names.get(cand) if cand is not None else None
        access = self._access(cand, wall).decision if cand is not None else "granted"
        known = v.status == KNOWN
        decision = access if known else "pending" if v.status == PENDING else "unknown"
        return TrackedFace(v.bbox, v.track_id, v.det_score, v.distance, cand, name, known, decision, access,
                           threshold)

    def _event(self, req: LogRequest, image: np.ndarray, gallery: Gallery, wall: datetime) -> EntryEvent:
        pid = req.person_id
        name = gallery.names.get(pid) if pid is not None else None
        reason = None
        if pid is None:
            decision = "unknown"
        else:
            verdict = self._access(pid, wall)
            decision, reason = verdict.decision, verdict.reason or None
        # Every event keeps a picture and its face (search by face, visitors, corrections);
        # retention removes both.
        snapshot = make_snapshot(image, req.bbox)
        distance = req.distance if math.isfinite(req.distance) else None
        entry_id = None
        if self.log_entries:
            face = entry_face(self.app, req.embedding, req.det_score, min(req.bbox.width, req.bbox.height))
            try:
                entry_id = self._events.log(NewEntry(wall, self.door, pid, name, decision, distance,
                                                     reason, req.track_id, snapshot, face), self.threshold)
            except (StoreError, sqlite3.Error) as exc:
                log.error("could not log the entry of %s at %s: %s", name or "an unknown face", self.door, exc)
        event = EntryEvent(entry_id, wall, self.door, pid, name, decision, distance, req.track_id, reason, snapshot)
        log.info("entry: %s %s at %s (distance %s)", decision, name or "unknown", self.door,
                 f"{distance:.2f}" if distance is not None else "-")
        return event
