"""Passive liveness (anti-spoofing): is the face in front of the camera a live person or a photo /
screen held up to it?

Silent-Face MiniFASNet models (minivision-ai/Silent-Face-Anti-Spoofing, Apache-2.0), run exactly as
the original code does: the face box [x, y, w, h] is scaled about its centre by each model's scale
(2.7 and 4.0), the scale capped at min((H-1)/h, (W-1)/w), the box shifted back inside the image
(never padded), cut out, resized to 80x80 with ``cv2.resize``, fed as BGR 0..255 floats. Each model
gives 3 logits (index 1 = real, 0 and 2 = two kinds of spoof); the softmaxes of the models are
summed and the real share of that sum, divided by the number of models, is the score (0..1,
1 = live).

The models were trained on the boxes of the original code's own detector (a Caffe RetinaFace),
which are nearly square and sit lower on the face than SCRFD's (forehead to chin, taller than
wide). :func:`training_box` maps a detector box to that convention: a square of side
sqrt(w * h) centred 0.09 h below the box centre. Fitted on the three sample photos where both
detectors were run: with the original boxes the scores are the original ones exactly
(F1 fake 0.73, F2 fake 0.82, T1 real 0.99); with SCRFD's boxes unmapped they drift by up to 0.18.

Construct with explicit model paths, call :meth:`LivenessScorer.prepare` once, then score from
any thread: runs hold the same run lock as the face engine (one model at a time on the CPU), and
the sessions use the engine's options (no busy-waiting threads).
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from faceapp.core.errors import ModelError
from faceapp.core.image import to_bgr8
from faceapp.core.types import BBox, Detection
from faceapp.engine.catalog import LIVENESS_PACK, LIVENESS_CATALOG
from faceapp.engine.engine import _session_options
from faceapp.engine.installer import require_pack

log = logging.getLogger(__name__)

REAL_INDEX = 1
# Below this face side (pixels) the 80x80 crops are upscaled mush: the models were trained on
# faces of ordinary webcam size, and their verdicts on thumbnails are noise.
MIN_FACE_PX = 40.0

@dataclass(frozen=True)
class LivenessModelSpec:
    """One model file and the crop scale it was trained with."""

    path: Path
    scale: float
    input_size: int = 80


@dataclass(frozen=True)
class LivenessConfig:
    """What the scorer loads and how it runs."""

    models: tuple[LivenessModelSpec, ...]
    providers: tuple[str, ...] = ("CPUExecutionProvider",)
    threads: int = 1   # 80x80 inputs: a second thread costs more in hand-off than it saves

    @classmethod
    def from_pack(cls, models_dir: Path, pack: str = LIVENESS_PACK, providers: tuple[str, ...] = ("CPUExecutionProvider",),
                  threads: int = 1) -> LivenessConfig:
        """The config of an installed, verified liveness pack (ModelError naming the fix otherwise)."""
        spec = LIVENESS_CATALOG[pack]
        paths = require_pack(pack, Path(models_dir))
        return cls(tuple(LivenessModelSpec(paths[m.file.role], m.scale, m.input_size) for m in spec.models),
                   tuple(providers), threads)


@dataclass(frozen=True)
class LivenessResult:
    """The verdict on one face.

    ``score`` is 0..1 (1 = live), NaN when the face could not be judged; ``reason`` then says why
    (too small, cut by the border). ``probs`` are the fused (real, spoof A, spoof B) shares in the
    models' order (spoof, real, spoof). ``shifted`` is set when a context crop had to be moved or
    shrunk to stay inside the image (a face near the border): the verdict stands, but the models
    saw the face off-centre."""

    bbox: BBox
    score: float
    probs: tuple[float, ...] = ()
    reason: str = ""
    shifted: bool = False

    @property
    def judged(self) -> bool:
        return math.isfinite(self.score)

    def live(self, threshold: float) -> bool:
        """Live at ``threshold`` (a face that could not be judged is never live)."""
        return self.judged and self.score >= threshold


def training_box(bbox: BBox) -> tuple[float, float, float, float]:
    """[x, y, w, h] in the convention of the detector the models were trained with (module docstring)."""
    w, h = bbox.width, bbox.height
    side = math.sqrt(max(w * h, 1.0))
    cx, cy = (bbox.x1 + bbox.x2) / 2.0, (bbox.y1 + bbox.y2) / 2.0 + 0.09 * h
    return (cx - side / 2.0, cy - side / 2.0, side, side)


def crop_box(width: int, height: int, box: Sequence[float], scale: float) -> tuple[tuple[int, int, int, int], bool]:
    """The original code's context crop (inclusive pixel corners x1, y1, x2, y2) of ``box`` = [x, y, w, h]
    scaled by ``scale``, and whether it had to be shrunk or shifted to stay inside the image."""
    x, y, bw, bh = (float(v) for v in box)
    bw, bh = max(bw, 1.0), max(bh, 1.0)
    capped = min((height - 1) / bh, (width - 1) / bw, scale)
    nw, nh = bw * capped, bh * capped
    cx, cy = bw / 2 + x, bh / 2 + y
    x1, y1, x2, y2 = cx - nw / 2, cy - nh / 2, cx + nw / 2, cy + nh / 2
    shifted = capped < scale
    if x1 < 0:
        x2 -= x1
        x1 = 0
        shifted = True
    if y1 < 0:
        y2 -= y1
        y1 = 0
        shifted = True
    if x2 > width - 1:
        x1 -= x2 - width + 1
        x2 = width - 1
        shifted = True
    if y2 > height - 1:
        y1 -= y2 - height + 1
        y2 = height - 1
        shifted = True
    return (int(max(0, x1)), int(max(0, y1)), int(x2), int(y2)), shifted


def unjudgeable(bbox: BBox, width: int, height: int, landmarks: np.ndarray | None = None,
                min_face_px: float = MIN_FACE_PX) -> str:
    """Why a face cannot be judged ("" when it can): too small, or cut by the image border."""
    side = min(bbox.width, bbox.height)
    if side < min_face_px:
        return f"face too small for a liveness check ({int(side)} px, needs {min_face_px:.0f})"
    if _cut_by_border(bbox, width, height, landmarks):
        return "face cut by the image border"
    return ""


# Distance from the landmarks to each side of a whole face's detector box, in eye-to-mouth
# distances, below which a box touching that image edge is a clipped face. A whole face measured on
# 17 real photos: top >= 1.03, bottom >= 0.55, sides >= 0.21 (turned faces); these are about half.
_EDGE_MARGINS = {"top": 0.55, "bottom": 0.3, "left": 0.12, "right": 0.12}


def _cut_by_border(bbox: BBox, width: int, height: int, landmarks: np.ndarray | None) -> bool:
    """Does the face run off the picture? Detector boxes are clipped to the image, so the box of a
    half-visible face ends at the edge; the landmarks show how much face is left on that side."""
    edges = {"left": bbox.x1 <= 2, "top": bbox.y1 <= 2, "right": bbox.x2 >= width - 2, "bottom": bbox.y2 >= height - 2}
    if not any(edges.values()):
        return False
    if landmarks is None or np.asarray(landmarks).shape != (5, 2):
        # Without landmarks only the box shape tells: a whole face's box is 1.3-1.6x taller than wide.
        ratio = bbox.height / max(bbox.width, 1.0)
        return ratio > 1.8 or ratio < 1.0
    lm = np.asarray(landmarks, np.float64)
    em = float(np.linalg.norm((lm[3] + lm[4]) / 2 - (lm[0] + lm[1]) / 2))
    if em < 1.0:
        return True
    margins = {"top": (lm[:2, 1].mean() - bbox.y1) / em, "bottom": (bbox.y2 - lm[3:, 1].mean()) / em,
               "left": (lm[:, 0].min() - bbox.x1) / em, "right": (bbox.x2 - lm[:, 0].max()) / em}
    return any(edges[k] and margins[k] < _EDGE_MARGINS[k] for k in edges)


class LivenessScorer:
    """Loads the liveness models once and scores faces (thread-safe)."""

    def __init__(self, config: LivenessConfig, run_lock: threading.Lock | None = None,
                 min_face_px: float = MIN_FACE_PX) -> None:
        if not config.models:
            raise ModelError("a liveness scorer needs at least one model")
        self.config = config
        self.min_face_px = min_face_px
        self._sessions: list | None = None
        self._lock = threading.Lock()
        # Shared with the face engine when given: one model runs at a time on these cores.
        self._run_lock = run_lock or threading.Lock()

    def prepare(self) -> LivenessScorer:
        """Load the models (idempotent, thread-safe). Raises ModelError."""
        with self._lock:
            if self._sessions is not None:
                return self
            try:
                import onnxruntime as ort
            except ImportError as exc:  # pragma: no cover - a broken install
                raise ModelError(f"onnxruntime is not installed: {exc}") from exc
            sessions = []
            for spec in self.config.models:
                try:
                    sess = ort.InferenceSession(str(spec.path), sess_options=_session_options(self.config.threads),
                                                providers=list(self.config.providers))
                except Exception as exc:
                    raise ModelError(f"could not load the liveness model {spec.path}: {exc}") from exc
                inp = sess.get_inputs()[0]
                sessions.append((sess, inp.name, spec))
            self._sessions = sessions
            log.info("liveness ready: %s", ", ".join(f"{s.path.name} (x{s.scale})" for s in self.config.models))
        return self

    def _require(self) -> list:
        if self._sessions is None:
            self.prepare()
        assert self._sessions is not None
        return self._sessions

    def score(self, image: np.ndarray, bbox: BBox, landmarks: np.ndarray | None = None) -> LivenessResult:
        """The liveness of the face in ``bbox`` (a detector box of ``image``; its 5 landmarks help
        tell a face cut by the border)."""
        img = to_bgr8(image)
        h, w = img.shape[:2]
        why = unjudgeable(bbox, w, h, landmarks, self.min_face_px)
        if why:
            return LivenessResult(bbox, math.nan, reason=why)
        probs, shifted = self.fused(img, training_box(bbox))
        return LivenessResult(bbox, float(probs[REAL_INDEX]), tuple(float(p) for p in probs), shifted=shifted)

    def score_detections(self, image: np.ndarray, detections: Sequence[Detection]) -> list[LivenessResult]:
        """:meth:`score` for several detected faces of one image."""
        img = to_bgr8(image)
        return [self.score(img, d.bbox, d.landmarks) for d in detections]

    def fused(self, image: np.ndarray, box: Sequence[float]) -> tuple[np.ndarray, bool]:
        """Mean softmax of the models on the original code's crops of ``box`` = [x, y, w, h] (its
        detector's convention), and whether any crop was shifted. The original decision is the argmax."""
        sessions = self._require()
        h, w = image.shape[:2]
        total = np.zeros(3, np.float64)
        shifted_any = False
        for sess, name, spec in sessions:
            (x1, y1, x2, y2), shifted = crop_box(w, h, box, spec.scale)
            shifted_any |= shifted
            patch = image[y1:y2 + 1, x1:x2 + 1]
            if patch.size == 0:   # a degenerate box on a 1-pixel image: nothing to look at
                patch = image
            patch = cv2.resize(patch, (spec.input_size, spec.input_size))
            x = np.ascontiguousarray(patch.transpose(2, 0, 1)[None], dtype=np.float32)
            with self._run_lock:
                logits = sess.run(None, {name: x})[0][0].astype(np.float64)
            e = np.exp(logits - logits.max())
            total += e / e.sum()
        return total / len(sessions), shifted_any
