"""Liveness at the door: the part of the live pipeline that decides whether a known face is a live
person before the door grants it.

Only faces that matter are checked: a known person whom the door would grant, at a door whose
policy is ``passive`` or ``challenge``. Strangers, refused people and doors set to ``off`` cost
nothing, so a crowd in front of an ordinary camera runs as fast as before.

- passive: the MiniFASNet score of each frame of the track until ``liveness_frames`` judged
  frames are in, then their median (:class:`faceapp.core.liveness.PassiveVote`). Scoring stops
  once the track is settled.
- challenge: passive (when the pack is installed) and the head turn
  (:class:`faceapp.core.liveness.HeadTurnChallenge`); the plate shows the prompt. A timed-out
  attempt is logged as denied and a new attempt starts, so a person who turned too late can try
  again without walking away.

The tracker's request to log a known track is held until the verdict is in: granted when live,
"denied" with the reason "not live" (with a snapshot) when not, and "denied" with "liveness not
confirmed" when the person left before it was decided (the door did not open).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field, replace

import numpy as np

from faceapp.core.errors import ModelError
from faceapp.core.liveness import CHECKING, LIVE, NOT_LIVE, HeadTurnChallenge, PassiveVote
from faceapp.core.tracking import LogRequest
from faceapp.core.types import Detection
from faceapp.service.app import App

log = logging.getLogger(__name__)

REASON_NOT_LIVE = "not live"
REASON_NO_TURN = "not live: no head turn within {seconds:.0f} s"
REASON_NO_PACK = "not live: the liveness pack is not installed"
REASON_BROKEN = "not live: the liveness models could not be loaded"
REASON_LEFT = "liveness not confirmed (left before the check finished)"
PROMPT_CLOSER = "please come closer to the camera"
PROMPT_CENTRE = "please step into the middle of the picture"
LIVENESS_REASONS = (REASON_NOT_LIVE, REASON_LEFT)


def is_liveness_denial(reason: str | None) -> bool:
    """Was an entry denied by the liveness check (rather than by the door's rules)?"""
    return bool(reason) and (reason.startswith(REASON_NOT_LIVE) or reason == REASON_LEFT)


# After a damaged pack failed to load, how long before trying again.
RETRY_SECONDS = 10.0
# A held track not seen for this long is gone (the tracker drops tracks after 2 s without a face).
GONE_SECONDS = 2.5


@dataclass(frozen=True)
class GateVerdict:
    """The combined liveness of one track: ``state`` checking / live / not live."""

    state: str
    prompt: str = ""
    score: float = math.nan
    reason: str = ""


@dataclass
class _TrackState:
    person_id: int
    passive: PassiveVote | None
    challenge: HeadTurnChallenge | None
    last_seen: float
    verdict: GateVerdict = GateVerdict(CHECKING)
    held: LogRequest | None = None
    logged_denied: bool = False


class LivenessGate:
    """Per-track liveness for one door's pipeline. Not thread-safe: called from the pipeline's thread."""

    def __init__(self, app: App) -> None:
        self.app = app
        self._tracks: dict[int, _TrackState] = {}
        self.scored = 0          # faces the liveness models ran on in the last frame
        self.ms = 0.0            # time spent on liveness in the last frame
        self._mode = "off"
        self._failed_at = -math.inf
        self._broken = False     # the pack is there but would not load (damaged)

    def reset(self) -> None:
        """Forget every track (a camera change); held requests are dropped with them."""
        self._tracks.clear()

    def _scorer(self):
        if time.monotonic() - self._failed_at < RETRY_SECONDS:
            return None
        try:
            return self.app.liveness()
        except ModelError as exc:   # a damaged pack: the door stays closed and the log says why
            log.error("liveness models unusable: %s", exc)
            self._failed_at = time.monotonic()   # not re-verified (and re-logged) on every frame
            self._broken = True
            return None

    def apply(self, mode: str, image: np.ndarray, faces: tuple, detections: dict[int, Detection],
              requests: list[LogRequest], now: float) -> tuple[tuple, list[tuple[LogRequest, str | None]]]:
        """Judge the faces that matter and hold or release the log requests.

        ``faces`` are the frame's TrackedFaces, ``detections`` their detections by track id, ``now`` the
        frame time (monotonic seconds). Returns the faces to show (liveness state, prompt and decision
        filled in) and the requests to log now, each with the liveness reason that turns it into a
        denial (None = the door's own decision stands)."""
        t0 = time.perf_counter()
        self.scored = 0
        if mode != self._mode:
            self._tracks.clear()     # a policy change starts every check afresh
            self._mode = mode
        if mode == "off":
            self.ms = 0.0
            return faces, [(r, None) for r in requests]
        settings = self.app.settings
        scorer: object = None        # looked up once per frame, only when a face needs it
        shown = []
        for face in faces:
            if not (face.known and face.access == "granted" and face.candidate_id is not None):
                shown.append(face)
                continue
            st = self._tracks.get(face.track_id)
            if st is None or st.person_id != face.candidate_id:
                st = self._tracks[face.track_id] = _TrackState(
                    face.candidate_id, PassiveVote(settings.liveness_threshold, settings.liveness_frames),
                    HeadTurnChallenge(settings.challenge_seconds) if mode == "challenge" else None, now)
            st.last_seen = now
            det = detections.get(face.track_id)
            no_pack = False
            if st.passive is not None and not st.passive.settled and det is not None:
                if scorer is None:
                    scorer = self._scorer() or False
                if scorer:
                    r = scorer.score(image, det.bbox, det.landmarks)
                    st.passive.add(r.score, r.reason)
                    self.scored += r.judged      # the models ran (a face too small to judge costs nothing)
                elif mode == "challenge":
                    st.passive = None        # no models: the head turn alone decides
                else:
                    no_pack = True
            if st.challenge is not None:
                st.challenge.add(det.landmarks if det is not None else None, now)
            st.verdict = GateVerdict(NOT_LIVE, "", math.nan, REASON_BROKEN if self._broken else REASON_NO_PACK) \
                if no_pack else self._verdict(st)
            shown.append(self._show(face, st.verdict))
        out: list[tuple[LogRequest, str | None]] = []
        for req in requests:
            st = self._tracks.get(req.track_id)
            if st is None or req.person_id is None or req.person_id != st.person_id or st.last_seen != now:
                out.append((req, None))
            else:
                st.held = req
        for tid, st in list(self._tracks.items()):
            out += self._release(st)
            if now - st.last_seen > GONE_SECONDS:
                if st.held is not None and st.verdict.state == CHECKING and not st.logged_denied:
                    out.append((st.held, REASON_LEFT))   # the door never opened for them
                del self._tracks[tid]
        self.ms = (time.perf_counter() - t0) * 1e3
        return tuple(shown), out

    @staticmethod
    def _verdict(st: _TrackState) -> GateVerdict:
        prompt, score, passive_state = "", math.nan, LIVE
        if st.passive is not None:
            pv = st.passive.verdict()
            score, passive_state = pv.score, pv.state
            if pv.state == NOT_LIVE:
                return GateVerdict(NOT_LIVE, "", score, REASON_NOT_LIVE)
            if pv.state == CHECKING and pv.reason and not pv.judged:
                # Nothing judged yet: tell the person what would let the camera judge them.
                prompt = PROMPT_CLOSER if "too small" in pv.reason else PROMPT_CENTRE
        if st.challenge is not None:
            cs = st.challenge.state()
            if cs.state == NOT_LIVE:
                return GateVerdict(NOT_LIVE, cs.prompt, score, REASON_NO_TURN.format(seconds=st.challenge.seconds))
            if cs.state == CHECKING:
                return GateVerdict(CHECKING, cs.prompt, score)
        if passive_state == CHECKING:
            return GateVerdict(CHECKING, prompt, score)
        return GateVerdict(LIVE, "", score)

    @staticmethod
    def _show(face, verdict: GateVerdict):
        if verdict.state == LIVE:
            return replace(face, liveness=LIVE, live_score=verdict.score)
        if verdict.state == NOT_LIVE:
            return replace(face, liveness=NOT_LIVE, live_score=verdict.score, prompt=verdict.prompt,
                           decision="denied", access="denied", reason=verdict.reason)
        return replace(face, liveness=CHECKING, live_score=verdict.score, prompt=verdict.prompt,
                       decision="pending", access="pending")

    @staticmethod
    def _release(st: _TrackState) -> list[tuple[LogRequest, str | None]]:
        """Log the held request of a track whose verdict is in."""
        if st.held is None:
            return []
        state = st.verdict.state
        if state == LIVE:
            req, st.held = st.held, None
            return [(req, None)]
        if state != NOT_LIVE:
            return []
        out = [] if st.logged_denied else [(st.held, st.verdict.reason)]
        st.logged_denied = True
        # A timed-out head turn is tried again (HeadTurnChallenge restarts itself): keep the request,
        # so passing a later attempt is logged as granted. A passive "not live" is final for the track.
        if st.challenge is None or (st.passive is not None and st.passive.verdict().state == NOT_LIVE):
            st.held = None
        return out
