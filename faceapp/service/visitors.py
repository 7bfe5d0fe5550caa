"""Unknown visitors, search by face and corrections of wrong matches (shared by the CLI and the GUI).

Every logged face keeps its embedding (:mod:`faceapp.store.visitors`). Unknown events are grouped
into *visitors* by connected components under the recognition threshold
(:func:`faceapp.core.clustering.threshold_components`): a new unknown event joins the visitor of
every stored unknown face within the threshold, merging those visitors when it links several,
and starts a new visitor when it links none. That is order independent, so the incremental result
equals a full regroup; `faceapp evaluate --cluster` measures it against average linkage.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from faceapp.capture.images import load_image
from faceapp.core.clustering import threshold_components
from faceapp.core.errors import FaceAppError, NotFoundError
from faceapp.core.scale import l2_normalize
from faceapp.core.types import Person
from faceapp.service.app import App
from faceapp.service.enroll import add_new_shots, check_image, choose_face, save_person
from faceapp.store.attendance import AttendanceStore, EntryRecord, NewEntry
from faceapp.store.db import decode_blob
from faceapp.store.visitors import EntryFace, Visitor, VisitorStore

log = logging.getLogger(__name__)

# Snapshots tried (clearest first) and photos kept when a visitor is enrolled.
ENROLL_TRIES = 10
ENROLL_PHOTOS = 5


class EventIndex:
    """In-memory copy of the embeddings of the unknown events that belong to a visitor, for one
    model: a new event is compared with all of them in one matrix product.

    It follows the database incrementally (rows added since the last look, by rowid: cheap) and
    reloads everything when events left or were grouped late (forget, retention, enrollment,
    another process), which a count check finds at most every ``FULL_CHECK_SECONDS``. A stale
    row costs nothing but memory meanwhile: :meth:`VisitorStore.join` reads the neighbours'
    visitors from the database, so a forgotten event never pulls a new one into anything.
    Thread-safe."""

    FULL_CHECK_SECONDS = 10.0

    def __init__(self, visitors: VisitorStore, model_id: str) -> None:
        self.visitors = visitors
        self.model_id = model_id
        self._lock = threading.Lock()
        self._ids = np.zeros(0, np.int64)          # capacity-sized buffers, the first _n rows used
        self._buf = np.zeros((0, 0), np.float32)
        self._n = 0
        self._max_rowid = 0
        self._checked = -math.inf

    def __len__(self) -> int:
        return self._n

    def _append(self, entry_ids: np.ndarray, matrix: np.ndarray) -> None:
        need = self._n + len(entry_ids)
        if need > len(self._ids) or self._buf.shape[1] != matrix.shape[1]:
            cap = max(need, 2 * len(self._ids), 1024)   # doubling: appending one row stays O(1)
            ids = np.zeros(cap, np.int64)
            buf = np.zeros((cap, matrix.shape[1]), np.float32)
            if self._n and self._buf.shape[1] == matrix.shape[1]:
                ids[:self._n], buf[:self._n] = self._ids[:self._n], self._buf[:self._n]
            self._ids, self._buf = ids, buf
        self._ids[self._n:need] = entry_ids
        self._buf[self._n:need] = l2_normalize(matrix)
        self._n = need

    def _load_after(self, rowid: int) -> None:
        for rowids, entry_ids, matrix in self.visitors.iter_embeddings(self.model_id, grouped_only=True,
                                                                        after_rowid=rowid):
            self._append(entry_ids, matrix)
            self._max_rowid = int(rowids[-1])

    def _sync(self) -> None:
        self._load_after(self._max_rowid)
        now = time.monotonic()
        if now - self._checked < self.FULL_CHECK_SECONDS:
            return
        self._checked = now
        count, max_rowid = self.visitors.grouped_signature(self.model_id)
        if count != self._n or max_rowid != self._max_rowid:
            # Events left (or were grouped late, below the last row seen): read everything again.
            self._n, self._max_rowid = 0, 0
            self._load_after(0)

    def neighbours(self, embedding: np.ndarray, threshold: float) -> np.ndarray:
        """Entry ids of the grouped events within ``threshold`` of ``embedding``."""
        with self._lock:
            self._sync()
            if not self._n:
                return np.zeros(0, np.int64)
            sim = self._buf[:self._n] @ l2_normalize(np.reshape(embedding, -1))
            return self._ids[:self._n][sim >= np.float32(1.0 - threshold)]

    def group(self, entry_id: int, embedding: np.ndarray, threshold: float) -> int:
        """Put a newly logged unknown event into its visitor; returns the visitor id."""
        near = self.neighbours(embedding, threshold)
        return self.visitors.join(entry_id, self.model_id, near.tolist())


class FaceEventLog:
    """Logs entries with their face and groups unknown ones into visitors at once (the pipeline's
    writer). Grouping trouble never loses the entry: it is logged and grouped on the next start."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.attendance = AttendanceStore(app.store)
        self.visitors = VisitorStore(app.store)
        self._index: EventIndex | None = None

    def index(self) -> EventIndex:
        model_id = self.app.model_id
        if self._index is None or self._index.model_id != model_id:
            self._index = EventIndex(self.visitors, model_id)
        return self._index

    def log(self, entry: NewEntry, threshold: float | None = None) -> int:
        """Write the entry (and its face, in the same transaction); group it if it is unknown."""
        return self.log_confirmed(entry, threshold)[1]

    def log_confirmed(self, entry: NewEntry, threshold: float | None = None,
                      confirm: Callable[[sqlite3.Connection, NewEntry], NewEntry] | None = None
                      ) -> tuple[NewEntry, int]:
        """As :meth:`log`; ``confirm(conn, entry)`` may revise the entry inside the writing
        transaction (a station re-checks the person and the rules there). Returns the entry as
        written and its id."""
        with self.app.store.transaction() as conn:
            if confirm is not None:
                entry = confirm(conn, entry)
            entry_id = self.attendance.add_entry(entry, conn)
        if entry.face is not None and entry.person_id is None and entry.decision == "unknown":
            try:
                self.index().group(entry_id, entry.face.embedding,
                                   self.app.threshold if threshold is None else threshold)
            except Exception:   # the entry is safe; regroup_pending() picks it up later
                log.exception("could not group entry %d into a visitor", entry_id)
        return entry, entry_id

    def regroup_pending(self, threshold: float | None = None) -> int:
        """Group unknown events that have a face but no visitor yet; returns how many."""
        pending = self.visitors.ungrouped_unknown(self.app.model_id)
        t = self.app.threshold if threshold is None else threshold
        for entry_id in pending:
            emb = self.visitors.entry_embedding(entry_id, self.app.model_id)
            if emb is not None:
                self.index().group(entry_id, emb, t)
        return len(pending)


