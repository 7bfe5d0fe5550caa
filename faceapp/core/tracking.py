"""Face tracks across frames: one walk past the camera becomes one identity and at most one entry.

Per frame the caller (service.pipeline) does::

    ids = tracker.update(boxes, scores, now)              # associate detections with tracks
    todo = [i for i, t in enumerate(ids) if tracker.needs_embedding(t)]
    ... embed only those faces, in one batch ...
    blocked = tracker.held_people(ids, exclude=[ids[i] for i in todo])
    for i, obs in zip(todo, frame_observations(dist, person_ids, threshold, blocked)):
        tracker.observe(ids[i], obs, embedding)
    views, to_log = tracker.resolve(ids, threshold, now)

Association: greedy on IoU with the track's last box (>= ``min_iou``), falling back to a
short centre jump of a similar-sized box (fast movement at a low recognition frame rate).

Identity: each embedding gives an :class:`Observation` (nearest person, distance, margin to the
second-best person, decided with ``exclusive=True`` so two faces of one frame never get the same
person). An observation votes for its person when distance <= threshold and margin >= min_margin,
else it votes "unknown". Among a track's last ``vote_frames`` observations, a majority of
``vote_frames`` (2 of 3 by default) for P makes it *known* as P; a majority for "unknown", or a
full window without a majority, makes it *unknown*; before that it is *pending*. Votes are re-counted with the current threshold every frame, so moving the slider needs
no new embeddings. If two tracks of a frame still end up with the same person, the closer keeps it.

Re-embedding policy (how we chose): detection runs on every frame (it is what keeps boxes on
faces), but an embedding costs about as much per face as detection per frame, so a track is
embedded only when its embedding can change the outcome:

- it is new, or was re-acquired after missed frames (it may be someone else now);
- its vote is not settled (pending, or a mixed window): it needs ``vote_frames`` fresh looks;
- its re-embedding interval passed: ``reembed_every`` frames, doubled each time a fresh look
  agrees with the settled vote, up to ``reembed_every * max_backoff`` (a track that keeps
  confirming itself is looked at less and less); a disagreeing look, or the box touching another
  face's box (people crossing: the classic identity swap), resets it to ``reembed_every``;
- its box moved or grew a lot since the last embedding (IoU < ``moved_iou`` or area x ``grew``):
  a new pose or a closer, sharper face is worth a look.

On the Hamilton clip (275 frames, 616 faces) this embeds about one face in six; all faces that
need it in a frame are embedded in one batch. Detection is not skipped: it is cheaper than one
embedding on CPU and keeps boxes on faces.

Logging: a track is logged when it first settles (known: the person and the door's decision for
them; unknown: only after ``vote_frames`` clear unknown looks, never for a track already logged as
someone), and again whenever the decision for its person changes while they are in view (denied,
then admitted after a guard adds them to a group or the door's hours open: a new entry). The
cooldown and the "already logged" mark are per (person, decision): a person is not logged again
with the same decision until they have been out of sight for ``cooldown_seconds``; "in sight" is
any track that was identified as them and still follows the same face, recognised or not at this
moment (a face turned away for a minute is still them). An unknown face that looks like an unknown
face logged within the cooldown is not logged again either.

Splitting: a track that was identified as P and whose fresh look clearly says someone else (a
decided vote for another person, or an embedding further than the threshold from the last look
that said P) is not P any more: another face took its place (a tailgater stepping into the spot).
That look starts a new track with no votes and nothing logged, so the newcomer is identified and
logged on their own.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter, deque
from dataclasses import dataclass, field, replace
from typing import Callable, Iterable, Sequence

import numpy as np

from faceapp.core.matcher import decide
from faceapp.core.scale import cosine_distance, l2_normalize
from faceapp.core.types import BBox

PENDING, KNOWN, UNKNOWN = "pending", "known", "unknown"


@dataclass(frozen=True)
class TrackerConfig:
    """Tracking and voting parameters; the first four come from the user's Settings."""

    vote_frames: int = 3
    min_margin: float = 0.05
    cooldown_seconds: float = 60.0
    reembed_every: int = 5
    min_iou: float = 0.3
    max_center_shift: float = 0.6    # centre jump / box size still accepted without overlap
    max_missed: int = 8              # frames a track survives without its face
    max_gap_seconds: float = 2.0     # ... or seconds (a stalled stream)
    moved_iou: float = 0.5
    grew: float = 1.5
    max_backoff: int = 8             # a confirmed track is re-embedded at most every reembed_every * 8 frames
    reacquire_after: int = 2         # missed frames after which a re-found face counts as "maybe someone else"
    # An "unknown" entry needs a face we can judge: a clear, large-enough detection.
    unknown_min_score: float = 0.6
    unknown_min_px: float = 36.0

    @classmethod
    def from_settings(cls, settings) -> TrackerConfig:
        """The config for a :class:`faceapp.core.settings.Settings` (bad values are clamped)."""
        return cls(vote_frames=max(1, int(settings.vote_frames)), min_margin=max(0.0, float(settings.min_margin)),
                   cooldown_seconds=max(0.0, float(settings.cooldown_seconds)),
                   reembed_every=max(1, int(settings.reembed_every)))


