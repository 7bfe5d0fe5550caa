"""Persistence of the entry log, doors and access groups (tables of migration v2).

:class:`AttendanceStore` wraps an open :class:`faceapp.store.db.Store`; every change runs in
one transaction of that store, so the GUI thread and a pipeline worker can share it.
Times are stored as UTC ISO 8601 with milliseconds ("2024-05-02T06:59:12.345+00:00"), the same
format as :func:`faceapp.store.db.utc_now`, so text comparison orders them.
"""

from __future__ import annotations

import unicodedata

import logging
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone

import cv2
import numpy as np

from faceapp.core.access import (
    AccessRuleError,
    AccessRules,
    DoorPolicy,
    TimeWindow,
    format_hours,
    parse_hours,
    parse_liveness,
)
from faceapp.core.errors import DuplicateError, NotFoundError, StoreError
from faceapp.core.types import BBox
from faceapp.store.db import Store, clean_name, encode_jpeg, utc_now
from faceapp.store.visitors import EntryFace, insert_entry_face

log = logging.getLogger(__name__)

DECISIONS = ("granted", "denied", "unknown")
# Snapshots keep the face at up to this many pixels (with context around it).
SNAPSHOT_FACE_PX = 160
SNAPSHOT_MIN_SIDE = 160


def utc_iso(when: datetime) -> str:
    """An aware datetime in the stored format (UTC, milliseconds). Naive means UTC."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc).isoformat(timespec="milliseconds")


def make_snapshot(image: np.ndarray, bbox: BBox, face_px: int = SNAPSHOT_FACE_PX, margin: float = 0.5,
                  min_side: int = SNAPSHOT_MIN_SIDE, quality: int = 85) -> bytes | None:
    """A JPEG of the face with context around it: ``margin`` of the face size on each side, and at
    least ``min_side`` pixels of the frame around a small face (clothes, posture: what lets a guard
    recognise someone far from the camera). Scaled down so that the face is at most ``face_px``
    wide (about 320 px in all, 10-20 kB); never scaled up, which would add no detail."""
    h, w = image.shape[:2]
    cx, cy = bbox.center
    half_w = max(bbox.width * (0.5 + margin), min_side / 2.0)
    half_h = max(bbox.height * (0.5 + margin), min_side / 2.0)
    x1, y1 = max(0, int(cx - half_w)), max(0, int(cy - half_h))
    x2, y2 = min(w, int(round(cx + half_w))), min(h, int(round(cy + half_h)))
    if x2 - x1 < 2 or y2 - y1 < 2:
        return None
    crop = image[y1:y2, x1:x2]
    scale = face_px / max(1.0, float(max(bbox.width, bbox.height)))
    if scale < 1.0:
        crop = cv2.resize(crop, (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale))),
                          interpolation=cv2.INTER_AREA)
    return encode_jpeg(np.ascontiguousarray(crop), quality)


@dataclass(frozen=True)
class NewEntry:
    """An entry to log. ``time`` is an aware datetime (stored as UTC)."""

    time: datetime
    door: str
    person_id: int | None
    person_name: str | None
    decision: str
    distance: float | None = None
    reason: str | None = None
    track_id: int | None = None
    snapshot: bytes | None = None
    face: EntryFace | None = None   # the embedding, kept as long as the snapshot


@dataclass(frozen=True)
class EntryRecord:
    """A logged entry as listed (the snapshot itself is fetched separately)."""

    id: int
    time: str
    door: str
    person_id: int | None
    person_name: str | None
    decision: str
    distance: float | None
    reason: str | None
    track_id: int | None
    has_snapshot: bool

    @property
    def when(self) -> datetime:
        return datetime.fromisoformat(self.time)


@dataclass(frozen=True)
class EntryQuery:
    """Filters of the entry log. ``since`` is inclusive, ``until`` exclusive (UTC ISO strings);
    ``person`` matches the logged name (case-insensitive) or ``person_id``."""

    since: str | None = None
    until: str | None = None
    door: str | None = None
    person: str | None = None
    person_id: int | None = None
    decision: str | None = None
    after_id: int | None = None
    limit: int | None = None
    newest_first: bool = False


@dataclass(frozen=True)
class Door:
    id: int
    name: str
    hours: str | None
    groups: tuple[tuple[str, str | None], ...]   # (group name, that group's hours or None)
    created: str
    liveness: str = "off"   # "off" | "passive" | "challenge"

    @property
    def open_to_all(self) -> bool:
        """A door with no groups admits every enrolled person (within its hours)."""
        return not self.groups


@dataclass(frozen=True)
class Group:
    id: int
    name: str
    members: tuple[str, ...]
    doors: tuple[str, ...]
    created: str


class AttendanceStore:
    """Entries, doors and groups in one faceapp database."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- entries ---------------------------------------------------------------------------
    def add_entry(self, entry: NewEntry, conn: sqlite3.Connection | None = None) -> int:
        """Log one entry; returns its id. ``conn``: inside the caller's transaction."""
        if entry.decision not in DECISIONS:
            raise StoreError(f"unknown decision {entry.decision!r}")
        if conn is None:
            with self.store.transaction() as c:
                return self.add_entry(entry, c)
        distance = entry.distance if entry.distance is not None and np.isfinite(entry.distance) else None
        cur = conn.execute(
            "INSERT INTO entries (time, door, person_id, person_name, decision, distance, snapshot, track_id, "
            "reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (utc_iso(entry.time), entry.door, entry.person_id, entry.person_name, entry.decision,
             None if distance is None else float(distance), entry.snapshot, entry.track_id, entry.reason))
        entry_id = int(cur.lastrowid)
        if entry.face is not None:
            insert_entry_face(conn, entry_id, entry.face)
        return entry_id

    def entries(self, query: EntryQuery = EntryQuery()) -> list[EntryRecord]:
        """Entries matching ``query``, oldest first unless ``newest_first``."""
        where, params = [], []
        if query.since:
            where.append("time >= ?")
            params.append(query.since)
        if query.until:
            where.append("time < ?")
            params.append(query.until)
        if query.door:
            where.append("door = ? COLLATE NOCASE")
            params.append(self.canonical_door(query.door))
        if query.person is not None or query.person_id is not None:
            where.append("(person_name = ? COLLATE NOCASE OR person_id = ?)")
            params += [" ".join((query.person or "").split()) or None, query.person_id]
        if query.decision:
            where.append("decision = ?")
            params.append(query.decision)
        if query.after_id is not None:
            where.append("id > ?")
            params.append(query.after_id)
        sql = _ENTRY_SELECT
        if where:
            sql += " WHERE " + " AND ".join(where)
        order = "DESC" if query.newest_first else "ASC"
        sql += f" ORDER BY time {order}, id {order}"
        if query.limit is not None:
            sql += " LIMIT ?"
            params.append(int(query.limit))
        return [_entry_record(r) for r in self.store.query(sql, params)]

    def entries_by_id(self, entry_ids: list[int]) -> dict[int, EntryRecord]:
        """entry id -> record, for the given ids that exist."""
        out: dict[int, EntryRecord] = {}
        for start in range(0, len(entry_ids), 500):
            batch = [int(i) for i in entry_ids[start:start + 500]]
            rows = self.store.query(
                f"{_ENTRY_SELECT} WHERE id IN ({', '.join('?' * len(batch))})", batch)
            out.update({r["id"]: _entry_record(r) for r in rows})
        return out

    def snapshot(self, entry_id: int) -> bytes | None:
        """The JPEG snapshot of an entry (None if it has none or it was purged)."""
        rows = self.store.query("SELECT snapshot FROM entries WHERE id = ?", (entry_id,))
        return rows[0]["snapshot"] if rows else None

    def max_entry_id(self) -> int:
        """The newest entry id (0 when empty): a cheap "did anything change?" probe."""
        return int(self.store.query("SELECT IFNULL(MAX(id), 0) AS m FROM entries")[0]["m"])

    def purge_snapshots(self, before: str) -> int:
        """Drop snapshots of entries logged before ``before`` (UTC ISO); the entries stay."""
        with self.store.transaction() as conn:
            cur = conn.execute("UPDATE entries SET snapshot = NULL WHERE snapshot IS NOT NULL AND time < ?",
                               (before,))
            return int(cur.rowcount)

    def recent_people(self, door: str, since: str) -> dict[int, str]:
        """person id -> time of their newest entry at ``door`` since ``since`` (cooldown after a restart)."""
        return {pid: t for pid, t, _ in self.recent_decisions(door, since)}

    def recent_decisions(self, door: str, since: str) -> list[tuple[int, str, str]]:
        """(person id, time, decision) of every entry of a person at ``door`` since ``since``,
        oldest first (a restarted station resumes each person's cooldown and last decision)."""
        rows = self.store.query(
            "SELECT person_id, time, decision FROM entries WHERE person_id IS NOT NULL AND time >= ? "
            "AND door = ? COLLATE NOCASE ORDER BY time, id", (since, self.canonical_door(door)))
        return [(int(r["person_id"]), r["time"], r["decision"]) for r in rows]

    def recent_unknown_faces(self, door: str, since: str, model_id: str) -> list[tuple[str, bytes]]:
        """(time, embedding bytes) of the unknown faces logged at ``door`` since ``since`` whose
        face was kept (so a restarted station does not log the same stranger again)."""
        rows = self.store.query(
            "SELECT e.time AS t, f.embedding AS emb FROM entries e JOIN entry_faces f ON f.entry_id = e.id "
            "WHERE e.decision = 'unknown' AND e.time >= ? AND e.door = ? COLLATE NOCASE AND f.model_id = ? "
            "ORDER BY e.time", (since, self.canonical_door(door), model_id))
        return [(r["t"], r["emb"]) for r in rows]

    def logged_door_names(self) -> list[str]:
        """Every door name that appears in the log or the doors table."""
        rows = self.store.query("SELECT name FROM doors UNION SELECT DISTINCT door FROM entries")
        return sorted({r["name"] for r in rows}, key=str.casefold)

    def logged_person_names(self) -> list[str]:
        """Every person name that appears in the log (deleted people included)."""
        rows = self.store.query("SELECT DISTINCT person_name FROM entries WHERE person_name IS NOT NULL")
        return [r["person_name"] for r in rows]

    # -- doors --------------------------------------------------------------------------------
    def _rows(self, select: str, name: str | None) -> list[dict]:
        """All rows of a doors/groups SELECT, or the one whose name is ``name``, by name."""
        rows = self.store.query(select + " ORDER BY name COLLATE NOCASE")
        if name is None:
            return rows
        key = name_key(name)
        return [r for r in rows if name_key(r["name"]) == key]

    def _door_row(self, conn, name: str):
        row = _named_row(conn, "doors", name)
        if row is None:
            raise NotFoundError(f"no door called '{name}' (see: faceapp door list)")
        return row

    def _group_row(self, conn, name: str):
        row = _named_row(conn, "access_groups", name)
        if row is None:
            raise NotFoundError(f"no access group called '{name}' (create it with: faceapp group add '{name}')")
        return row

    def canonical_door(self, name: str) -> str:
        """The configured spelling of a door name ("STRASSE" -> "Straße"), or ``name`` tidied."""
        key = name_key(name)
        for r in self.store.query("SELECT name FROM doors"):
            if name_key(r["name"]) == key:
                return r["name"]
        return " ".join(name.split())

    def add_door(self, name: str, hours: str | None = None, groups: tuple[str, ...] | list[str] = ()) -> Door:
        """Create a door, optionally with opening hours and the groups it admits (which must exist)."""
        name = clean_name(name, "a door name")
        text = _hours_text(hours)
        with self.store.transaction() as conn:
            clash = _named_row(conn, "doors", name)
            if clash:
                raise DuplicateError(f"a door called '{clash[1]}' exists already")
            door_id = int(conn.execute("INSERT INTO doors (name, hours, created) VALUES (?, ?, ?)",
                                       (name, text, utc_now())).lastrowid)
            admitted = []
            for g in groups:
                gid, gname = self._group_row(conn, g)
                admitted.append(gname)
                conn.execute("INSERT OR IGNORE INTO door_groups (door_id, group_id) VALUES (?, ?)", (door_id, gid))
            self.store.audit("door.add", f"door:{name}", {"name": name, "hours": text, "groups": admitted}, conn)
        return self.door(name)

    def door(self, name: str) -> Door:
        for d in self.doors(name):
            return d
        raise NotFoundError(f"no door called '{name}' (see: faceapp door list)")

    def doors(self, name: str | None = None) -> list[Door]:
        """All doors (or the one called ``name``), with their groups."""
        doors = self._rows("SELECT id, name, hours, created, liveness FROM doors", name)
        links = self.store.query(
            "SELECT dg.door_id, g.name, dg.hours FROM door_groups dg JOIN access_groups g ON g.id = dg.group_id "
            "ORDER BY g.name COLLATE NOCASE")
        by_door: dict[int, list[tuple[str, str | None]]] = {}
        for r in links:
            by_door.setdefault(r["door_id"], []).append((r["name"], r["hours"]))
        return [Door(r["id"], r["name"], r["hours"], tuple(by_door.get(r["id"], ())), r["created"], r["liveness"])
                for r in doors]

    def remove_door(self, name: str) -> None:
        """Delete a door and its group links (its log entries stay, with the door's name)."""
        with self.store.transaction() as conn:
            did, dname = self._door_row(conn, name)
            conn.execute("DELETE FROM doors WHERE id = ?", (did,))
            self.store.audit("door.remove", f"door:{dname}", {"name": dname}, conn)

    def rename_door(self, name: str, new_name: str) -> Door:
        """Give a door a new name (its groups and hours stay; past entries keep the old name)."""
        new_name = clean_name(new_name, "a door name")
        with self.store.transaction() as conn:
            did, dname = self._door_row(conn, name)
            clash = _named_row(conn, "doors", new_name)
            if clash and clash[0] != did:
                raise DuplicateError(f"a door called '{clash[1]}' exists already")
            conn.execute("UPDATE doors SET name = ? WHERE id = ?", (new_name, did))
            self.store.audit("door.rename", f"door:{new_name}", {"name": [dname, new_name]}, conn)
        return self.door(new_name)

    def set_door_hours(self, name: str, hours: str | None) -> Door:
        """Set (or with None/"always", clear) the hours that apply to everyone at a door."""
        text = _hours_text(hours)
        with self.store.transaction() as conn:
            did, dname = self._door_row(conn, name)
            old = conn.execute("SELECT hours FROM doors WHERE id = ?", (did,)).fetchone()[0]
            conn.execute("UPDATE doors SET hours = ? WHERE id = ?", (text, did))
            self.store.audit("door.hours", f"door:{dname}", {"hours": [old, text]}, conn)
        return self.door(name)

    def set_door_liveness(self, name: str, mode: str) -> Door:
        """Set a door's liveness policy: "off", "passive" or "challenge" (audited)."""
        mode = parse_liveness(mode)
        with self.store.transaction() as conn:
            did, dname = self._door_row(conn, name)
            old = conn.execute("SELECT liveness FROM doors WHERE id = ?", (did,)).fetchone()[0]
            conn.execute("UPDATE doors SET liveness = ? WHERE id = ?", (mode, did))
            self.store.audit("door.liveness", f"door:{dname}", {"liveness": [old, mode]}, conn)
        return self.door(name)

    def allow_group(self, door: str, group: str, hours: str | None = None) -> Door:
        """Let a group through a door, optionally only within ``hours`` (replaces earlier hours)."""
        text = _hours_text(hours)
        with self.store.transaction() as conn:
            (did, dname), (gid, gname) = self._door_row(conn, door), self._group_row(conn, group)
            conn.execute("INSERT OR REPLACE INTO door_groups (door_id, group_id, hours) VALUES (?, ?, ?)",
                         (did, gid, text))
            self.store.audit("door.allow", f"door:{dname}", {"group": gname, "hours": text}, conn)
        return self.door(door)

    def disallow_group(self, door: str, group: str, open_door: bool = False) -> Door:
        """Stop admitting a group. Removing a door's last group would open it to everyone, so that
        needs ``open_door=True``."""
        with self.store.transaction() as conn:
            drow, grow = self._door_row(conn, door), self._group_row(conn, group)
            n = conn.execute("SELECT COUNT(*) FROM door_groups WHERE door_id = ?", (drow[0],)).fetchone()[0]
            linked = conn.execute("SELECT 1 FROM door_groups WHERE door_id = ? AND group_id = ?",
                                  (drow[0], grow[0])).fetchone()
            if not linked:
                raise NotFoundError(f"door '{drow[1]}' does not admit group '{grow[1]}'")
            if n == 1 and not open_door:
                raise StoreError(f"'{grow[1]}' is the last group of door '{drow[1]}': without groups the door "
                                 f"admits every enrolled person; confirm with --open, or remove the door")
            conn.execute("DELETE FROM door_groups WHERE door_id = ? AND group_id = ?", (drow[0], grow[0]))
            self.store.audit("door.disallow", f"door:{drow[1]}", {"group": grow[1], "open_door": n == 1}, conn)
        return self.door(door)

    # -- groups ---------------------------------------------------------------------------------
    def add_group(self, name: str) -> Group:
        name = clean_name(name, "a group name")
        with self.store.transaction() as conn:
            clash = _named_row(conn, "access_groups", name)
            if clash:
                raise DuplicateError(f"an access group called '{clash[1]}' exists already")
            conn.execute("INSERT INTO access_groups (name, created) VALUES (?, ?)", (name, utc_now()))
            self.store.audit("group.add", f"group:{name}", {"name": name}, conn)
        return self.group(name)

    def group(self, name: str) -> Group:
        for g in self.groups(name):
            return g
        raise NotFoundError(f"no access group called '{name}' (see: faceapp group list)")

    def groups(self, name: str | None = None) -> list[Group]:
        """All groups (or the one called ``name``) with their members and doors."""
        rows = self._rows("SELECT id, name, created FROM access_groups", name)
        members: dict[int, list[str]] = {}
        for r in self.store.query("SELECT pg.group_id, p.name FROM person_groups pg JOIN people p "
                                  "ON p.id = pg.person_id ORDER BY p.name COLLATE NOCASE"):
            members.setdefault(r["group_id"], []).append(r["name"])
        doors: dict[int, list[str]] = {}
        for r in self.store.query("SELECT dg.group_id, d.name FROM door_groups dg JOIN doors d ON d.id = dg.door_id "
                                  "ORDER BY d.name COLLATE NOCASE"):
            doors.setdefault(r["group_id"], []).append(r["name"])
        return [Group(r["id"], r["name"], tuple(members.get(r["id"], ())), tuple(doors.get(r["id"], ())),
                      r["created"]) for r in rows]

    def remove_group(self, name: str) -> None:
        """Delete a group. Refused while a door admits it: that door might end up open to everyone."""
        with self.store.transaction() as conn:
            gid, gname = self._group_row(conn, name)
            used = [r[0] for r in conn.execute(
                "SELECT d.name FROM door_groups dg JOIN doors d ON d.id = dg.door_id WHERE dg.group_id = ? "
                "ORDER BY d.name", (gid,))]
            if used:
                raise StoreError(f"group '{gname}' is admitted at {', '.join(used)}; "
                                 f"disallow it there first (faceapp door disallow DOOR '{gname}')")
            conn.execute("DELETE FROM access_groups WHERE id = ?", (gid,))
            self.store.audit("group.remove", f"group:{gname}", {"name": gname}, conn)

    def assign(self, person_id: int, group: str) -> None:
        """Put a person into a group (no-op if already a member)."""
        with self.store.transaction() as conn:
            self.store.require_person(conn, person_id)
            gid, gname = self._group_row(conn, group)
            cur = conn.execute("INSERT OR IGNORE INTO person_groups (person_id, group_id) VALUES (?, ?)",
                               (person_id, gid))
            if cur.rowcount:
                self.store.audit("group.assign", f"person:{person_id}", {"group": gname}, conn)

    def unassign(self, person_id: int, group: str) -> None:
        with self.store.transaction() as conn:
            gid, gname = self._group_row(conn, group)
            cur = conn.execute("DELETE FROM person_groups WHERE person_id = ? AND group_id = ?", (person_id, gid))
            if cur.rowcount == 0:
                raise NotFoundError(f"person {person_id} is not in group '{gname}'")
            self.store.audit("group.unassign", f"person:{person_id}", {"group": gname}, conn)

    def person_groups(self, person_id: int) -> list[str]:
        rows = self.store.query("SELECT g.name FROM person_groups pg JOIN access_groups g ON g.id = pg.group_id "
                                "WHERE pg.person_id = ? ORDER BY g.name COLLATE NOCASE", (person_id,))
        return [r["name"] for r in rows]

    # -- rules -----------------------------------------------------------------------------------
    def access_rules(self) -> AccessRules:
        """Every door's policy and every person's groups, for :mod:`faceapp.core.access`."""
        doors: dict[str, DoorPolicy] = {}
        door_rows = self.store.query("SELECT id, name, hours, liveness FROM doors")
        links: dict[int, dict[int, tuple]] = {}
        for r in self.store.query("SELECT door_id, group_id, hours FROM door_groups"):
            links.setdefault(r["door_id"], {})[r["group_id"]] = _stored_hours(r["hours"])
        for r in door_rows:
            doors[r["name"].casefold()] = DoorPolicy(r["name"], _stored_hours(r["hours"]), links.get(r["id"], {}),
                                                     _stored_liveness(r["liveness"]))
        person_groups: dict[int, set[int]] = {}
        for r in self.store.query("SELECT person_id, group_id FROM person_groups"):
            person_groups.setdefault(r["person_id"], set()).add(r["group_id"])
        names = {r["id"]: r["name"] for r in self.store.query("SELECT id, name FROM access_groups")}
        return AccessRules(doors, {p: frozenset(g) for p, g in person_groups.items()}, names)


