"""Liveness of a face track over frames: the passive vote and the head-turn challenge (pure logic).

Passive: each judged frame of a track gives a score (0..1, 1 = live, from the MiniFASNet models).
The track's verdict is the median of its first ``frames`` judged scores against the threshold, so
one spoof-looking frame (motion blur, a bad crop) does not condemn a real person and one lucky
frame does not admit a photo: a majority of the frames must look live. Frames that cannot be
judged (face too small, cut by the border) do not count either way.

Challenge: the person is asked to turn the head to one side and then to the other within
``seconds``. The turn is measured from the 5 landmarks as the nose's sideways offset from the eye
midpoint, relative to the eye distance (0 frontal, about +-0.5 at a strong turn;
:func:`faceapp.core.quality.pose_from_landmarks`). That ratio does not change when a flat picture
is moved, rotated, scaled or tilted away from the camera (a similarity or a squeeze along the eye
axis scales the offset and the eye distance alike), so a still photo, however it is waved about,
never shows both turns. Each side must be held for ``hold`` frames in a row, so a single
misplaced landmark cannot complete a step. Either side may come first: a mirrored camera swaps
left and right, and nothing is gained by failing people who turned the other way first.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

import numpy as np

from faceapp.core.quality import pose_from_landmarks

CHECKING, LIVE, NOT_LIVE = "checking", "live", "not live"


@dataclass(frozen=True)
class PassiveVerdict:
    """Where a track's passive vote stands: ``state`` is checking / live / not live; ``score`` the
    median so far (NaN before any judged frame); ``judged`` how many frames counted."""

    state: str
    score: float
    judged: int
    unjudged: int = 0
    reason: str = ""


class PassiveVote:
    """The passive liveness vote of one track (module docstring)."""

    def __init__(self, threshold: float, frames: int = 5) -> None:
        self.threshold = float(threshold)
        self.frames = max(1, int(frames))
        self.scores: list[float] = []
        self.unjudged = 0
        self.last_reason = ""

    @property
    def settled(self) -> bool:
        return len(self.scores) >= self.frames

    def add(self, score: float, reason: str = "") -> None:
        """One frame's score (NaN = the face could not be judged this frame, ``reason`` says why)."""
        if self.settled:
            return
        if math.isfinite(score):
            self.scores.append(float(score))
        else:
            self.unjudged += 1
            self.last_reason = reason

    def verdict(self) -> PassiveVerdict:
        median = statistics.median(self.scores) if self.scores else math.nan
        if not self.settled:
            return PassiveVerdict(CHECKING, median, len(self.scores), self.unjudged, self.last_reason)
        state = LIVE if median >= self.threshold else NOT_LIVE
        return PassiveVerdict(state, median, len(self.scores), self.unjudged)


@dataclass(frozen=True)
class ChallengeState:
    """Where a head-turn challenge stands: ``state`` checking / live / not live (timed out);
    ``prompt`` what the screen asks for now ("" once finished)."""

    state: str
    prompt: str
    first_side: int = 0     # +1 or -1 once the first turn was seen
    elapsed: float = 0.0


PROMPT_START = "turn your head left, then right"
PROMPT_OTHER = {1: "now turn your head right", -1: "now turn your head left"}
PROMPT_FAILED = "not live? turn your head left, then right"


class HeadTurnChallenge:
    """The head-turn challenge of one track (module docstring). ``turn`` is the yaw ratio a turn must
    reach on each side; ``seconds`` the time allowed from the first frame of the attempt."""

    def __init__(self, seconds: float = 8.0, turn: float = 0.2, hold: int = 2, retry_after: float = 3.0) -> None:
        self.seconds = float(seconds)
        self.retry_after = float(retry_after)   # "not live?" stays this long, then a new attempt starts
        self.turn = float(turn)
        self.hold = max(1, int(hold))
        self.start: float | None = None
        self.first = 0
        self.done = False
        self.failed = False
        self._failed_at = 0.0
        self._run_side = 0
        self._run = 0
        self._last = 0.0

    def restart(self) -> None:
        """A new attempt (after a timeout)."""
        self.start, self.first, self.done, self.failed = None, 0, False, False
        self._run_side, self._run = 0, 0

    def add(self, landmarks: np.ndarray | None, now: float) -> ChallengeState:
        """One frame: the face's 5 landmarks (None if not visible this frame) at time ``now`` (seconds)."""
        self._last = now
        if self.failed and now - self._failed_at >= self.retry_after:
            self.restart()
        if self.done or self.failed:
            return self.state()
        if self.start is None:
            self.start = now
        if now - self.start > self.seconds:
            self.failed, self._failed_at = True, now
            return self.state()
        if landmarks is None:
            self._run = 0
            return self.state()
        yaw, _ = pose_from_landmarks(landmarks)
        side = 1 if yaw >= self.turn else -1 if yaw <= -self.turn else 0
        if side != 0 and side == self._run_side:
            self._run += 1
        else:
            self._run_side, self._run = side, (1 if side else 0)
        if side and self._run >= self.hold:
            if self.first == 0:
                self.first = side
            elif side == -self.first:
                self.done = True
        return self.state()

    def state(self) -> ChallengeState:
        elapsed = 0.0 if self.start is None else max(0.0, self._last - self.start)
        if self.done:
            return ChallengeState(LIVE, "", self.first, elapsed)
        if self.failed:
            return ChallengeState(NOT_LIVE, PROMPT_FAILED, self.first, elapsed)
        prompt = PROMPT_OTHER[self.first] if self.first else PROMPT_START
        return ChallengeState(CHECKING, prompt, self.first, elapsed)
