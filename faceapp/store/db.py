"""The faceapp database: people, photos (aligned crops), templates, entries, settings.

All multi-row changes run in one explicit ``BEGIN IMMEDIATE`` transaction (sqlite-utils'
write helpers commit on their own, so they are used only outside transactions).
WAL mode lets the GUI read while a worker writes.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np
import sqlite_utils

from faceapp.core.errors import DuplicateError, NotFoundError, StoreError
from faceapp.core.matcher import Gallery
from faceapp.core.settings import Settings
from faceapp.core.types import Person
from faceapp.store.audit import default_actor, utc_now, write_audit
from faceapp.store.migrations import MIGRATIONS, SCHEMA_VERSION

log = logging.getLogger(__name__)

MAX_NAME = 200


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


def encode_png(image: np.ndarray) -> bytes:
    try:
        ok, buf = cv2.imencode(".png", image)
    except cv2.error:  # empty or oddly shaped array
        ok = False
    if not ok:
        raise StoreError("could not encode image")
    return buf.tobytes()


def encode_jpeg(image: np.ndarray, quality: int = 85) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise StoreError("could not encode image")
    return buf.tobytes()


def decode_blob(data: bytes) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise StoreError("a stored image is corrupt")
    return img


def clean_name(name: str) -> str:
    """Validate a person's name: trimmed, 1..200 characters, no control characters."""
    if not isinstance(name, str):
        raise StoreError("a name must be text")
    name = " ".join(name.split())
    if not name:
        raise StoreError("a name cannot be empty")
    if len(name) > MAX_NAME:
        raise StoreError(f"a name can have at most {MAX_NAME} characters (this one has {len(name)})")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise StoreError("a name cannot contain control characters")
    return name