def entry_face(app: App, embedding: np.ndarray | None, det_score: float | None = None,
               face_px: float | None = None) -> EntryFace | None:
    """The face to store with an entry (None without an embedding), in the active model's space."""
    if embedding is None:
        return None
    return EntryFace(app.model_id, l2_normalize(np.reshape(embedding, -1)), det_score, face_px)


# -- visitors ---------------------------------------------------------------------------------------
def list_visitors(app: App) -> list[Visitor]:
    """Every visitor of the active model, the most recently seen first."""
    return VisitorStore(app.store).visitors(app.model_id)


def get_visitor(app: App, visitor_id: int) -> Visitor:
    return VisitorStore(app.store).visitor(visitor_id, app.model_id)


def merge_visitors(app: App, *visitor_ids: int) -> int:
    """Merge visitors into the one with the lowest id (audited); returns it."""
    return VisitorStore(app.store).merge(visitor_ids, app.model_id)


def forget_visitor(app: App, visitor_id: int) -> int:
    """Delete a visitor's snapshots and embeddings (entries stay as plain unknowns); audited."""
    return VisitorStore(app.store).forget(visitor_id, app.model_id)


def regroup_all(app: App, threshold: float | None = None) -> int:
    """Group every unknown event of the active model again from scratch; returns the number of
    visitors. Gives the same groups as the incremental path (connected components)."""
    vs = VisitorStore(app.store)
    model_id = app.model_id
    unknown = set(vs.ungrouped_unknown(model_id))
    ids, mats = [], []
    for _, entry_ids, matrix in vs.iter_embeddings(model_id):
        ids.append(entry_ids)
        mats.append(matrix)
    if not ids:
        return 0
    entry_ids = np.concatenate(ids)
    grouped = set(vs.visitors_of(entry_ids.tolist(), model_id))
    keep = np.array([int(e) in unknown or int(e) in grouped for e in entry_ids], bool)
    entry_ids, emb = entry_ids[keep], np.vstack(mats)[keep]
    labels = threshold_components(emb, app.threshold if threshold is None else threshold)
    groups: dict[int, list[int]] = {}
    for e, lab in zip(entry_ids.tolist(), labels.tolist()):
        groups.setdefault(lab, []).append(e)
    return len(vs.set_groups(model_id, list(groups.values())))


