"""Enrollment: from photos to stored templates, with the quality gate and duplicate checks.

The CLI (`faceapp enroll`, `faceapp import`) and the GUI enrollment dialog both use this.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Collection, Sequence

import numpy as np

from faceapp.capture.images import iter_image_files, load_image, person_folders
from faceapp.core.errors import AmbiguousFaceError, DuplicateError, FaceAppError, ModelError, NoFaceError
from faceapp.core.image import to_bgr8
from faceapp.core.matcher import Gallery
from faceapp.core.quality import Quality, QualityRules, assess
from faceapp.core.scale import cosine_distance, l2_normalize
from faceapp.core.types import BBox, Detection, Face, Match, Person
from faceapp.engine.catalog import get_pack
from faceapp.engine.engine import FaceEngine
from faceapp.service.app import App
from faceapp.store.common import clean_name, opt_text
from faceapp.store.db import NewPhoto, decode_blob

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


def choose_face(faces: Sequence[Face], source: str = "photo",
                image_size: tuple[int, int] | None = None) -> tuple[Face, str]:
    """The face a photo is meant to enroll: the only one, or one clearly dominant face.

    With ``image_size`` (width, height), faces cut off by the picture's edge (people
    beside the subject) do not compete with a face that is wholly inside it.
    Raises NoFaceError / AmbiguousFaceError with a message for the user."""
    if not faces:
        raise NoFaceError(f"{source}: no face found")
    if len(faces) == 1:
        return faces[0], ""
    ranked = sorted(faces, key=lambda f: -f.bbox.area)
    if ranked[1].bbox.area < SIMILAR_SIZE * ranked[0].bbox.area:
        return ranked[0], f"used the largest of {len(faces)} faces (the others are small, in the background)"
    if image_size is not None:
        biggest = ranked[0].bbox.area
        rivals = [f for f in ranked if f.bbox.area >= SIMILAR_SIZE * biggest]
        inside = [f for f in rivals if not _touches_edge(f.bbox, image_size)]
        if len(inside) == 1:
            return inside[0], (f"used the face in the middle of {len(faces)} "
                               f"(the others are cut off by the picture's edge)")
    raise AmbiguousFaceError(
        f"{source}: {len(faces)} faces of similar size; use a photo of this person alone")


def _touches_edge(box: BBox, image_size: tuple[int, int], margin: float = 2.0) -> bool:
    w, h = image_size
    return box.x1 <= margin or box.y1 <= margin or box.x2 >= w - margin or box.y2 >= h - margin


def check_image(engine: FaceEngine, image: np.ndarray, source: str,
                rules: QualityRules = QualityRules()) -> Shot:
    """Find the face to enroll in an image and measure its quality (rejections are in ``quality.reasons``).

    Raises NoFaceError / AmbiguousFaceError when there is no single face to enroll."""
    image = to_bgr8(image)
    faces = engine.analyze_photo(image)
    h, w = image.shape[:2]
    face, note = choose_face(faces, source, (w, h))
    if face.detection.score < rules.min_det_score:
        face = _redetect_padded(engine, image, face)
    return Shot(source, face, assess(face.detection, face.crop, rules), note)


def _redetect_padded(engine: FaceEngine, image: np.ndarray, face: Face) -> Face:
    """The same face found again with a grey border around the picture.

    A face that fills the photo (an ID photo) or nearly touches its edge gets a low
    detector score and rougher landmarks for lack of context; on our photos a border of
    a quarter of the picture lifts such scores from ~0.55 to ~0.8. Returns ``face`` unchanged
    when the padded search does not do better."""
    h, w = image.shape[:2]
    pad = max(h, w) // 4
    padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="constant", constant_values=127)
    best = face
    try:
        found = engine.analyze(padded)
    except FaceAppError:  # e.g. the padded picture is over the size limit: keep what we have
        return face
    for cand in found:
        d = cand.detection
        b = d.bbox
        moved = BBox(max(0.0, b.x1 - pad), max(0.0, b.y1 - pad), min(float(w), b.x2 - pad), min(float(h), b.y2 - pad))
        if moved.iou(face.bbox) >= 0.5 and d.score > best.detection.score:
            best = Face(Detection(moved, d.score, d.landmarks - pad), cand.embedding, cand.crop)
    return best


def check_file(engine: FaceEngine, path: Path | str, rules: QualityRules = QualityRules()) -> Shot:
    """Like :func:`check_image` for a file; raises ImageError for unreadable files."""
    return check_image(engine, load_image(path), str(path), rules)


@dataclass(frozen=True, eq=False)
class Checked:
    """Verdict on one picture offered for enrollment: a shot (accepted or not), or why there is none."""

    source: str
    shot: Shot | None
    error: str = ""   # no face, several faces, unreadable file...

    @property
    def ok(self) -> bool:
        return self.shot is not None and self.shot.ok

    @property
    def reasons(self) -> tuple[str, ...]:
        """Why the picture cannot be enrolled (empty when it can)."""
        if self.shot is None:
            return (self.error,)
        return self.shot.quality.reasons

    @property
    def verdict(self) -> str:
        """One line for the user: 'accepted' or the reasons."""
        return "accepted" if self.ok else "; ".join(self.reasons)


def _reason(exc: FaceAppError, source: str) -> str:
    # Messages start with the file name; the user sees it beside the reason already.
    text = str(exc)
    prefix = f"{source}: "
    return text[len(prefix):] if text.startswith(prefix) else text


def inspect_image(engine: FaceEngine, image: np.ndarray, source: str,
                  rules: QualityRules = QualityRules()) -> Checked:
    """Like :func:`check_image`, but every user-level failure becomes a reason instead of an exception."""
    try:
        return Checked(source, check_image(engine, image, source, rules))
    except ModelError:
        raise  # not the picture's fault: the caller reports it once
    except FaceAppError as exc:
        return Checked(source, None, _reason(exc, source))


def spoof_reason(score: float) -> str:
    """The refusal of a camera shot that the liveness models judge a photo or a screen."""
    return f"looks like a photo or a screen held up to the camera (liveness {score:.2f})"


def inspect_camera_shot(app: App, image: np.ndarray, source: str,
                        rules: QualityRules = QualityRules()) -> Checked:
    """:func:`inspect_image` for a picture captured from a camera: when the liveness pack is installed,
    a face that looks like a photo or a screen held up to the camera is refused with that reason, so
    nobody is enrolled from someone else's picture at the desk. ID-photo *files* are not checked
    (:func:`inspect_file`): they are photos by nature."""
    checked = inspect_image(app.engine, image, source, rules)
    if checked.shot is None:
        return checked
    scorer = app.liveness()
    if scorer is None:
        return checked
    d = checked.shot.face.detection
    result = scorer.score(to_bgr8(image), d.bbox, d.landmarks)
    if not result.live(app.settings.liveness_threshold) and result.judged:
        q = checked.shot.quality
        quality = replace(q, reasons=q.reasons + (spoof_reason(result.score),))
        return Checked(source, replace(checked.shot, quality=quality))
    return checked


def inspect_file(engine: FaceEngine, path: Path | str, rules: QualityRules = QualityRules()) -> Checked:
    """Like :func:`check_file`, never raising for bad files or faces (a ModelError still raises)."""
    source = str(path)
    try:
        image = load_image(path)
    except FaceAppError as exc:
        return Checked(source, None, _reason(exc, source))
    return inspect_image(engine, image, source, rules)


def inconsistent_shots(embeddings: np.ndarray, threshold: float) -> list[int]:
    """Indices of photos that do not look like the others (someone else in the picture?).

    With three or more photos, a photo whose median distance to the others is above
    ``threshold`` is an outlier; with two, both are returned when they do not match."""
    emb = np.asarray(embeddings, np.float32)
    n = len(emb)
    if n < 2:
        return []
    dist = cosine_distance(emb, emb)
    if n == 2:
        return [0, 1] if float(dist[0, 1]) > threshold else []
    out = []
    for i in range(n):
        others = np.delete(dist[i], i)
        if float(np.median(others)) > threshold:
            out.append(i)
    # Everyone an outlier means no majority to compare with: nothing can be singled out.
    return [] if len(out) == n else out


class PoseVariety:
    """Chooses shots for automatic capture: good ones, of one person, in varied poses.

    A new shot is taken when its pose (yaw, roll) differs enough from every shot taken
    so far; someone standing still still finishes, because the required difference
    halves after every ``patience`` good shots refused as too similar."""

    def __init__(self, target: int = 5, min_yaw_step: float = 0.08, min_roll_step: float = 6.0,
                 patience: int = 4, same_person_threshold: float | None = None) -> None:
        self.target = target
        self.min_yaw_step = min_yaw_step
        self.min_roll_step = min_roll_step
        self.patience = patience
        self.same_person_threshold = same_person_threshold
        self.taken: list[Shot] = []
        self._refused = 0
        self._relax = 1.0

    @property
    def done(self) -> bool:
        return len(self.taken) >= self.target

    def reset(self, taken: Sequence[Shot] = ()) -> None:
        self.taken = list(taken)
        self._refused = 0
        self._relax = 1.0

    def offer(self, shot: Shot) -> tuple[bool, str]:
        """Take the shot or not, with a hint for the person in front of the camera."""
        if self.done:
            return False, "enough shots"
        if not shot.ok:
            return False, "; ".join(shot.quality.reasons)
        if self.taken and self.same_person_threshold is not None:
            ref = np.vstack([s.face.embedding for s in self.taken])
            if float(cosine_distance(shot.face.embedding[None], ref).min()) > self.same_person_threshold:
                return False, "a different person is in front of the camera"
        q = shot.quality
        for s in self.taken:
            dy = abs(q.yaw - s.quality.yaw)
            dr = abs(q.roll_deg - s.quality.roll_deg)
            if dy < self.min_yaw_step * self._relax and dr < self.min_roll_step * self._relax:
                self._refused += 1
                if self._refused >= self.patience:
                    self._refused = 0
                    self._relax /= 2.0
                return False, "turn your head a little to the left or right"
        self.taken.append(shot)
        self._refused = 0
        return True, ""


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


def enrolled_gallery(app: App) -> Gallery:
    """Templates of the active model of every enrolled person, deactivated ones included.

    The duplicate checks below load it themselves; a caller running several of them on one
    save loads it once and passes it to each. It is the app's cached gallery (brought up to date
    by the store's revision, appended to rather than re-read, indexed at scale), without the
    visitor negatives: those steer door decisions, not "is this person enrolled already"."""
    return replace(app.gallery(include_inactive=True), neg_embeddings=None, neg_person=None)


def find_duplicates(app: App, embeddings: np.ndarray, exclude_person: int | None = None,
                    gallery: Gallery | None = None) -> DuplicateCheck:
    """:func:`check_duplicates` against every enrolled person, deactivated ones included
    (re-enrolling a deactivated employee is the same mistake)."""
    gallery = gallery if gallery is not None else enrolled_gallery(app)
    return check_duplicates(gallery, embeddings, app.threshold, exclude_person=exclude_person)


def _nearest_own(gallery: Gallery, person_id: int, embeddings: np.ndarray) -> np.ndarray | None:
    """Per new embedding, the distance to the nearest template of ``person_id`` (None when
    there are no embeddings or the person has no template)."""
    mine = gallery.embeddings[gallery.row_person == person_id]
    if len(mine) == 0 or len(embeddings) == 0:
        return None
    return cosine_distance(l2_normalize(np.atleast_2d(embeddings)), mine).min(axis=1)


def distance_to_person(app: App, person_id: int, embeddings: np.ndarray,
                       gallery: Gallery | None = None) -> float | None:
    """Nearest distance from the new embeddings to one person's templates of the active model
    (None when they have none): are photos added to someone really of them?"""
    nearest = _nearest_own(gallery if gallery is not None else enrolled_gallery(app), person_id, embeddings)
    return None if nearest is None else float(nearest.min())


# Below this distance two templates come from the same picture (re-imported file, copy).
SAME_PICTURE = 0.01


def already_stored(app: App, person_id: int, shots: Sequence[Shot], gallery: Gallery | None = None) -> list[int]:
    """Indices of shots whose picture this person already has (running an import twice,
    or a stopped import run again, must not store every photo a second time)."""
    if not shots:
        return []
    emb = np.vstack([s.face.embedding for s in shots])
    nearest = _nearest_own(gallery if gallery is not None else enrolled_gallery(app), person_id, emb)
    return [] if nearest is None else [i for i, d in enumerate(nearest) if d < SAME_PICTURE]


def shot_embeddings(shots: Sequence[Shot]) -> np.ndarray:
    """(n, D) embeddings of the accepted shots."""
    good = [s.face.embedding for s in shots if s.ok]
    return np.vstack(good) if good else np.zeros((0, 0), np.float32)


def enroll_files(app: App, name: str, paths: Sequence[Path | str], employee_id: str | None = None,
                 department: str | None = None, allow_duplicate: bool = False) -> tuple[int, list[Shot]]:
    """Enroll a new person from image files, all or nothing.

    Any unreadable photo, photo without a usable face, or failed quality check raises
    before anything is written; so does a face that already belongs to someone enrolled
    (unless ``allow_duplicate``). Returns (person id, accepted shots)."""
    if not paths:
        raise FaceAppError("give at least one photo")
    check_person_fields(name, employee_id, department)  # bad text is refused before any model work
    shots = [check_file(app.engine, p) for p in paths]
    bad = [s for s in shots if not s.ok]
    if bad:
        raise FaceAppError("; ".join(f"{s.source}: {', '.join(s.quality.reasons)}" for s in bad))
    return save_person(app, name, shots, employee_id, department, allow_duplicate), shots


def check_person_fields(name: str, employee_id: str | None = None, department: str | None = None) -> None:
    """Raise the store's one-line error for a name, employee id or department it would refuse."""
    clean_name(name)
    opt_text(employee_id, "an employee id")
    opt_text(department, "a department")