class Store:
    """One open database. Thread-safe: a lock serialises use of the connection.

    Every change to people, photos, templates and settings appends an audit row in the same
    transaction, in the name of ``actor`` (refined by the CLI and the GUI's admin gate: "cli:alice",
    "gui:admin"...)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.actor = default_actor()
        self._lock = threading.RLock()
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = None
        try:
            conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA busy_timeout = 30000")
            # Deleted faces must not linger in free pages of the file (biometric data).
            conn.execute("PRAGMA secure_delete = ON")
            self.db = sqlite_utils.Database(conn)
            if str(path) != ":memory:":
                self.db.enable_wal()
            conn.execute("PRAGMA synchronous = NORMAL")
            self._migrate()
        except BaseException as exc:
            # Refused (newer schema, not a database...): let go of the file at once, untouched.
            if conn is not None:
                conn.close()
            if isinstance(exc, sqlite3.DatabaseError):
                raise StoreError(f"{self.path} is not a usable faceapp database ({exc}); "
                                 f"restore a backup with: faceapp restore FILE") from exc
            raise

    @property
    def conn(self) -> sqlite3.Connection:
        return self.db.conn

    def close(self) -> None:
        with self._lock:
            try:
                self.conn.execute("PRAGMA optimize")
            except sqlite3.Error:
                pass
            self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- schema -------------------------------------------------------------
    def schema_version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        version = self.schema_version()
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} was written by a newer faceapp (schema {version}, this one knows "
                f"{SCHEMA_VERSION}); upgrade faceapp or use another --home")
        for i in range(version, SCHEMA_VERSION):
            with self.transaction() as conn:
                MIGRATIONS[i](conn)
                conn.execute(f"PRAGMA user_version = {i + 1}")
            log.info("database migrated to schema %d", i + 1)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All-or-nothing block: BEGIN IMMEDIATE ... COMMIT, ROLLBACK on any exception."""
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            else:
                self.conn.execute("COMMIT")

    def query(self, sql: str, params: Sequence | dict = ()) -> list[dict]:
        with self._lock:
            return list(self.db.query(sql, params))

    def audit(self, action: str, target: str | None = None, details: dict | None = None,
              conn: sqlite3.Connection | None = None) -> int:
        """Append an audit row as ``self.actor``: inside the caller's transaction when ``conn``
        (from :meth:`transaction`) is given, else in a transaction of its own."""
        if conn is not None:
            return write_audit(conn, self.actor, action, target, details)
        with self.transaction() as c:
            return write_audit(c, self.actor, action, target, details)

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
                (name, _opt(employee_id), _opt(department), utc_now()))
            pid = int(cur.lastrowid)
            self._insert_photos(conn, pid, model_id, photos)
            self.audit("person.add", f"person:{pid}", {
                "name": name, "employee_id": _opt(employee_id), "department": _opt(department),
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
                (person_id, photo_id, model_id, _blob(p.embedding), now))
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
                conn.execute("UPDATE people SET employee_id = ? WHERE id = ?", (_opt(employee_id), person_id))
            if department is not None:
                conn.execute("UPDATE people SET department = ? WHERE id = ?", (_opt(department), person_id))
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

    def gallery(self, model_id: str, active_only: bool = True, dim: int = 512) -> Gallery:
        """Snapshot of all templates of ``model_id`` for the matcher."""
        sql = ("SELECT t.id, t.person_id, t.embedding, p.name FROM templates t JOIN people p ON p.id = t.person_id "
               "WHERE t.model_id = ?" + (" AND p.active = 1" if active_only else ""))
        with self._lock:
            rows = self.conn.execute(sql, (model_id,)).fetchall()
        if not rows:
            return Gallery.empty(dim)
        emb = np.vstack([np.frombuffer(r[2], np.float32) for r in rows])
        return Gallery.build([r[1] for r in rows], emb, {r[1]: r[3] for r in rows}, [r[0] for r in rows])

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
                    "VALUES (?, ?, ?, ?, ?)", (pid[0], photo_id, model_id, _blob(emb), now))
                stored += 1
            if stored:
                self.audit("templates.recompute", f"model:{model_id}", {"model_id": model_id, "templates": stored},
                           conn)
        return stored

    def template_count(self, model_id: str | None = None) -> int:
        if model_id is None:
            return int(self.conn.execute("SELECT COUNT(*) FROM templates").fetchone()[0])
        return int(self.conn.execute("SELECT COUNT(*) FROM templates WHERE model_id = ?", (model_id,)).fetchone()[0])

    # -- settings -------------------------------------------------------------
    def load_settings(self) -> Settings:
        rows = self.query("SELECT key, value FROM settings")
        data = {}
        for r in rows:
            try:
                data[r["key"]] = json.loads(r["value"])
            except ValueError:
                log.warning("settings: ignoring unreadable value of %s", r["key"])
        return Settings.from_dict(data)

    def save_settings(self, settings: Settings) -> None:
        """Persist every setting; the keys whose value changed are audited as ``[old, new]``."""
        with self.transaction() as conn:
            stored = dict(conn.execute("SELECT key, value FROM settings").fetchall())
            new = settings.to_dict()
            for key, value in new.items():
                conn.execute("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", (key, json.dumps(value)))
            changed = _settings_changes(stored, new)
            if changed:
                only_thresholds = all(k.startswith("thresholds.") for k in changed)
                self.audit("threshold.change" if only_thresholds else "settings.change", "settings", changed, conn)


def _settings_changes(stored: dict[str, str], new: dict) -> dict[str, list]:
    """{key: [old, new]} between stored JSON texts (missing = the default) and new values;
    dict settings (thresholds) are compared per entry: ``thresholds.w600k_mbf``."""
    defaults = Settings().to_dict()
    out: dict[str, list] = {}
    for key, value in new.items():
        try:
            old = json.loads(stored[key]) if key in stored else defaults.get(key)
        except ValueError:
            old = None
        if key == "thresholds" and isinstance(value, dict):
            # A model without a stored threshold uses its measured default: show that one.
            before = Settings(thresholds=old if isinstance(old, dict) else {})
            after = Settings(thresholds=value)
            for model in sorted(set(before.thresholds) | set(after.thresholds)):
                a, b = before.threshold_for(model), after.threshold_for(model)
                if a != b:
                    out[f"{key}.{model}"] = [a, b]
        elif old != value:
            out[key] = [old, value]
    return out


def _photo_record(row: dict) -> PhotoRecord:
    return PhotoRecord(row["id"], row["person_id"], decode_blob(row["crop"]), row["quality"], row["source"],
                       row["created"])


def _blob(embedding: np.ndarray) -> bytes:
    return np.ascontiguousarray(embedding, dtype=np.float32).reshape(-1).tobytes()


def _opt(value: str | None) -> str | None:
    if value is None:
        return None
    value = " ".join(str(value).split())
    return value or None