@dataclass(frozen=True)
class VisitorEnrollment:
    person_id: int
    photos: int
    entries: int
    refused: tuple[str, ...]   # why other snapshots were not used


def snapshot_image(app: App, entry_id: int) -> np.ndarray:
    """The decoded snapshot of an entry (FaceAppError when it has none any more)."""
    data = AttendanceStore(app.store).snapshot(entry_id)
    if not data:
        raise FaceAppError(f"entry {entry_id} has no snapshot (purged by retention or deleted)")
    return decode_blob(data)


def enroll_visitor(app: App, visitor_id: int, name: str, employee_id: str | None = None,
                   department: str | None = None) -> VisitorEnrollment:
    """Enroll a visitor as a person: their clearest snapshots go through the normal quality gate
    and duplicate check, and their past entries are relabelled to the person (audited)."""
    vs = VisitorStore(app.store)
    visitor = vs.visitor(visitor_id, app.model_id)
    shots, refused = [], []
    for entry_id in vs.clearest_entries(visitor_id, app.model_id, ENROLL_TRIES):
        source = f"entry {entry_id}"
        try:
            shot = check_image(app.engine, snapshot_image(app, entry_id), source)
        except FaceAppError as exc:
            refused.append(str(exc))
            continue
        if shot.ok:
            shots.append(shot)
            if len(shots) >= ENROLL_PHOTOS:
                break
        else:
            refused.append(f"{source}: {', '.join(shot.quality.reasons)}")
    if not shots:
        detail = f" ({'; '.join(refused[:3])})" if refused else ""
        raise FaceAppError(f"no snapshot of visitor {visitor_id} passes the enrollment checks{detail}; "
                           f"enroll this person from photos instead")
    pid = save_person(app, name, shots, employee_id, department)
    person = app.store.get_person(pid)
    with app.store.transaction() as conn:
        n = vs.relabel(list(visitor.entry_ids), pid, person.name, conn,
                       reason=f"identified later: visitor {visitor_id} enrolled as {person.name}")
        app.store.audit("visitor.enroll", f"person:{pid}", {
            "visitor": visitor_id, "name": person.name, "photos": len(shots), "entries_relabelled": n}, conn)
    app.invalidate_gallery()
    return VisitorEnrollment(pid, len(shots), n, tuple(refused))


# -- search by face ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SearchHit:
    entry: EntryRecord
    distance: float
    visitor_id: int | None


def search_embedding(app: App, embedding: np.ndarray, since: str | None = None, until: str | None = None,
                     threshold: float | None = None, limit: int | None = None,
                     exclude_entry: int | None = None) -> list[SearchHit]:
    """Logged entries whose face is within the threshold of ``embedding``, nearest first.
    Dates are UTC ISO bounds (since inclusive, until exclusive)."""
    t = app.threshold if threshold is None else threshold
    q = l2_normalize(np.reshape(embedding, -1))
    vs = VisitorStore(app.store)
    found_ids, found_d = [], []
    for _, entry_ids, matrix in vs.iter_embeddings(app.model_id, since, until):
        d = 1.0 - matrix @ q
        hit = d <= t
        found_ids.append(entry_ids[hit])
        found_d.append(d[hit])
    if not found_ids:
        return []
    ids, dist = np.concatenate(found_ids), np.concatenate(found_d)
    keep = ids != (exclude_entry if exclude_entry is not None else -1)
    ids, dist = ids[keep], dist[keep]
    order = np.argsort(dist, kind="stable")
    if limit is not None:
        order = order[:limit]
    records = AttendanceStore(app.store).entries_by_id([int(i) for i in ids[order]])
    visitors = vs.visitors_of([int(i) for i in ids[order]], app.model_id)
    return [SearchHit(records[int(i)], float(dist[k]), visitors.get(int(i)))
            for k, i in zip(order, ids[order]) if int(i) in records]


def face_of_image(app: App, image: np.ndarray, source: str = "photo") -> np.ndarray:
    """The embedding of the one face a search photo is about (the dominant face)."""
    faces = app.engine.analyze_photo(image)
    h, w = image.shape[:2]
    face, _ = choose_face(faces, source, (w, h))
    return face.embedding


def search_image(app: App, image: np.ndarray, since: str | None = None, until: str | None = None,
                 source: str = "photo") -> list[SearchHit]:
    """The entries in which the face of ``image`` appears, nearest first."""
    return search_embedding(app, face_of_image(app, image, source), since, until)


def search_file(app: App, path: Path | str, since: str | None = None, until: str | None = None) -> list[SearchHit]:
    return search_image(app, load_image(path), since, until, source=str(path))


