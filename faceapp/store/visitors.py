"""Persistence of face events, visitors and negative examples (tables of migration v4).

Every logged face keeps its embedding in ``entry_faces`` (per recognition model, like templates).
Unknown events carry a ``visitor_id``: the group :mod:`faceapp.service.visitors` put them in.
Embeddings live as long as the entry's snapshot (a trigger of the migration deletes them with it),
and a visitor without events is deleted by trigger as well, so no code path can leave a face
behind or an empty visitor.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

from faceapp.core.errors import NotFoundError, StoreError
from faceapp.store.blobs import embedding_blob
from faceapp.store.db import Store, utc_now

log = logging.getLogger(__name__)

# Ids per IN (...) query: older SQLite builds allow at most 999 parameters.
SQL_BATCH = 500
# Rows per chunk when streaming stored embeddings (about 100 MB of float32 at 512 dimensions).
CHUNK_ROWS = 50_000


@dataclass(frozen=True, eq=False)
class EntryFace:
    """The face of a logged entry: its embedding in the space of ``model_id`` and how clear it was."""

    model_id: str
    embedding: np.ndarray
    det_score: float | None = None
    face_px: float | None = None


@dataclass(frozen=True)
class Visitor:
    """An unknown person seen one or more times. Times are UTC ISO strings; ``doors`` in order of
    first appearance; ``entry_ids`` oldest first."""

    id: int
    visits: int
    first_seen: str
    last_seen: str
    doors: tuple[str, ...]
    entry_ids: tuple[int, ...]
    best_entry_id: int | None   # the clearest face among the events (thumbnails, enrollment)


to_blob = embedding_blob   # checked: a finite unit vector or EmbeddingError


def _matrix(blobs: Sequence[bytes], dim: int | None = None) -> np.ndarray:
    if not blobs:
        return np.zeros((0, dim or 0), np.float32)
    flat = np.frombuffer(b"".join(blobs), np.float32)
    return flat.reshape(len(blobs), -1)


def insert_entry_face(conn: sqlite3.Connection, entry_id: int, face: EntryFace) -> None:
    """Store an entry's face inside the caller's transaction."""
    conn.execute("INSERT OR REPLACE INTO entry_faces (entry_id, model_id, embedding, det_score, face_px) "
                 "VALUES (?, ?, ?, ?, ?)", (entry_id, face.model_id, to_blob(face.embedding), face.det_score,
                                            face.face_px))


class VisitorStore:
    """Face events, visitors and negatives in one faceapp database."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- embeddings -------------------------------------------------------------------------------
    def iter_embeddings(self, model_id: str, since: str | None = None, until: str | None = None,
                        grouped_only: bool = False, after_rowid: int = 0,
                        chunk: int = CHUNK_ROWS) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Stored embeddings of ``model_id`` as chunks of (rowids, entry ids, (n, D) matrix), in rowid
        order; ``grouped_only`` keeps events that belong to a visitor; dates are UTC ISO bounds
        (since inclusive, until exclusive). Streaming keeps memory bounded for millions of events."""
        # "+f.model_id": walk the table in rowid order instead of the model index, which would
        # make SQLite sort every matching row, blobs included, before returning the first.
        where = ["+f.model_id = ?", "f.rowid > ?"]
        params: list = [model_id, after_rowid]
        join = ""
        if since or until:
            join = " JOIN entries e ON e.id = f.entry_id"
            if since:
                where.append("e.time >= ?")
                params.append(since)
            if until:
                where.append("e.time < ?")
                params.append(until)
        if grouped_only:
            where.append("f.visitor_id IS NOT NULL")
        sql = (f"SELECT f.rowid, f.entry_id, f.embedding FROM entry_faces f{join} WHERE {' AND '.join(where)} "
               "ORDER BY f.rowid")
        last = after_rowid
        while True:
            with self.store._lock:
                rows = self.store.conn.execute(sql + " LIMIT ?", [*params[:1], last, *params[2:], chunk]).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield (np.fromiter((r[0] for r in rows), np.int64, len(rows)),
                   np.fromiter((r[1] for r in rows), np.int64, len(rows)),
                   _matrix([r[2] for r in rows]))
            if len(rows) < chunk:
                return

    def entry_embedding(self, entry_id: int, model_id: str) -> np.ndarray | None:
        rows = self.store.query("SELECT embedding FROM entry_faces WHERE entry_id = ? AND model_id = ?",
                                (entry_id, model_id))
        return np.frombuffer(rows[0]["embedding"], np.float32).copy() if rows else None

    def grouped_signature(self, model_id: str) -> tuple[int, int]:
        """(count, highest rowid) of the events of ``model_id`` in a visitor: changes when any leaves."""
        row = self.store.query("SELECT COUNT(*) AS n, IFNULL(MAX(rowid), 0) AS m FROM entry_faces "
                               "WHERE model_id = ? AND visitor_id IS NOT NULL", (model_id,))[0]
        return int(row["n"]), int(row["m"])

    def ungrouped_unknown(self, model_id: str) -> list[int]:
        """Unknown entries with a face of ``model_id`` but no visitor (a crash between logging and
        grouping, or events from before visitors existed)."""
        rows = self.store.query(
            "SELECT f.entry_id FROM entry_faces f JOIN entries e ON e.id = f.entry_id WHERE f.model_id = ? "
            "AND f.visitor_id IS NULL AND e.person_id IS NULL AND e.decision = 'unknown' ORDER BY f.rowid",
            (model_id,))
        return [int(r["entry_id"]) for r in rows]

    # -- grouping -----------------------------------------------------------------------------------
    def visitors_of(self, entry_ids: Sequence[int], model_id: str) -> dict[int, int]:
        """entry id -> visitor id (events without a visitor are left out)."""
        out: dict[int, int] = {}
        ids = [int(i) for i in entry_ids]
        for start in range(0, len(ids), SQL_BATCH):
            batch = ids[start:start + SQL_BATCH]
            rows = self.store.query(
                f"SELECT entry_id, visitor_id FROM entry_faces WHERE entry_id IN ({', '.join('?' * len(batch))}) "
                f"AND +model_id = ? AND +visitor_id IS NOT NULL", [*batch, model_id])
            out.update({int(r["entry_id"]): int(r["visitor_id"]) for r in rows})
        return out

    def join(self, entry_id: int, model_id: str, neighbour_entries: Sequence[int]) -> int:
        """Put an event into the visitor of its neighbours (merging them when they are several:
        the lowest id stays) or into a new visitor when it has none; returns the visitor id.

        The neighbours' visitors are read inside the transaction, so a merge or a forget done
        meanwhile by another process is respected."""
        ids = [int(i) for i in neighbour_entries if int(i) != entry_id]
        with self.store.transaction() as conn:
            visitors: set[int] = set()
            for start in range(0, len(ids), SQL_BATCH):
                batch = ids[start:start + SQL_BATCH]
                # Looked up by primary key ("+" keeps SQLite off the indexes that would scan a whole model).
                visitors.update(int(r[0]) for r in conn.execute(
                    f"SELECT DISTINCT visitor_id FROM entry_faces WHERE entry_id IN ({', '.join('?' * len(batch))}) "
                    f"AND +model_id = ? AND +visitor_id IS NOT NULL", [*batch, model_id]))
            if not conn.execute("SELECT 1 FROM entry_faces WHERE entry_id = ? AND model_id = ?",
                                (entry_id, model_id)).fetchone():
                raise NotFoundError(f"entry {entry_id} has no stored face")
            if visitors:
                target = min(visitors)
                others = sorted(visitors - {target})
                for v in others:
                    conn.execute("UPDATE entry_faces SET visitor_id = ? WHERE visitor_id = ?", (target, v))
            else:
                target = int(conn.execute("INSERT INTO visitors (model_id, created) VALUES (?, ?)",
                                          (model_id, utc_now())).lastrowid)
            conn.execute("UPDATE entry_faces SET visitor_id = ? WHERE entry_id = ? AND model_id = ?",
                         (target, entry_id, model_id))
        return target

    def set_groups(self, model_id: str, groups: Sequence[Sequence[int]]) -> list[int]:
        """Replace the visitors of ``model_id`` by ``groups`` (lists of entry ids), in one transaction;
        returns the new visitor ids (a full regroup)."""
        now = utc_now()
        out = []
        with self.store.transaction() as conn:
            conn.execute("UPDATE entry_faces SET visitor_id = NULL WHERE model_id = ? AND visitor_id IS NOT NULL",
                         (model_id,))
            for members in groups:
                vid = int(conn.execute("INSERT INTO visitors (model_id, created) VALUES (?, ?)",
                                       (model_id, now)).lastrowid)
                conn.executemany("UPDATE entry_faces SET visitor_id = ? WHERE entry_id = ? AND model_id = ?",
                                 [(vid, int(e), model_id) for e in members])
                out.append(vid)
        return out

    # -- visitors -------------------------------------------------------------------------------------
    def visitors(self, model_id: str, visitor_id: int | None = None) -> list[Visitor]:
        """Visitors of ``model_id`` (or just one), the most recently seen first."""
        sql = ("SELECT f.visitor_id AS v, e.id, e.time, e.door, f.det_score, f.face_px, "
               "e.snapshot IS NOT NULL AS snap FROM entry_faces f JOIN entries e ON e.id = f.entry_id "
               "WHERE f.model_id = ? AND f.visitor_id IS NOT NULL")
        params: list = [model_id]
        if visitor_id is not None:
            sql += " AND f.visitor_id = ?"
            params.append(int(visitor_id))
        sql += " ORDER BY e.time, e.id"
        groups: dict[int, list[dict]] = {}
        for r in self.store.query(sql, params):
            groups.setdefault(int(r["v"]), []).append(r)
        out = []
        for vid, rows in groups.items():
            doors = tuple(dict.fromkeys(r["door"] for r in rows))
            with_snap = [r for r in rows if r["snap"]]
            best = max(with_snap, key=_clarity)["id"] if with_snap else None
            out.append(Visitor(vid, len(rows), rows[0]["time"], rows[-1]["time"], doors,
                               tuple(int(r["id"]) for r in rows), best))
        out.sort(key=lambda v: (v.last_seen, v.id), reverse=True)
        return out

    def visitor(self, visitor_id: int, model_id: str) -> Visitor:
        found = self.visitors(model_id, visitor_id)
        if not found:
            raise NotFoundError(f"no visitor with id {visitor_id} (see: faceapp visitors list)")
        return found[0]

    def clearest_entries(self, visitor_id: int, model_id: str, limit: int = 10) -> list[int]:
        """The visitor's entries that still have a snapshot, clearest face first."""
        rows = self.store.query(
            "SELECT e.id, f.det_score, f.face_px FROM entry_faces f JOIN entries e ON e.id = f.entry_id "
            "WHERE f.model_id = ? AND f.visitor_id = ? AND e.snapshot IS NOT NULL", (model_id, visitor_id))
        rows.sort(key=_clarity, reverse=True)
        return [int(r["id"]) for r in rows[:limit]]

    def merge(self, visitor_ids: Sequence[int], model_id: str) -> int:
        """Merge visitors into the one with the lowest id (audited); returns it."""
        ids = sorted({int(v) for v in visitor_ids})
        if len(ids) < 2:
            raise StoreError("give two different visitors to merge")
        with self.store.transaction() as conn:
            for v in ids:
                if not conn.execute("SELECT 1 FROM entry_faces WHERE visitor_id = ? AND model_id = ?",
                                    (v, model_id)).fetchone():
                    raise NotFoundError(f"no visitor with id {v} (see: faceapp visitors list)")
            target = ids[0]
            moved = 0
            for v in ids[1:]:
                moved += conn.execute("UPDATE entry_faces SET visitor_id = ? WHERE visitor_id = ?",
                                      (target, v)).rowcount
            self.store.audit("visitor.merge", f"visitor:{target}", {"merged": ids[1:], "events_moved": moved},
                             conn)
        return target

    def forget(self, visitor_id: int, model_id: str) -> int:
        """Delete the snapshots and embeddings of a visitor's events (the entries stay, as plain
        unknown rows) and the visitor itself; audited. Returns the number of events."""
        with self.store.transaction() as conn:
            ids = [int(r[0]) for r in conn.execute(
                "SELECT entry_id FROM entry_faces WHERE visitor_id = ? AND model_id = ?", (visitor_id, model_id))]
            if not ids:
                raise NotFoundError(f"no visitor with id {visitor_id} (see: faceapp visitors list)")
            for start in range(0, len(ids), SQL_BATCH):
                batch = ids[start:start + SQL_BATCH]
                marks = ", ".join("?" * len(batch))
                conn.execute(f"UPDATE entries SET snapshot = NULL WHERE id IN ({marks})", batch)
                # Faces of other models of the same entries go too (the trigger fires only on a
                # snapshot that was still there).
                conn.execute(f"DELETE FROM entry_faces WHERE entry_id IN ({marks})", batch)
            self.store.audit("visitor.forget", f"visitor:{visitor_id}", {"entries": len(ids)}, conn)
        self.store.scrub_wal()
        return len(ids)

    def relabel(self, entry_ids: Sequence[int], person_id: int | None, person_name: str | None,
                conn: sqlite3.Connection, decision: str | None = None, reason: str | None = None) -> int:
        """Give entries another person (None: unknown) inside the caller's transaction; their faces
        leave their visitor when they get a person."""
        n = 0
        for start in range(0, len(entry_ids), SQL_BATCH):
            batch = [int(i) for i in entry_ids[start:start + SQL_BATCH]]
            marks = ", ".join("?" * len(batch))
            sets, params = ["person_id = ?", "person_name = ?"], [person_id, person_name]
            if decision is not None:
                sets.append("decision = ?")
                params.append(decision)
            if reason is not None:
                sets.append("reason = ?")
                params.append(reason)
            n += conn.execute(f"UPDATE entries SET {', '.join(sets)} WHERE id IN ({marks})",
                              [*params, *batch]).rowcount
            if person_id is not None:
                conn.execute(f"UPDATE entry_faces SET visitor_id = NULL WHERE entry_id IN ({marks})", batch)
        return n

    # -- negatives ---------------------------------------------------------------------------------------
    def add_negative(self, person_id: int, model_id: str, embedding: np.ndarray, entry_id: int | None,
                     conn: sqlite3.Connection) -> int:
        """A face that is not ``person_id`` (inside the caller's transaction)."""
        return int(conn.execute(
            "INSERT INTO negatives (person_id, model_id, embedding, entry_id, created) VALUES (?, ?, ?, ?, ?)",
            (person_id, model_id, to_blob(embedding), entry_id, utc_now())).lastrowid)

    def negatives(self, model_id: str) -> tuple[np.ndarray, np.ndarray]:
        """(person ids, (K, D) embeddings) of every negative example of ``model_id``."""
        with self.store._lock:
            rows = self.store.conn.execute("SELECT person_id, embedding FROM negatives WHERE model_id = ?",
                                           (model_id,)).fetchall()
        return np.array([r[0] for r in rows], np.int64), _matrix([r[1] for r in rows])


def _clarity(row: dict) -> float:
    """How usable a logged face is: a larger, more certain detection is better."""
    return float(row["face_px"] or 0.0) * float(row["det_score"] or 0.0)
