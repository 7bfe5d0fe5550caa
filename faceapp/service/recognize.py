"""Identification and verification of faces in still images."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceapp.capture.images import load_image
from faceapp.core.errors import AmbiguousFaceError
from faceapp.core.matcher import Aggregate
from faceapp.core.scale import cosine_distance
from faceapp.core.types import Face, Recognition
from faceapp.service.app import App
from faceapp.service.enroll import choose_face


def identify_image(app: App, image: np.ndarray) -> list[Recognition]:
    """Every face of the image with the best enrolled person (or unknown)."""
    faces = app.engine.analyze_photo(image)
    return identify_faces(app, faces)


def identify_faces(app: App, faces: list[Face]) -> list[Recognition]:
    if not faces:
        return []
    emb = np.vstack([f.embedding for f in faces])
    matches = app.gallery().identify(emb, app.threshold, Aggregate.parse(app.settings.aggregate), exclusive=True)
    return [Recognition(f, m) for f, m in zip(faces, matches)]


def identify_file(app: App, path: Path | str) -> list[Recognition]:
    return identify_image(app, load_image(path))


@dataclass(frozen=True)
class Verification:
    """Are two photos of the same person? ``distance`` is on the user scale."""

    same: bool
    distance: float
    threshold: float

    @property
    def similarity(self) -> float:
        return 1.0 - self.distance


def verify_files(app: App, a: Path | str, b: Path | str) -> Verification:
    """Compare the main face of two photos (e.g. a visitor against a badge photo)."""
    fa, _ = choose_face(app.engine.analyze_photo(load_image(a)), str(a))
    fb, _ = choose_face(app.engine.analyze_photo(load_image(b)), str(b))
    d = float(cosine_distance(fa.embedding[None], fb.embedding[None])[0, 0])
    return Verification(d <= app.threshold, d, app.threshold)


__all__ = ["identify_image", "identify_faces", "identify_file", "verify_files", "Verification",
           "AmbiguousFaceError"]