def _accepted(shots: Sequence[Shot]) -> list[Shot]:
    good = [s for s in shots if s.ok]
    if not good:
        raise FaceAppError("no accepted photo to save: take or add at least one photo that passes the checks")
    return good


def save_person(app: App, name: str, shots: Sequence[Shot], employee_id: str | None = None,
                department: str | None = None, allow_duplicate: bool = False) -> int:
    """Store a new person with the accepted shots (rejected ones are never stored) in one transaction."""
    check_person_fields(name, employee_id, department)
    good = _accepted(shots)
    if not allow_duplicate:
        dup = find_duplicates(app, shot_embeddings(good))
        if dup.same_person is not None:
            raise DuplicateError(
                f"this face already belongs to '{dup.same_person.name}' (distance {dup.same_person.distance:.2f}); "
                f"add the photos to that person instead, or enroll anyway with --allow-duplicate")
    pid = app.store.add_person(name, app.model_id, [s.to_new_photo() for s in good], employee_id, department)
    app.invalidate_gallery()
    log.info("enrolled person %d from %d photo(s)", pid, len(good))
    return pid


def add_shots(app: App, person_id: int, shots: Sequence[Shot]) -> list[int]:
    """Add accepted shots to an existing person in one transaction."""
    ids = app.store.add_photos(person_id, app.model_id, [s.to_new_photo() for s in _accepted(shots)])
    app.invalidate_gallery()
    log.info("added %d photo(s) to person %d", len(ids), person_id)
    return ids