def search_entry(app: App, entry_id: int, since: str | None = None, until: str | None = None) -> list[SearchHit]:
    """"Find this face": entries with the face of a logged entry (the entry itself first)."""
    emb = VisitorStore(app.store).entry_embedding(entry_id, app.model_id)
    if emb is None:
        raise FaceAppError(f"entry {entry_id} has no stored face for the current model "
                           f"(purged by retention, or logged before faces were kept)")
    return search_embedding(app, emb, since, until)


# -- corrections ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Correction:
    entry_id: int
    before: str | None        # the name the entry had
    after: str | None         # the right person, or None for "someone else"
    photo_added: bool = False
    negative_added: bool = False
    note: str = ""


def correct_entry(app: App, entry_id: int, person: str | int | None = None, not_person: bool = False,
                  on_note: Callable[[str], None] | None = None) -> Correction:
    """Correct a wrong match on a logged entry (audited).

    With ``person``: the entry is relabelled to that person, and its snapshot is offered as a new
    photo of them through the quality gate (a refused snapshot is reported, the relabel stays).
    With ``not_person``: the snapshot's face becomes a negative example of the wrongly named
    person, so the matcher stops giving them that face, and the entry becomes an unknown visitor."""
    if (person is None) == (not not_person):
        raise FaceAppError("say who it was (--person NAME_OR_ID) or that it was someone else (--not-person)")
    att, vs = AttendanceStore(app.store), VisitorStore(app.store)
    records = att.entries_by_id([entry_id])
    if entry_id not in records:
        raise NotFoundError(f"no entry with id {entry_id} (see: faceapp log list)")
    entry = records[entry_id]
    if not_person:
        return _not_person(app, entry, vs)
    target = app.store.find_person(person)
    if entry.person_id == target.id:
        raise FaceAppError(f"entry {entry_id} is already {target.name}")
    photo_added, note = False, ""
    if entry.has_snapshot:
        try:
            shot = check_image(app.engine, snapshot_image(app, entry_id), f"entry {entry_id}")
        except FaceAppError as exc:
            note = f"snapshot not added as a photo: {exc}"
        else:
            if shot.ok:
                ids, _ = add_new_shots(app, target.id, [shot])
                photo_added = bool(ids)
                note = "snapshot added as a photo" if ids else "this snapshot is already one of their photos"
            else:
                note = f"snapshot not added as a photo: {', '.join(shot.quality.reasons)}"
    else:
        note = "the entry has no snapshot any more: no photo added"
    with app.store.transaction() as conn:
        vs.relabel([entry_id], target.id, target.name, conn, reason=f"corrected: was {entry.person_name or 'unknown'}")
        app.store.audit("entry.correct", f"entry:{entry_id}", {
            "person": [entry.person_name, target.name], "person_id": [entry.person_id, target.id],
            "photo_added": photo_added}, conn)
    app.invalidate_gallery()
    if on_note:
        on_note(note)
    return Correction(entry_id, entry.person_name, target.name, photo_added=photo_added, note=note)


def _not_person(app: App, entry: EntryRecord, vs: VisitorStore) -> Correction:
    if entry.person_id is None:
        raise FaceAppError(f"entry {entry.id} names nobody ({entry.person_name or 'unknown'}): nothing to correct")
    emb = vs.entry_embedding(entry.id, app.model_id)
    if emb is None and entry.has_snapshot:
        emb = face_of_image(app, snapshot_image(app, entry.id), f"entry {entry.id}")
    if emb is None:
        raise FaceAppError(f"entry {entry.id} has no stored face or snapshot any more: the matcher cannot learn "
                           f"from it (the entry can still be exported and annotated by hand)")
    wrong: Person | None
    try:
        wrong = app.store.get_person(entry.person_id)
    except NotFoundError:
        wrong = None
    with app.store.transaction() as conn:
        if wrong is not None:
            vs.add_negative(wrong.id, app.model_id, emb, entry.id, conn)
        vs.relabel([entry.id], None, None, conn, decision="unknown",
                   reason=f"corrected: not {entry.person_name}")
        app.store.audit("entry.correct", f"entry:{entry.id}", {
            "person": [entry.person_name, None], "person_id": [entry.person_id, None],
            "negative_for": entry.person_id if wrong is not None else None}, conn)
    app.invalidate_gallery()
    if vs.entry_embedding(entry.id, app.model_id) is not None:
        FaceEventLog(app).index().group(entry.id, emb, app.threshold)
    return Correction(entry.id, entry.person_name, None, negative_added=wrong is not None,
                      note=f"{entry.person_name} will not be matched to this face again")

