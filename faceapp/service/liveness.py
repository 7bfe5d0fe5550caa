"""Liveness use cases shared by the CLI, the pipeline and enrollment: check the faces of a photo,
evaluate the liveness models on folders of real and attack photos (ISO/IEC 30107-3 terms)."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from faceapp.capture.images import iter_image_files, load_image
from faceapp.core.errors import FaceAppError, ModelError
from faceapp.core.types import BBox
from faceapp.engine.catalog import LIVENESS_PACK
from faceapp.engine.engine import FaceEngine
from faceapp.engine.liveness import LivenessResult, LivenessScorer
from faceapp.service.app import App

log = logging.getLogger(__name__)

MISSING_PACK = (f"the liveness pack is not installed; install it with: "
                f"faceapp models install --pack {LIVENESS_PACK} --from DIR_OR_ZIP")


def require_liveness(app: App) -> LivenessScorer:
    """The app's liveness scorer; ModelError naming the install command when the pack is missing."""
    scorer = app.liveness()
    if scorer is None:
        raise ModelError(MISSING_PACK)
    return scorer


@dataclass(frozen=True)
class FaceLiveness:
    """One face of a photo with its liveness verdict at ``threshold``."""

    result: LivenessResult
    threshold: float

    @property
    def bbox(self) -> BBox:
        return self.result.bbox

    @property
    def live(self) -> bool:
        return self.result.live(self.threshold)

    def to_dict(self) -> dict:
        r = self.result
        return {"bbox": r.bbox.as_list(), "live_score": round(r.score, 4) if r.judged else None,
                "live": self.live, **({"reason": r.reason} if r.reason else {})}


def check_image(engine: FaceEngine, scorer: LivenessScorer, image: np.ndarray, threshold: float) -> list[FaceLiveness]:
    """Every detected face of ``image`` with its liveness (largest detector score first)."""
    detections = engine.detect(image)
    return [FaceLiveness(r, threshold) for r in scorer.score_detections(image, detections)]


def check_file(app: App, path: Path | str) -> list[FaceLiveness]:
    """:func:`check_image` of a photo file, at the threshold in the settings."""
    scorer = require_liveness(app)
    return check_image(app.engine, scorer, load_image(path), app.settings.liveness_threshold)


def main_face(faces: Sequence[FaceLiveness]) -> FaceLiveness | None:
    """The largest face (the one presented to the camera)."""
    return max(faces, key=lambda f: f.bbox.area, default=None)


# -- evaluation ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LivenessEvaluation:
    """Presentation-attack detection error rates (ISO/IEC 30107-3) at ``threshold``.

    APCER: share of attack presentations (DIR_FAKE) accepted as live; BPCER: share of bona fide
    presentations (DIR_REAL) refused; ACER: their mean. Each photo counts once, by its largest face;
    photos without a face (or whose face cannot be judged) are listed in ``skipped`` and not counted."""

    n_real: int
    n_fake: int
    apcer: float
    bpcer: float
    threshold: float
    real_scores: tuple[float, ...]
    fake_scores: tuple[float, ...]
    skipped: tuple[tuple[str, str], ...] = ()

    @property
    def acer(self) -> float:
        return (self.apcer + self.bpcer) / 2.0

    def to_dict(self) -> dict:
        def r(x: float) -> float | None:
            return round(x, 4) if math.isfinite(x) else None

        return {"n_real": self.n_real, "n_fake": self.n_fake, "apcer": r(self.apcer), "bpcer": r(self.bpcer),
                "acer": r(self.acer), "threshold": self.threshold,
                "skipped": [{"image": p, "reason": why} for p, why in self.skipped]}

    def describe(self) -> str:
        def pct(x: float) -> str:
            return f"{100 * x:.1f}%" if math.isfinite(x) else "n/a"

        lines = [f"{self.n_real} real and {self.n_fake} attack photos at liveness threshold {self.threshold:.2f}",
                 f"APCER (attacks accepted as live): {pct(self.apcer)}",
                 f"BPCER (real people refused):      {pct(self.bpcer)}",
                 f"ACER (mean of the two):           {pct(self.acer)}"]
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)} photo(s): "
                         + "; ".join(f"{p}: {why}" for p, why in self.skipped[:5])
                         + (" ..." if len(self.skipped) > 5 else ""))
        return "\n".join(lines)


def images_below(folder: Path) -> list[Path]:
    """Image files in ``folder`` and every sub-folder (one per person, say), sorted."""
    found = list(iter_image_files(folder))
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        found += images_below(sub)
    return found


def _folder_scores(engine: FaceEngine, scorer: LivenessScorer, folder: Path, threshold: float,
                   skipped: list[tuple[str, str]], progress: Callable[[int, int], None] | None,
                   done: list[int], total: int) -> list[float]:
    scores = []
    for path in images_below(folder):
        try:
            face = main_face(check_image(engine, scorer, load_image(path), threshold))
        except FaceAppError as exc:
            skipped.append((str(path), str(exc)))
            face = None
        else:
            if face is None:
                skipped.append((str(path), "no face found"))
            elif not face.result.judged:
                skipped.append((str(path), face.result.reason))
            else:
                scores.append(face.result.score)
        done[0] += 1
        if progress:
            progress(done[0], total)
    return scores


def evaluate_liveness(engine: FaceEngine, scorer: LivenessScorer, dir_real: Path | str, dir_fake: Path | str,
                      threshold: float, progress: Callable[[int, int], None] | None = None) -> LivenessEvaluation:
    """APCER/BPCER/ACER of the liveness models on a folder of real faces and one of attacks (photos of
    photos or screens), each searched recursively for images."""
    folders = [Path(dir_real), Path(dir_fake)]
    for f in folders:
        if not f.is_dir():
            raise FaceAppError(f"'{f}' is not a folder of photos")
    total = sum(len(images_below(f)) for f in folders)
    skipped: list[tuple[str, str]] = []
    done = [0]
    real = _folder_scores(engine, scorer, folders[0], threshold, skipped, progress, done, total)
    fake = _folder_scores(engine, scorer, folders[1], threshold, skipped, progress, done, total)
    if not real and not fake:
        raise FaceAppError(f"no judgeable face in {folders[0]} or {folders[1]}")
    apcer = sum(s >= threshold for s in fake) / len(fake) if fake else math.nan
    bpcer = sum(s < threshold for s in real) / len(real) if real else math.nan
    return LivenessEvaluation(len(real), len(fake), apcer, bpcer, threshold, tuple(real), tuple(fake),
                              tuple(skipped))