@dataclass(frozen=True)
class Observation:
    """What one embedding of a track said: the nearest person (None with an empty gallery),
    the distance to them and how much further the next person is. ``clear`` is set by the
    tracker from the detection (score and size)."""

    candidate_id: int | None
    distance: float
    margin: float = math.inf
    clear: bool = True

    def vote(self, threshold: float, min_margin: float) -> int | None:
        """The person this observation votes for, or None for "unknown"."""
        if self.candidate_id is None or not self.distance <= threshold or self.margin < min_margin:
            return None
        return self.candidate_id


def frame_observations(person_dist: np.ndarray, person_ids: np.ndarray, threshold: float,
                       blocked: Iterable[int] = (), min_margin: float = 0.05) -> list[Observation]:
    """One :class:`Observation` per row of an (M, P) distance matrix of one frame's faces.

    Exclusive within the frame (core.matcher.decide): a person given to a decided face (under the
    threshold and ``min_margin`` ahead of the next person) is not given to another; an ambiguous
    face reserves nobody. ``blocked`` people (held by other tracks of this frame that were not
    re-embedded) are excluded the same way."""
    pd = np.array(person_dist, dtype=np.float64, copy=True).reshape(len(person_dist), -1)
    blocked = set(blocked)
    if blocked and pd.shape[1]:
        cols = [i for i, p in enumerate(person_ids) if int(p) in blocked]
        pd[:, cols] = np.inf
    out = []
    for m in decide(pd, np.asarray(person_ids), {}, threshold, exclusive=True, min_margin=min_margin):
        if not math.isfinite(m.distance):
            out.append(Observation(None, math.inf, math.inf))
        else:
            # decide() keeps the nearest person of a rejected face in second_person_id.
            out.append(Observation(m.person_id if m.known else m.second_person_id, m.distance, m.margin))
    return out


@dataclass(frozen=True)
class TrackView:
    """A track as of the current frame. ``person_id`` is set when ``status`` is known;
    ``candidate_id``/``distance`` are the nearest person whatever the status."""

    track_id: int
    bbox: BBox
    det_score: float
    status: str
    person_id: int | None
    candidate_id: int | None
    distance: float
    settled: bool


@dataclass(frozen=True)
class LogRequest:
    """A track that should become a log entry now (``person_id`` None = an unknown face)."""

    track_id: int
    person_id: int | None
    distance: float
    bbox: BBox
    det_score: float
    decision: str = "unknown"
    # The track's latest embedding: kept with the entry (search by face, visitors).
    embedding: np.ndarray | None = field(default=None, compare=False, repr=False)