def add_new_shots(app: App, person_id: int, shots: Sequence[Shot],
                  gallery: Gallery | None = None) -> tuple[list[int], list[Shot]]:
    """Like :func:`add_shots`, leaving out the pictures this person already has.

    Returns (new photo ids, shots left out); nothing is written when every picture is
    already stored. Every path that adds photos to an enrolled person goes through here,
    so a file offered twice (import run again, same photo picked in the dialog) is stored once."""
    known = set(already_stored(app, person_id, shots, gallery))
    skipped = [s for i, s in enumerate(shots) if i in known]
    new = [s for i, s in enumerate(shots) if i not in known]
    if not new:
        return [], skipped
    return add_shots(app, person_id, new), skipped


# -- people management (the People page; every change refreshes the live gallery) ---------

def update_person(app: App, person_id: int, *, name: str | None = None, employee_id: str | None = None,
                  department: str | None = None, active: bool | None = None) -> Person:
    """Change a person's details or active flag (given fields only)."""
    person = app.store.update_person(person_id, name=name, employee_id=employee_id,
                                     department=department, active=active)
    app.invalidate_gallery()
    return person


def remove_photo(app: App, photo_id: int) -> None:
    """Delete one stored photo and its templates."""
    app.store.remove_photo(photo_id)
    app.invalidate_gallery()


