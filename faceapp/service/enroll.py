"""Enrollment: from photos to stored templates, with the quality gate and duplicate checks.

The CLI (`faceapp enroll`, `faceapp import`) and the GUI enrollment dialog both use this.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from faceapp.capture.images import iter_image_files, load_image
from faceapp.core.errors import AmbiguousFaceError, DuplicateError, FaceAppError, NoFaceError
from faceapp.core.matcher import Gallery
from faceapp.core.quality import Quality, QualityRules, assess
from faceapp.core.types import Face, Match
from faceapp.engine.engine import FaceEngine
from faceapp.service.app import App
from faceapp.store.db import NewPhoto

log = logging.getLogger(__name__)

# A second face at least this fraction of the largest one's area makes a photo ambiguous.
SIMILAR_SIZE = 0.45


@dataclass(frozen=True, eq=False)
class Shot:
    """One photo checked for enrollment: the chosen face, its quality and any remark."""

    source: str
    face: Face
    quality: Quality
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.quality.ok

    def to_new_photo(self) -> NewPhoto:
        return NewPhoto(crop=self.face.crop, embedding=self.face.embedding,
                        quality=self.quality.score, source=self.source)


def choose_face(faces: Sequence[Face], source: str = "photo") -> tuple[Face, str]:
    """The face a photo is meant to enroll: the only one, or one clearly dominant face.

    Raises NoFaceError / AmbiguousFaceError with a message for the user."""
    if not faces:
        raise NoFaceError(f"{source}: no face found")
    if len(faces) == 1:
        return faces[0], ""
    ranked = sorted(faces, key=lambda f: -f.bbox.area)
    if ranked[1].bbox.area >= SIMILAR_SIZE * ranked[0].bbox.area:
        raise AmbiguousFaceError(
            f"{source}: {len(faces)} faces of similar size; use a photo of this person alone")
    return ranked[0], f"used the largest of {len(faces)} faces (the others are small, in the background)"


def check_image(engine: FaceEngine, image: np.ndarray, source: str,
                rules: QualityRules = QualityRules()) -> Shot:
    """Find the face to enroll in an image and measure its quality (rejections are in ``quality.reasons``)."""
    faces = engine.analyze_photo(image)
    face, note = choose_face(faces, source)
    return Shot(source, face, assess(face.detection, face.crop, rules), note)


def check_file(engine: FaceEngine, path: Path | str, rules: QualityRules = QualityRules()) -> Shot:
    """Like :func:`check_image` for a file; raises ImageError for unreadable files."""
    return check_image(engine, load_image(path), str(path), rules)


@dataclass(frozen=True)
class DuplicateCheck:
    """Who the new photos look like: an existing person (same person enrolled twice?) or a look-alike."""

    same_person: Match | None
    lookalike: Match | None


def check_duplicates(gallery: Gallery, embeddings: np.ndarray, threshold: float,
                     lookalike_margin: float = 0.15, exclude_person: int | None = None) -> DuplicateCheck:
    """Compare new embeddings with the gallery: a match under ``threshold`` means this person is
    probably enrolled already; the nearest other person within ``threshold + lookalike_margin`` is a look-alike."""
    if gallery.n_people == 0 or len(embeddings) == 0:
        return DuplicateCheck(None, None)
    dist = gallery.person_distances(embeddings).min(axis=0)  # best over the new photos, per person
    order = np.argsort(dist)
    matches = []
    for idx in order:
        pid = int(gallery.person_ids[idx])
        if pid == exclude_person:
            continue
        matches.append(Match(pid, gallery.names.get(pid), float(dist[idx]), 0.0, bool(dist[idx] <= threshold)))
    if not matches:
        return DuplicateCheck(None, None)
    best = matches[0]
    if best.known:
        return DuplicateCheck(best, None)
    if best.distance <= threshold + lookalike_margin:
        return DuplicateCheck(None, best)
    return DuplicateCheck(None, None)


def enroll_files(app: App, name: str, paths: Sequence[Path | str], employee_id: str | None = None,
                 department: str | None = None, allow_duplicate: bool = False) -> tuple[int, list[Shot]]:
    """Enroll a new person from image files, all or nothing.

    Any unreadable photo, photo without a usable face, or failed quality check raises
    before anything is written; so does a face that already belongs to someone enrolled
    (unless ``allow_duplicate``). Returns (person id, accepted shots)."""
    if not paths:
        raise FaceAppError("give at least one photo")
    shots = [check_file(app.engine, p) for p in paths]
    bad = [s for s in shots if not s.ok]
    if bad:
        raise FaceAppError("; ".join(f"{s.source}: {', '.join(s.quality.reasons)}" for s in bad))
    return save_person(app, name, shots, employee_id, department, allow_duplicate), shots


def save_person(app: App, name: str, shots: Sequence[Shot], employee_id: str | None = None,
                department: str | None = None, allow_duplicate: bool = False) -> int:
    """Store a new person with accepted shots in one transaction."""
    if not allow_duplicate:
        emb = np.vstack([s.face.embedding for s in shots])
        dup = check_duplicates(app.gallery(), emb, app.threshold)
        if dup.same_person is not None:
            raise DuplicateError(
                f"this face already belongs to '{dup.same_person.name}' (distance {dup.same_person.distance:.2f}); "
                f"add the photos to that person instead, or enroll anyway with --allow-duplicate")
    pid = app.store.add_person(name, app.model_id, [s.to_new_photo() for s in shots], employee_id, department)
    app.invalidate_gallery()
    return pid


def add_shots(app: App, person_id: int, shots: Sequence[Shot]) -> list[int]:
    """Add accepted shots to an existing person in one transaction."""
    ids = app.store.add_photos(person_id, app.model_id, [s.to_new_photo() for s in shots if s.ok])
    app.invalidate_gallery()
    return ids


@dataclass
class ImportReport:
    """Outcome of a bulk import: what was enrolled, and every rejected photo with its reason."""

    people_created: list[str] = field(default_factory=list)
    people_extended: list[str] = field(default_factory=list)
    accepted: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)   # (file, reason)
    skipped_people: list[tuple[str, str]] = field(default_factory=list)  # (folder, reason)

    def summary(self) -> str:
        lines = [f"{self.accepted} photos accepted, {len(self.rejected)} rejected; "
                 f"{len(self.people_created)} people enrolled, {len(self.people_extended)} extended"]
        lines += [f"  rejected {f}: {why}" for f, why in self.rejected]
        lines += [f"  skipped {p}: {why}" for p, why in self.skipped_people]
        return "\n".join(lines)


ProgressFn = Callable[[int, int, str], None]


def import_folder(app: App, folder: Path | str, progress: ProgressFn | None = None,
                  should_stop: Callable[[], bool] | None = None) -> ImportReport:
    """Enroll every sub-folder of ``folder`` as one person (named after the folder).

    Each person is written in its own transaction: stopping (or a crash) leaves whole
    people only. An existing person of the same name gets the new photos added."""
    root = Path(folder)
    if not root.is_dir():
        raise FaceAppError(f"{root} is not a folder")
    people = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not people:
        raise FaceAppError(f"{root} has no sub-folders: put each person's photos in a folder named after them")
    jobs = [(d, f) for d in people for f in iter_image_files(d)]
    total = len(jobs)
    report = ImportReport()
    done = 0
    for person_dir in people:
        name = person_dir.name.replace("_", " ")
        shots: list[Shot] = []
        for f in iter_image_files(person_dir):
            if should_stop and should_stop():
                return report
            try:
                shot = check_file(app.engine, f)
                if shot.ok:
                    shots.append(shot)
                else:
                    report.rejected.append((str(f), ", ".join(shot.quality.reasons)))
            except FaceAppError as exc:
                report.rejected.append((str(f), str(exc).split(": ", 1)[-1]))
            done += 1
            if progress:
                progress(done, total, str(f))
        if not shots:
            report.skipped_people.append((str(person_dir), "no usable photo"))
            continue
        try:
            existing = app.store.find_person(name)
        except FaceAppError:
            existing = None
        try:
            if existing is not None:
                add_shots(app, existing.id, shots)
                report.people_extended.append(name)
            else:
                save_person(app, name, shots, allow_duplicate=False)
                report.people_created.append(name)
            report.accepted += len(shots)
        except FaceAppError as exc:
            report.skipped_people.append((str(person_dir), str(exc)))
    return report