class _Track:
    __slots__ = ("id", "bbox", "det_score", "last_seen", "missed", "reacquired", "window",
                 "embed_box", "since_embed", "interval", "fresh", "before", "embedding", "status", "person",
                 "candidate", "distance", "settled", "identity", "anchor", "logged_key", "logged_unknown",
                 "unknown_ref")

    def __init__(self, track_id: int, bbox: BBox, det_score: float, now: float, vote_frames: int,
                 interval: int) -> None:
        self.id = track_id
        self.bbox = bbox
        self.det_score = det_score
        self.last_seen = now
        self.missed = 0
        self.reacquired = False
        self.window: deque[Observation] = deque(maxlen=vote_frames)
        self.embed_box: BBox | None = None
        self.since_embed = 0
        self.interval = interval
        self.fresh = False                      # observed since the last vote
        self.before: tuple | None = None        # (status, person) when last observed, if settled
        self.embedding: np.ndarray | None = None
        self.status = PENDING
        self.person: int | None = None
        self.candidate: int | None = None
        self.distance = math.inf
        self.settled = False
        self.identity: int | None = None        # the person this face was identified as
        self.anchor: np.ndarray | None = None   # the last embedding that voted for ``identity``
        self.logged_key: tuple[int, str] | None = None   # (person, decision) last logged
        self.logged_unknown = False
        self.unknown_ref: list | None = None   # [last seen, embedding] in Tracker._unknowns