@dataclass(frozen=True)
class RemovalSummary:
    """Everything that deleting a person removes (for the confirmation dialog)."""

    person: Person
    photos: int
    templates: int
    entries: int


def removal_summary(app: App, person_id: int) -> RemovalSummary:
    person = app.store.get_person(person_id)
    rows = app.store.query("SELECT COUNT(*) AS n FROM entries WHERE person_id = ?", (person_id,))
    return RemovalSummary(person, person.n_photos, person.n_templates, int(rows[0]["n"]) if rows else 0)


def delete_person(app: App, person_id: int, remove_entries: bool = False) -> Person:
    """Delete a person with their photos (crops) and templates; their log entries too if asked."""
    person = app.store.remove_person(person_id, remove_entries=remove_entries)
    app.invalidate_gallery()
    log.info("deleted person %d (entries %s)", person_id, "deleted" if remove_entries else "kept")
    return person


# Ids per IN (...) query: older SQLite builds allow at most 999 parameters.
_SQL_BATCH = 500


def first_photo_ids(app: App) -> dict[int, int]:
    """person id -> id of their first photo (the one list thumbnails show); reads no image."""
    rows = app.store.query("SELECT person_id, MIN(id) AS id FROM photos GROUP BY person_id")
    return {int(r["person_id"]): int(r["id"]) for r in rows}


