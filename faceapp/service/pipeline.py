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
from faceapp.core.errors import EmbeddingError, StoreError
from faceapp.core.image import to_bgr8
from faceapp.core.matcher import Aggregate, Gallery
from faceapp.core.tracking import KNOWN, PENDING, LogRequest, Tracker, TrackerConfig, TrackView, frame_observations
from faceapp.core.types import BBox
from faceapp.service.app import App
from faceapp.service.door_liveness import LivenessGate, is_liveness_denial
from faceapp.service.presence import SightingRecorder
from faceapp.service.visitors import FaceEventLog, entry_face
from faceapp.store.attendance import AttendanceStore, NewEntry, make_snapshot, utc_iso
from faceapp.store.blobs import embedding_from_blob

log = logging.getLogger(__name__)

# The reason logged and shown for a deactivated person (the plate says "inactive: NAME").
INACTIVE = "inactive"
# How often a station that logs applies the retention settings while it runs (seconds).
RETENTION_EVERY = 24 * 3600.0
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
    ``threshold`` the threshold ``decision`` was made with.
    ``liveness`` is "" where the door does not ask for it (or the face does not matter: unknown,
    refused), else "checking" / "live" / "not live" (service.door_liveness); ``prompt`` is what the
    person is asked to do (the head-turn challenge), ``live_score`` the passive median so far."""

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
    reason: str | None = None
    liveness: str = ""
    prompt: str = ""
    live_score: float = math.nan

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
    # Which camera of a station saw it (None: the only one). Track numbers are per camera, so two
    # cameras at one door can both have a track 1.
    camera: int | None = None


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
    liveness_ms: float = 0.0
    live_scored: int = 0


class Pipeline:
    """Frame in, :class:`FrameResult` out. Owns no thread; the caller provides one.

    With ``log_entries`` every event is written to the entry log (and old snapshots are
    purged at start); without it events are still returned (entry_id None)."""

    def __init__(self, app: App, door: str | None = None, log_entries: bool = False,
                 camera: int | None = None) -> None:
        self.app = app
        settings = app.settings
        self.door = door or settings.door
        self.log_entries = log_entries
        self.threshold = app.threshold
        self.aggregate = Aggregate.parse(settings.aggregate)
        self.tracker = Tracker(TrackerConfig.from_settings(settings))
        self.camera = camera   # which camera of a several-camera station: stamped on its events
        self.liveness = LivenessGate(app)
        self._attendance = AttendanceStore(app.store)
        self._events = FaceEventLog(app)
        # Who is in: a logging station also records sightings (Presence page, last out).
        self._sightings = SightingRecorder(app.store, self.door) if log_entries else None
        self._rules = AccessRules()
        self._rules_revision: int | None = None
        self._door_seen = False      # the door existed once: if it is removed, nobody passes
        self._tz = app.site_tz       # door hours are judged in the site's time zone
        self._next_retention = math.inf
        self._gallery: Gallery | None = None
        self._thumb: np.ndarray | None = None
        self.scene_cuts = 0
        self._refresh(self._current_gallery().revision)
        if self._rules.doors and self._rules.door(self.door) is None:
            log.warning("door '%s' is not configured: it admits nobody", self.door)
        if log_entries:
            from faceapp.service.privacy import apply_retention

            # A station that logs also enforces retention (old snapshots and entries, audited).
            apply_retention(app)
            # ... and again every day: a station left running for months must purge too.
            self._next_retention = time.monotonic() + RETENTION_EVERY
            self._seed_cooldowns(settings.cooldown_seconds)
            try:
                self._events.regroup_pending(self.threshold)   # unknowns a crash left without a visitor
            except (StoreError, sqlite3.Error) as exc:
                log.warning("could not group earlier unknown entries into visitors: %s", exc)

    def _retention(self) -> None:
        from faceapp.service.privacy import apply_retention

        self._next_retention = time.monotonic() + RETENTION_EVERY
        try:
            apply_retention(self.app)
        except (StoreError, sqlite3.Error) as exc:   # try again at the next period, keep recognising
            log.warning("retention could not run: %s", exc)

    def _seed_cooldowns(self, cooldown: float) -> None:
        """People and unknown faces logged at this door moments before a restart are still in their
        cooldown (with the decision they were logged with: a changed one is still an entry)."""
        if cooldown <= 0:
            return
        now_utc = datetime.now(timezone.utc)
        now = time.monotonic()
        since = utc_iso(now_utc - timedelta(seconds=cooldown))

        def when(t: str) -> float:
            return now - max(0.0, (now_utc - datetime.fromisoformat(t)).total_seconds())
        for pid, t, decision in self._attendance.recent_decisions(self.door, since):
            self.tracker.note_person_seen(pid, when(t), decision)
        for t, blob in self._attendance.recent_unknown_faces(self.door, since, self.app.model_id):
            try:
                self.tracker.note_unknown_seen(embedding_from_blob(blob), when(t))
            except EmbeddingError as exc:
                log.warning("an unknown face logged before the restart is unusable: %s", exc)

    def reset(self) -> None:
        """Forget tracks (after a camera change or a gap in the stream); cooldowns are kept."""
        self.tracker.reset()
        self.liveness.reset()
        self._thumb = None

    # -- per frame --------------------------------------------------------------------------
    def process(self, frame: Frame) -> FrameResult:
        t0 = time.perf_counter()
        threshold = float(self.threshold)
        gallery = self._current_gallery()
        self._refresh(gallery.revision)
        if time.monotonic() >= self._next_retention:
            self._retention()
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
            observations = frame_observations(dist, gallery.person_ids, threshold, blocked,
                                              self.tracker.config.min_margin)
            for i, obs, face in zip(todo, observations, faces):
                self.tracker.observe(track_ids[i], obs, face.embedding)
        t2 = time.perf_counter()
        wall = datetime.now(timezone.utc)
        views, requests = self.tracker.resolve(track_ids, threshold, now,
                                               lambda pid: self._access(pid, wall, gallery).decision)
        shown = tuple(self._tracked_face(v, gallery, threshold, wall) for v in views)
        # Doors that require liveness hold a known person's entry until their face is judged live.
        shown, released = self.liveness.apply(self._rules.liveness(self.door), image, shown,
                                              dict(zip(track_ids, detections)), requests, now)
        events = tuple(self._event(r, image, gallery, wall, why) for r, why in released)
        # What the log says is what the screen says (the database may have overruled this frame's gallery).
        final = {e.track_id: e for e in events if e.person_id is None or e.decision != "granted"}
        if final:
            shown = tuple(self._overruled(f, final.get(f.track_id)) for f in shown)
        if self._sightings is not None:
            # A photo held up to a liveness door is nobody's sighting.
            self._sightings.observe([f for f in shown if f.liveness in ("", "live")], wall)
        t3 = time.perf_counter()
        return FrameResult(frame.index, frame.captured, image, shown, events,
                           (t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t0) * 1e3, len(todo),
                           self.liveness.ms, self.liveness.scored)

    def _current_gallery(self) -> Gallery:
        """The gallery as of now: the store's revision is checked on every frame (one tiny query),
        so a person removed or deactivated by any process is not recognised from the next frame on.
        Deactivated people are in it, to be refused by name."""
        try:
            gallery = self.app.gallery(include_inactive=True)
        except (StoreError, sqlite3.Error) as exc:
            if self._gallery is None:
                raise
            log.warning("could not check the gallery for changes: %s", exc)
            return self._gallery
        if gallery is not self._gallery:
            if self._gallery is not None:
                self.tracker.clear_votes()   # person ids/templates changed: look again
            self._gallery = gallery
        return gallery

    def _refresh(self, revision: int | None) -> None:
        """Re-read the access rules when the store's revision moved past the one they were read at."""
        if revision is not None and revision == self._rules_revision:
            return
        try:
            self._rules = self._attendance.access_rules()
        except (StoreError, sqlite3.Error) as exc:
            log.warning("could not refresh access rules: %s", exc)
            return
        self._rules_revision = revision
        self._door_seen = self._door_seen or self._rules.door(self.door) is not None

    def _access(self, person_id: int, when: datetime, gallery: Gallery | None = None,
                rules: AccessRules | None = None) -> AccessDecision:
        gallery = gallery if gallery is not None else self._gallery
        rules = rules if rules is not None else self._rules
        if gallery is not None and person_id in gallery.inactive:
            return AccessDecision(False, INACTIVE)
        if self._door_seen and rules.door(self.door) is None:
            return AccessDecision(False, f"door '{self.door}' was removed")
        return rules.decide(self.door, person_id, when, self._tz)

    def _tracked_face(self, v: TrackView, gallery: Gallery, threshold: float, wall: datetime) -> TrackedFace:
        cand = v.candidate_id
        name = gallery.names.get(cand) if cand is not None else None
        verdict = self._access(cand, wall, gallery) if cand is not None else AccessDecision(True)
        known = v.status == KNOWN
        decision = verdict.decision if known else "pending" if v.status == PENDING else "unknown"
        return TrackedFace(v.bbox, v.track_id, v.det_score, v.distance, cand, name, known, decision,
                           verdict.decision, threshold, verdict.reason or None)

    def _event(self, req: LogRequest, image: np.ndarray, gallery: Gallery, wall: datetime,
               not_live: str | None = None) -> EntryEvent:
        pid = req.person_id
        name = gallery.names.get(pid) if pid is not None else None
        reason = None
        if pid is None:
            decision = "unknown"
        else:
            verdict = self._access(pid, wall, gallery)
            decision, reason = verdict.decision, verdict.reason or None
            if verdict.granted and not_live:
                decision, reason = "denied", not_live
        # Every event keeps a picture and its face (search by face, visitors, corrections);
        # retention removes both.
        snapshot = make_snapshot(image, req.bbox)
        distance = req.distance if math.isfinite(req.distance) else None
        entry = NewEntry(wall, self.door, pid, name, decision, distance, reason, req.track_id)
        entry_id = None
        if self.log_entries:
            face = entry_face(self.app, req.embedding, req.det_score, min(req.bbox.width, req.bbox.height))
            try:
                entry, entry_id = self._events.log_confirmed(
                    replace(entry, snapshot=snapshot, face=face), self.threshold,
                    # Decided on this frame's gallery and rules; inside the writing transaction
                    # nothing changes until the entry is in: confirm against the database as it is.
                    lambda conn, e: self._confirm(conn, e, gallery))
            except (StoreError, sqlite3.Error) as exc:
                log.error("could not log the entry of %s at %s: %s", name or "an unknown face", self.door, exc)
                # A door never opens without its entry in the log.
                if entry.decision == "granted":
                    entry = replace(entry, decision="denied", reason="the entry could not be logged")
        else:
            entry = replace(entry, snapshot=snapshot)
        event = EntryEvent(entry_id, wall, self.door, entry.person_id, entry.person_name, entry.decision, distance,
                           req.track_id, entry.reason, entry.snapshot, self.camera)
        log.info("entry: %s %s at %s (distance %s)", event.decision, event.name or "unknown", self.door,
                 f"{distance:.2f}" if distance is not None else "-")
        return event

    @staticmethod
    def _overruled(face: TrackedFace, event: EntryEvent | None) -> TrackedFace:
        if event is None or not face.known or (event.decision == face.decision and event.person_id is not None):
            return face
        if event.person_id is None:
            return replace(face, known=False, decision="unknown", candidate_id=None, candidate_name=None)
        return replace(face, decision=event.decision, access=event.decision, reason=event.reason)

    def _confirm(self, conn: sqlite3.Connection, entry: NewEntry, gallery: Gallery) -> NewEntry:
        """The entry as the database now says it should be (inside the logging transaction).

        If the store's revision is the one the gallery and rules were read at, nothing changed.
        Otherwise the person may have been removed (their id may even belong to someone enrolled
        since: SQLite reuses the newest id), deactivated, or the rules changed: check the person's
        row and decide again with the rules as they are now."""
        revision = self.app.store.revision(conn)
        if entry.person_id is None or (revision == gallery.revision and revision == self._rules_revision):
            return entry
        row = conn.execute("SELECT name, active FROM people WHERE id = ?", (entry.person_id,)).fetchone()
        if row is None or row[0] != entry.person_name:
            return replace(entry, person_id=None, person_name=None, decision="unknown",
                           reason="removed from the people list just now")
        if not row[1]:
            return replace(entry, decision="denied", reason=INACTIVE)
        verdict = self._access(entry.person_id, entry.time, gallery=replace(gallery, inactive=frozenset()),
                               rules=self._attendance.access_rules())
        if verdict.granted and is_liveness_denial(entry.reason):
            return entry   # the rules would admit them, but the face was not found live
        return replace(entry, decision=verdict.decision, reason=verdict.reason or None)