class Tracker:
    """Tracks, votes and logging decisions for one camera. Not thread-safe: one caller thread."""

    def __init__(self, config: TrackerConfig = TrackerConfig()) -> None:
        self.config = config
        self._tracks: dict[int, _Track] = {}
        self._ids = itertools.count(1)
        self._person_seen: dict[int, float] = {}
        self._last_decision: dict[int, str] = {}   # the decision each person was last logged with
        self._unknowns: list[list] = []   # [last seen, unit embedding] of logged unknown faces

    # -- state ------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget every track (camera change, gap in the stream). Cooldowns are kept."""
        self._tracks.clear()

    def clear_votes(self) -> None:
        """Drop all observations (the gallery changed): every track is embedded again."""
        for t in self._tracks.values():
            t.window.clear()
            t.settled = False
            t.status, t.person = PENDING, None

    def note_person_seen(self, person_id: int, when: float, decision: str = "granted") -> None:
        """Start a person's cooldown at ``when`` for ``decision`` (e.g. from entries logged before a
        restart; call in time order, the last decision counts)."""
        if when >= self._person_seen.get(person_id, -math.inf):
            self._person_seen[person_id] = when
            self._last_decision[person_id] = decision

    def note_unknown_seen(self, embedding: np.ndarray, when: float) -> None:
        """Remember an unknown face logged at ``when`` (before a restart): the same stranger is
        not logged again within the cooldown."""
        self._unknowns.append([when, l2_normalize(np.reshape(np.asarray(embedding, np.float32), -1))])

    # -- association --------------------------------------------------------------------
    def update(self, boxes: Sequence[BBox], scores: Sequence[float], now: float) -> list[int]:
        """Associate this frame's detections with tracks; returns the track id of each detection."""
        cfg = self.config
        for tid in [t.id for t in self._tracks.values() if now - t.last_seen > cfg.max_gap_seconds]:
            del self._tracks[tid]
        tracks = list(self._tracks.values())
        pairs = []
        for ti, t in enumerate(tracks):
            size = math.sqrt(max(t.bbox.area, 1.0))
            for di, b in enumerate(boxes):
                iou = t.bbox.iou(b)
                if iou >= cfg.min_iou:
                    pairs.append((1.0 + iou, ti, di))
                    continue
                ratio = (b.area + 1.0) / (t.bbox.area + 1.0)
                (cx, cy), (tx, ty) = b.center, t.bbox.center
                shift = math.hypot(cx - tx, cy - ty) / size
                if shift <= cfg.max_center_shift and 0.5 <= ratio <= 2.0:
                    pairs.append((1.0 - shift / (cfg.max_center_shift + 1e-9), ti, di))
        pairs.sort(key=lambda p: -p[0])
        det_track: list[int | None] = [None] * len(boxes)
        used_tracks: set[int] = set()
        for score, ti, di in pairs:
            if ti in used_tracks or det_track[di] is not None:
                continue
            used_tracks.add(ti)
            t = tracks[ti]
            det_track[di] = t.id
            t.bbox, t.det_score, t.last_seen = boxes[di], float(scores[di]), now
            # A face found again after a gap, or by a jump rather than overlap, may be someone else.
            t.reacquired = t.reacquired or t.missed > cfg.reacquire_after or score < 1.0
            t.missed = 0
            t.since_embed += 1
        for ti, t in enumerate(tracks):
            if ti not in used_tracks:
                t.missed += 1
                if t.missed > cfg.max_missed:
                    del self._tracks[t.id]
        out = []
        for di, tid in enumerate(det_track):
            if tid is None:
                tid = next(self._ids)
                self._tracks[tid] = _Track(tid, boxes[di], float(scores[di]), now, cfg.vote_frames,
                                           cfg.reembed_every)
            out.append(tid)
        # Faces touching each other: identities may swap, so stop trusting the backoff.
        seen = [self._tracks[tid] for tid in out]
        for i, a in enumerate(seen):
            for b in seen[i + 1:]:
                if a.bbox.iou(b.bbox) > 0.0:
                    a.interval = b.interval = cfg.reembed_every
        return out

    # -- embedding --------------------------------------------------------------------------
    def needs_embedding(self, track_id: int) -> bool:
        """Should this track's face be embedded in this frame? (policy in the module docstring)"""
        t = self._tracks[track_id]
        cfg = self.config
        if not t.window or t.reacquired or not t.settled or t.embed_box is None:
            return True
        if t.since_embed >= t.interval:
            return True
        return t.bbox.iou(t.embed_box) < cfg.moved_iou or t.bbox.area > cfg.grew * t.embed_box.area

    def held_people(self, track_ids: Iterable[int], exclude: Iterable[int] = ()) -> set[int]:
        """People that tracks among ``track_ids`` (minus ``exclude``) are currently known as."""
        skip = set(exclude)
        return {t.person for tid in track_ids if tid not in skip
                for t in (self._tracks.get(tid),) if t is not None and t.status == KNOWN and t.person is not None}

    def observe(self, track_id: int, obs: Observation, embedding: np.ndarray | None = None) -> None:
        """Add the verdict of a fresh embedding of this track's face."""
        t = self._tracks[track_id]
        cfg = self.config
        clear = t.det_score >= cfg.unknown_min_score and min(t.bbox.width, t.bbox.height) >= cfg.unknown_min_px
        t.window.append(replace(obs, clear=clear))
        t.before = (t.status, t.person) if t.settled else None
        t.fresh = True
        t.embed_box = t.bbox
        t.since_embed = 0
        t.reacquired = False
        if embedding is not None:
            t.embedding = l2_normalize(np.reshape(embedding, -1))

    # -- decisions --------------------------------------------------------------------------
    def _vote(self, t: _Track, threshold: float) -> list[int | None]:
        """Re-count the track's window with ``threshold``; returns each observation's vote."""
        cfg = self.config
        window = list(t.window)
        votes = [o.vote(threshold, cfg.min_margin) for o in window]
        need = cfg.vote_frames // 2 + 1
        counts = Counter(v for v in votes if v is not None)
        t.person = None
        if counts:
            best = max(counts.values())
            # On a tie the person voted for most recently wins.
            pid = next(v for v in reversed(votes) if v is not None and counts[v] == best)
            if best >= need:
                # Settled only while the newest look agrees: one dissenting look is checked again at once.
                t.status, t.person, t.settled = KNOWN, pid, votes[-1] == pid
                t.candidate = pid
                t.distance = float(np.mean([o.distance for o, v in zip(window, votes) if v == pid]))
                return votes
        latest = window[-1] if window else None
        t.candidate = latest.candidate_id if latest else None
        t.distance = latest.distance if latest else math.inf
        unknown_votes = votes.count(None)
        if len(window) < cfg.vote_frames and unknown_votes < need:
            t.status, t.settled = PENDING, False
        else:
            # A majority of "unknown" (or a full window without a majority): unknown. Settled only once
            # every one of ``vote_frames`` looks agrees (an unknown entry needs them all); a mixed
            # window keeps looking every frame.
            t.status = UNKNOWN
            t.settled = not counts and len(window) >= cfg.vote_frames
        return votes

    def _split(self, t: _Track, threshold: float) -> _Track:
        """``t`` itself, or (its newest look disagreeing with its identity) a new track that starts
        from that look and replaces it (module docstring, "Splitting")."""
        if t.identity is None or not t.fresh or not t.window:
            return t
        cfg = self.config
        newest = t.window[-1]
        vote = newest.vote(threshold, cfg.min_margin)
        far = (t.anchor is not None and t.embedding is not None
               and float(cosine_distance(t.anchor, t.embedding)) > threshold)
        if vote == t.identity or not (far or vote is not None):
            if vote == t.identity:
                t.anchor = t.embedding
            return t
        new = _Track(next(self._ids), t.bbox, t.det_score, t.last_seen, cfg.vote_frames, cfg.reembed_every)
        new.window.append(newest)
        new.embedding, new.embed_box, new.fresh = t.embedding, t.embed_box, True
        del self._tracks[t.id]
        self._tracks[new.id] = new
        return new

    def resolve(self, track_ids: Sequence[int], threshold: float, now: float,
                decide: Callable[[int], str] | None = None) -> tuple[list[TrackView], list[LogRequest]]:
        """Vote every track of this frame, enforce one person per frame and decide what to log.

        ``decide(person_id)`` is the door's decision for a person now ("granted"/"denied"; all
        granted when None): a change of it for a person in view is a new entry. Returns one view
        per entry of ``track_ids`` (same order; a split track's view has its new id) and the
        entries to log now."""
        cfg = self.config
        order = list(dict.fromkeys(track_ids))
        visible = [self._split(self._tracks[tid], threshold) for tid in order]
        renamed = {old: t.id for old, t in zip(order, visible)}
        votes: dict[int, list[int | None]] = {}
        for t in visible:
            votes[t.id] = self._vote(t, threshold)
            if t.fresh:
                confirmed = t.settled and t.before == (t.status, t.person)
                t.interval = min(t.interval * 2, cfg.reembed_every * cfg.max_backoff) if confirmed \
                    else cfg.reembed_every
                t.fresh = False
        # One person per frame even across tracks that were not re-embedded: the closer one keeps it.
        taken: set[int] = set()
        for t in sorted((t for t in visible if t.status == KNOWN), key=lambda t: t.distance):
            if t.person in taken:
                t.status, t.person, t.settled = UNKNOWN, None, False
            else:
                taken.add(t.person)
        self._unknowns = [u for u in self._unknowns if now - u[0] < cfg.cooldown_seconds]
        requests = []
        for t in visible:
            if t.status == KNOWN:
                if t.identity != t.person:
                    t.identity, t.anchor = t.person, t.embedding
                requests += self._known(t, now, decide(t.person) if decide is not None else "granted")
            elif t.status == UNKNOWN:
                requests += self._unknown(t, votes[t.id], threshold, now)
            if t.unknown_ref is not None:
                t.unknown_ref[0] = now
        # Whoever a face was identified as stays in sight while its track follows it, recognised
        # at this moment or not (a split ends that); the cooldown counts from the last sight.
        for t in visible:
            if t.identity is not None:
                self._person_seen[t.identity] = now
        views = {t.id: TrackView(t.id, t.bbox, t.det_score, t.status, t.person, t.candidate, t.distance,
                                 t.settled) for t in visible}
        return [views[renamed[tid]] for tid in track_ids], requests

    def _known(self, t: _Track, now: float, decision: str) -> list[LogRequest]:
        pid = t.person
        assert pid is not None
        key = (pid, decision)
        if t.logged_key == key:
            return []
        t.logged_key = key
        last = self._person_seen.get(pid)
        # Seen moments ago and last logged with this very decision: the same visit, no new entry.
        # A changed decision (denied, then admitted) always is one.
        if (last is not None and now - last < self.config.cooldown_seconds
                and self._last_decision.get(pid) == decision):
            return []
        self._last_decision[pid] = decision
        return [LogRequest(t.id, pid, t.distance, t.bbox, t.det_score, decision, t.embedding)]

    def _unknown(self, t: _Track, votes: list[int | None], threshold: float, now: float) -> list[LogRequest]:
        cfg = self.config
        if t.logged_unknown or t.logged_key is not None:
            return []
        if len(votes) < cfg.vote_frames or any(v is not None or not o.clear for o, v in zip(t.window, votes)):
            return []
        t.logged_unknown = True
        if t.embedding is not None:
            for u in self._unknowns:
                if float(cosine_distance(u[1], t.embedding)) <= threshold:
                    t.unknown_ref = u   # the same stranger again, within the cooldown
                    return []
            t.unknown_ref = [now, t.embedding]
            self._unknowns.append(t.unknown_ref)
        return [LogRequest(t.id, None, t.distance, t.bbox, t.det_score, "unknown", t.embedding)]