def first_crops(app: App, photo_ids: Collection[int] | None = None) -> dict[int, tuple[int, np.ndarray]]:
    """person id -> (photo id, aligned crop) of each person's first photo (list thumbnails).

    With ``photo_ids`` (from :func:`first_photo_ids`), only those photos are read and decoded:
    a list that caches its thumbnails asks just for the ones it lacks."""
    ids = sorted({int(i) for i in (first_photo_ids(app).values() if photo_ids is None else photo_ids)})
    rows = []
    for start in range(0, len(ids), _SQL_BATCH):
        batch = ids[start:start + _SQL_BATCH]
        rows += app.store.query(f"SELECT id, person_id, crop FROM photos WHERE id IN ({', '.join('?' * len(batch))})",
                                batch)
    out = {}
    for r in rows:
        try:
            out[int(r["person_id"])] = (int(r["id"]), decode_blob(r["crop"]))
        except FaceAppError:
            log.warning("photo %s has an unreadable crop", r["id"])
    return out


@dataclass
class ImportReport:
    """Outcome of a bulk import: what was enrolled, and every rejected photo with its reason."""

    people_created: list[str] = field(default_factory=list)
    people_extended: list[str] = field(default_factory=list)
    accepted: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)   # (file, reason)
    skipped_people: list[tuple[str, str]] = field(default_factory=list)  # (folder, reason)
    already_stored: list[str] = field(default_factory=list)  # files the person already had

    def summary(self) -> str:
        lines = [f"{self.accepted} photos accepted, {len(self.rejected)} rejected; "
                 f"{len(self.people_created)} people enrolled, {len(self.people_extended)} extended"]
        if self.already_stored:
            lines[0] += f"; {len(self.already_stored)} already stored"
        lines += [f"  rejected {f}: {why}" for f, why in self.rejected]
        lines += [f"  skipped {p}: {why}" for p, why in self.skipped_people]
        return "\n".join(lines)


ProgressFn = Callable[[int, int, str], None]
PhotoFn = Callable[[Checked], None]

OUTLIER_REASON = "does not look like the other photos of this person"


def import_folder(app: App, folder: Path | str, progress: ProgressFn | None = None,
                  should_stop: Callable[[], bool] | None = None,
                  on_photo: PhotoFn | None = None) -> ImportReport:
    """Enroll every sub-folder of ``folder`` as one person (named after the folder).

    Each person is written in its own transaction: stopping (or a crash) leaves whole
    people only. An existing person of the same name gets the new photos added.
    ``on_photo`` gets every photo's verdict as it is checked (the GUI's live report)."""
    people = person_folders(folder)
    files = {d: iter_image_files(d) for d in people}
    total = sum(len(v) for v in files.values())
    report = ImportReport()
    done = 0
    for person_dir in people:
        name = person_dir.name.replace("_", " ")
        shots: list[Shot] = []
        for f in files[person_dir]:
            if should_stop and should_stop():
                return report
            checked = inspect_file(app.engine, f)
            if checked.ok:
                assert checked.shot is not None
                shots.append(checked.shot)
            else:
                report.rejected.append((str(f), checked.verdict))
            if on_photo:
                on_photo(checked)
            done += 1
            if progress:
                progress(done, total, str(f))
        if len(shots) >= 3:
            # A stranger's photo in someone's folder would let the stranger in as them.
            outliers = set(inconsistent_shots(shot_embeddings(shots), app.threshold))
            for i in sorted(outliers):
                report.rejected.append((shots[i].source, OUTLIER_REASON))
                if on_photo:
                    on_photo(Checked(shots[i].source, None, OUTLIER_REASON))
            shots = [s for i, s in enumerate(shots) if i not in outliers]
        if not shots:
            report.skipped_people.append((str(person_dir), "no usable photo"))
            continue
        try:
            existing = app.store.find_person(name)
        except FaceAppError:
            existing = None
        try:
            if existing is not None:
                ids, skipped = add_new_shots(app, existing.id, shots)
                report.already_stored += [s.source for s in skipped]
                if ids:
                    report.people_extended.append(name)
                    report.accepted += len(ids)
            else:
                save_person(app, name, shots, allow_duplicate=False)
                report.people_created.append(name)
                report.accepted += len(shots)
        except FaceAppError as exc:
            report.skipped_people.append((str(person_dir), str(exc)))
    return report