_ENTRY_SELECT = ("SELECT id, time, door, person_id, person_name, decision, distance, reason, track_id, "
                 "snapshot IS NOT NULL AS has_snapshot FROM entries")


def _entry_record(r: dict) -> EntryRecord:
    return EntryRecord(r["id"], r["time"], r["door"], r["person_id"], r["person_name"], r["decision"],
                       r["distance"], r["reason"], r["track_id"], bool(r["has_snapshot"]))


def _hours_text(hours: str | None) -> str | None:
    """Validated, canonical hours text (None = no restriction)."""
    windows = parse_hours(hours)
    return format_hours(windows) if windows else None


def _stored_liveness(text: str | None) -> str:
    try:
        return parse_liveness(text or "")
    except AccessRuleError:
        # Checked on the way in (and by the table); a hand-edited value must not switch the check off.
        log.warning("unreadable door liveness %r: treating it as 'challenge'", text)
        return "challenge"


def _stored_hours(text: str | None) -> tuple[TimeWindow, ...]:
    try:
        return parse_hours(text)
    except AccessRuleError as exc:
        # Hours are validated on the way in; a hand-edited database must not open a door.
        log.warning("unreadable door hours %r (%s): treating them as never open", text, exc)
        return (TimeWindow(frozenset()),)


def name_key(name: str) -> str:
    """How door and group names are compared: whitespace tidied, Unicode case folded ("Straße" and
    "STRASSE" are one name; SQLite's NOCASE folds ASCII letters only)."""
    return " ".join(unicodedata.normalize("NFC", str(name)).split()).casefold()


def _named_row(conn, table: str, name: str):
    """(id, name) of the row of ``table`` (doors or access_groups) called ``name``, or None."""
    key = name_key(name)
    for row in conn.execute(f"SELECT id, name FROM {table}"):
        if name_key(row[1]) == key:
            return row
    return None
