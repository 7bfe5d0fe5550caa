"""People, their photos (aligned crops) and templates: the part of :class:`faceapp.store.db.Store`
that enrollment and recognition use. A mixin: it needs the store's ``transaction``, ``query``,
``audit`` and ``_lock``."""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from faceapp.core.errors import DuplicateError, EmbeddingError, NotFoundError
from faceapp.core.matcher import Gallery
from faceapp.core.scale import l2_normalize
from faceapp.core.types import Person
from faceapp.store.audit import anonymise_person
from faceapp.store.blobs import decode_blob, embedding_blob, embeddings_from_blobs, encode_png
from faceapp.store.common import clean_name, opt_text, utc_now

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class NewPhoto:
    """A photo accepted for enrollment: its aligned crop and its embedding."""

    crop: np.ndarray
    embedding: np.ndarray
    quality: float | None = None
    source: str | None = None


@dataclass(frozen=True, eq=False)
class PhotoRecord:
    id: int
    person_id: int
    crop: np.ndarray
    quality: float | None
    source: str | None
    created: str


class PeopleMixin:
    """People, photos and templates of one open store."""

    # -- people ---------------------------------------------------------------
    def add_person(
        self,
        name: str,
        model_id: str,
        photos: Sequence[NewPhoto] = (),
        employee_id: str | None = None,
        department: str | None = None,
    ) -> int:
        """Create a person with their photos and templates in one transaction; returns the id."""
        name = clean_name(name)
        with self.transaction() as conn:
            if conn.execute("SELECT 1 FROM people WHERE name = ?", (name,)).fetchone():
                raise DuplicateError(f"a person named '{name}' is already enrolled")
            cur = conn.execute(
                "INSERT INTO people (name, employee_id, department, active, created) VALUES (?, ?, ?, 1, ?)",
                (name, _employee_id(employee_id), _department(department), utc_now()))
            pid = int(cur.lastrowid)
            self._insert_photos(conn, pid, model_id, photos)
            self.audit("person.add", f"person:{pid}", {
                "name": name, "employee_id": _employee_id(employee_id), "department": _department(department),
                "photos": len(photos), "model_id": model_id}, conn)
        return pid

    def add_photos(self, person_id: int, model_id: str, photos: Sequence[NewPhoto]) -> list[int]:
        """Add photos (and their templates) to an existing person, atomically."""
        with self.transaction() as conn:
            self.require_person(conn, person_id)
            ids = self._insert_photos(conn, person_id, model_id, photos)
            self.audit("person.add_photos", f"person:{person_id}",
                       {"photos": len(ids), "photo_ids": ids, "model_id": model_id}, conn)
            return ids

    def _insert_photos(self, conn, person_id: int, model_id: str, photos: Sequence[NewPhoto]) -> list[int]:
        ids = []
        now = utc_now()
        for p in photos:
            cur = conn.execute(
                "INSERT INTO photos (person_id, crop, quality, source, created) VALUES (?, ?, ?, ?, ?)",
                (person_id, encode_png(p.crop), p.quality, p.source, now))
            photo_id = int(cur.lastrowid)
            conn.execute(
                "INSERT INTO templates (person_id, photo_id, model_id, embedding, created) VALUES (?, ?, ?, ?, ?)",
                (person_id, photo_id, model_id, embedding_blob(p.embedding), now))
            ids.append(photo_id)
        return ids

    def require_person(self, conn: sqlite3.Connection, person_id: int) -> None:
        """NotFoundError unless the person exists (``conn``: inside the caller's transaction)."""
        if not conn.execute("SELECT 1 FROM people WHERE id = ?", (person_id,)).fetchone():
            raise NotFoundError(f"no person with id {person_id}")

    def get_person(self, person_id: int) -> Person:
        rows = self._people_rows("WHERE p.id = ?", (person_id,))
        if not rows:
            raise NotFoundError(f"no person with id {person_id}")
        return rows[0]

    def find_person(self, name_or_id: str | int) -> Person:
        """Look a person up by exact name (case-insensitive), or by id when given digits."""
        if isinstance(name_or_id, int) or (isinstance(name_or_id, str) and name_or_id.strip().isdigit()):
            rows = self._people_rows("WHERE p.id = ?", (int(name_or_id),))
            if rows:
                return rows[0]
        rows = self._people_rows("WHERE p.name = ?", (" ".join(str(name_or_id).split()),))
        if not rows:
            raise NotFoundError(f"no enrolled person is called '{name_or_id}' (see: faceapp people list)")
        return rows[0]

    def list_people(self, search: str | None = None, include_inactive: bool = True) -> list[Person]:
        where, params = [], []
        if search:
            where.append("(p.name LIKE ? OR IFNULL(p.employee_id,'') LIKE ? OR IFNULL(p.department,'') LIKE ?)")
            like = f"%{search}%"
            params += [like, like, like]
        if not include_inactive:
            where.append("p.active = 1")
        clause = ("WHERE " + " AND ".join(where)) if where else ""
        return self._people_rows(clause, params)

    def _people_rows(self, clause: str, params: Sequence) -> list[Person]:
        sql = f"""SELECT p.*, (SELECT COUNT(*) FROM photos f WHERE f.person_id = p.id) AS n_photos,
                         (SELECT COUNT(*) FROM templates t WHERE t.person_id = p.id) AS n_templates
                  FROM people p {clause} ORDER BY p.name COLLATE NOCASE"""
        return [Person(id=r["id"], name=r["name"], employee_id=r["employee_id"], department=r["department"],
                       active=bool(r["active"]), created=r["created"], n_photos=r["n_photos"],
                       n_templates=r["n_templates"]) for r in self.query(sql, params)]

    def update_person(self, person_id: int, *, name: str | None = None, employee_id: str | None = None,
                      department: str | None = None, active: bool | None = None) -> Person:
        """Change a person's details; only the given fields change."""
        with self.transaction() as conn:
            self.require_person(conn, person_id)
            before = conn.execute("SELECT name, employee_id, department, active FROM people WHERE id = ?",
                                  (person_id,)).fetchone()
            if name is not None:
                name = clean_name(name)
                clash = conn.execute("SELECT id FROM people WHERE name = ? AND id != ?", (name, person_id)).fetchone()
                if clash:
                    raise DuplicateError(f"a person named '{name}' is already enrolled")
                conn.execute("UPDATE people SET name = ? WHERE id = ?", (name, person_id))
            if employee_id is not None:
                conn.execute("UPDATE people SET employee_id = ? WHERE id = ?", (_employee_id(employee_id), person_id))
            if department is not None:
                conn.execute("UPDATE people SET department = ? WHERE id = ?", (_department(department), person_id))
            if active is not None:
                conn.execute("UPDATE people SET active = ? WHERE id = ?", (int(bool(active)), person_id))
            after = conn.execute("SELECT name, employee_id, department, active FROM people WHERE id = ?",
                                 (person_id,)).fetchone()
            changed = {k: [a, b] if k != "active" else [bool(a), bool(b)] for k, a, b in
                       zip(("name", "employee_id", "department", "active"), before, after) if a != b}
            if changed:
                self.audit("person.update", f"person:{person_id}", changed, conn)
        return self.get_person(person_id)

    def remove_person(self, person_id: int, remove_entries: bool = False) -> Person:
        """Delete a person, their photos and templates (cascade) and, optionally, their log entries.

        Entries that stay keep the name as text but lose the link and their snapshot."""
        person = self.get_person(person_id)
        with self.transaction() as conn:
            if remove_entries:
                cur = conn.execute("DELETE FROM entries WHERE person_id = ?", (person_id,))
                entries = {"entries_deleted": cur.rowcount}
            else:
                cur = conn.execute("UPDATE entries SET snapshot = NULL WHERE person_id = ? AND snapshot IS NOT NULL",
                                   (person_id,))
                kept = conn.execute("SELECT COUNT(*) FROM entries WHERE person_id = ?", (person_id,)).fetchone()[0]
                entries = {"entries_kept": kept, "snapshots_deleted": cur.rowcount}
            conn.execute("DELETE FROM people WHERE id = ?", (person_id,))
            self.audit("person.remove", f"person:{person_id}",
                       {"name": person.name, "photos": person.n_photos, "templates": person.n_templates, **entries},
                       conn)
            anonymise_person(conn, person_id)  # this row too: the facts stay, the identity goes
        self.scrub_wal()
        return person

    def scrub_wal(self, wait_ms: int = 2000) -> bool:
        """Checkpoint and empty the write-ahead log, so that deleted crops do not survive in it
        (with ``secure_delete`` the main file is zeroed already). Best effort: returns False if
        another connection kept it busy for ``wait_ms``."""
        if str(self.path) == ":memory:":
            return True
        with self._lock:
            try:
                self.conn.execute(f"PRAGMA busy_timeout = {int(wait_ms)}")
                busy = self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            except sqlite3.Error as exc:
                log.warning("could not empty the write-ahead log: %s", exc)
                busy = 1
            finally:
                self.conn.execute("PRAGMA busy_timeout = 30000")
        return not busy

    # -- photos & templates -------------------------------------------------
    def photos(self, person_id: int | None = None) -> list[PhotoRecord]:
        sql = "SELECT * FROM photos" + (" WHERE person_id = ?" if person_id is not None else "") + " ORDER BY id"
        rows = self.query(sql, (person_id,) if person_id is not None else ())
        return [_photo_record(r) for r in rows]

    def remove_photo(self, photo_id: int) -> None:
        with self.transaction() as conn:
            row = conn.execute("SELECT person_id FROM photos WHERE id = ?", (photo_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"no photo with id {photo_id}")
            n_templates = conn.execute("SELECT COUNT(*) FROM templates WHERE photo_id = ?", (photo_id,)).fetchone()[0]
            conn.execute("DELETE FROM photos WHERE id = ?", (photo_id,))
            self.audit("photo.remove", f"person:{row[0]}", {"photo_id": photo_id, "templates": n_templates}, conn)

    def revision(self, conn: sqlite3.Connection | None = None) -> int:
        """The change counter of people, templates, doors and groups (see migration v5): equal
        numbers mean nothing a door decision depends on changed in between, in any process."""
        with self._lock:
            return int((conn or self.conn).execute("SELECT n FROM revision WHERE id = 1").fetchone()[0])

    def gallery(self, model_id: str, active_only: bool = True, dim: int = 512, spare: float = 0.0) -> Gallery:
        """Snapshot of all templates of ``model_id`` for the matcher, stamped with the
        :meth:`revision` it was read at (read first: a change made meanwhile shows as a newer one).

        Rows are read in chunks straight into one array (1M templates: 2 GB, not three copies of
        it); ``spare`` leaves room for that fraction more rows after them (untouched pages cost
        no memory), so a caller can append later without copying (service.gallery)."""
        join = ("FROM templates t JOIN people p ON p.id = t.person_id WHERE t.model_id = ?"
                + (" AND p.active = 1" if active_only else ""))
        with self._lock:
            revision = self.revision()
            expected = int(self.conn.execute("SELECT COUNT(*) " + join, (model_id,)).fetchone()[0])
            cursor = self.conn.execute("SELECT t.id, t.person_id, t.embedding, p.name, p.active " + join, (model_id,))
            rows = _read_templates(cursor, expected, spare, dim)
        if rows is None:
            return replace(Gallery.empty(dim), revision=revision)
        emb, pids, tids, names, inactive = rows
        gallery = Gallery.build(pids, emb, names, tids, unit=True)
        return replace(gallery, revision=revision, inactive=frozenset(inactive))

    def photos_missing_templates(self, model_id: str) -> list[PhotoRecord]:
        """Photos that have no template for ``model_id`` yet (to recompute after a model change)."""
        rows = self.query(
            "SELECT f.* FROM photos f WHERE NOT EXISTS (SELECT 1 FROM templates t WHERE t.photo_id = f.id "
            "AND t.model_id = ?) ORDER BY f.id", (model_id,))
        return [_photo_record(r) for r in rows]

    def add_templates(self, model_id: str, items: Sequence[tuple[int, np.ndarray]]) -> int:
        """Store recomputed templates as (photo_id, embedding) pairs in one transaction; returns how
        many were stored (photos deleted meanwhile are skipped)."""
        now = utc_now()
        with self.transaction() as conn:
            stored = 0
            for photo_id, emb in items:
                pid = conn.execute("SELECT person_id FROM photos WHERE id = ?", (photo_id,)).fetchone()
                if pid is None:
                    continue  # photo deleted meanwhile
                conn.execute(
                    "INSERT OR REPLACE INTO templates (person_id, photo_id, model_id, embedding, created) "
                    "VALUES (?, ?, ?, ?, ?)", (pid[0], photo_id, model_id, embedding_blob(emb), now))
                stored += 1
            if stored:
                self.audit("templates.recompute", f"model:{model_id}", {"model_id": model_id, "templates": stored},
                           conn)
        return stored

    def template_count(self, model_id: str | None = None) -> int:
        if model_id is None:
            return int(self.conn.execute("SELECT COUNT(*) FROM templates").fetchone()[0])
        return int(self.conn.execute("SELECT COUNT(*) FROM templates WHERE model_id = ?", (model_id,)).fetchone()[0])


def _photo_record(row: dict) -> PhotoRecord:
    return PhotoRecord(row["id"], row["person_id"], decode_blob(row["crop"]), row["quality"], row["source"],
                       row["created"])


GALLERY_CHUNK = 65536   # rows read at a time when loading a gallery


def _read_templates(cursor: sqlite3.Cursor, expected: int, spare: float, dim: int):
    """(unit embeddings as a view of a buffer with ``spare`` room, person ids, template ids, names,
    inactive people) of the rows (id, person_id, embedding, name, active) whose embedding is a
    finite unit vector of ``dim`` values; None if there are none. A damaged one (a hand-edited
    or half-synced database) is left out with a warning rather than making every face unknown."""
    buf, n = None, 0
    pid_parts, tid_parts, names, inactive = [], [], {}, set()
    while rows := cursor.fetchmany(GALLERY_CHUNK):
        emb, good, why = embeddings_from_blobs([r[2] for r in rows], dim)
        for i, reason in why.items():
            log.warning("template %s of person %s is unusable and is ignored: %s", rows[i][0], rows[i][1], reason)
        if why:
            rows, emb = [r for r, ok in zip(rows, good.tolist()) if ok], emb[good]
        if not rows:
            continue
        k = len(rows)
        if buf is None or n + k > buf.shape[0]:          # first chunk, or rows added since the count
            grown = np.empty((int(max(expected, n + k) * (1 + spare)) + (1024 if spare else 0), dim), np.float32)
            if buf is not None:
                grown[:n] = buf[:n]
            buf = grown
        buf[n:n + k] = l2_normalize(emb)     # within 1e-3 of unit already; now exactly
        pid_parts.append(np.fromiter((r[1] for r in rows), np.int64, k))
        tid_parts.append(np.fromiter((r[0] for r in rows), np.int64, k))
        for r in rows:
            names[r[1]] = r[3]
            if not r[4]:
                inactive.add(int(r[1]))
        n += k
    if not n:
        return None
    return buf[:n], np.concatenate(pid_parts), np.concatenate(tid_parts), names, inactive


def _employee_id(value: str | None) -> str | None:
    return opt_text(value, "an employee id")


def _department(value: str | None) -> str | None:
    return opt_text(value, "a department")
