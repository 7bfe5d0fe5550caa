"""Schema migrations. ``PRAGMA user_version`` holds the number of migrations applied.

Append new steps to MIGRATIONS; never edit a released one. Each step runs inside the
same transaction as the version bump, so a crash leaves the old or the new schema.
"""

from __future__ import annotations

import sqlite3
from typing import Callable


def _v1(conn: sqlite3.Connection) -> None:
    for sql in (
        """CREATE TABLE people (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL COLLATE NOCASE UNIQUE,
            employee_id TEXT,
            department TEXT,
            active INTEGER NOT NULL DEFAULT 1,
            created TEXT NOT NULL
        )""",
        # One row per accepted photo: the aligned crop lets templates be recomputed for a new model.
        """CREATE TABLE photos (
            id INTEGER PRIMARY KEY,
            person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
            crop BLOB NOT NULL,
            quality REAL,
            source TEXT,
            created TEXT NOT NULL
        )""",
        "CREATE INDEX photos_person ON photos(person_id)",
        # The flat template table the matcher reads: embedding_id | person_id | embedding.
        """CREATE TABLE templates (
            id INTEGER PRIMARY KEY,
            person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
            photo_id INTEGER REFERENCES photos(id) ON DELETE CASCADE,
            model_id TEXT NOT NULL,
            embedding BLOB NOT NULL,
            created TEXT NOT NULL
        )""",
        "CREATE INDEX templates_model ON templates(model_id, person_id)",
        "CREATE UNIQUE INDEX templates_photo_model ON templates(photo_id, model_id)",
        """CREATE TABLE entries (
            id INTEGER PRIMARY KEY,
            time TEXT NOT NULL,
            door TEXT NOT NULL,
            person_id INTEGER REFERENCES people(id) ON DELETE SET NULL,
            person_name TEXT,
            decision TEXT NOT NULL,
            distance REAL,
            snapshot BLOB
        )""",
        "CREATE INDEX entries_time ON entries(time)",
        "CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ):
        conn.execute(sql)


def _v2_attendance(conn: sqlite3.Connection) -> None:
    """Doors, access groups and richer entries (attendance issue).

    A door admits the groups linked to it, each optionally within weekly hours (text such as
    "Mon-Fri 07:00-19:00", parsed by core.access); ``doors.hours`` applies to everyone. Entries
    keep the door and person *name* as text so history survives renames and deletions."""
    for sql in (
        """CREATE TABLE doors (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL COLLATE NOCASE UNIQUE,
            hours TEXT,
            created TEXT NOT NULL
        )""",
        """CREATE TABLE access_groups (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL COLLATE NOCASE UNIQUE,
            created TEXT NOT NULL
        )""",
        """CREATE TABLE person_groups (
            person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
            group_id INTEGER NOT NULL REFERENCES access_groups(id) ON DELETE CASCADE,
            PRIMARY KEY (person_id, group_id)
        )""",
        "CREATE INDEX person_groups_group ON person_groups(group_id)",
        """CREATE TABLE door_groups (
            door_id INTEGER NOT NULL REFERENCES doors(id) ON DELETE CASCADE,
            group_id INTEGER NOT NULL REFERENCES access_groups(id) ON DELETE CASCADE,
            hours TEXT,
            PRIMARY KEY (door_id, group_id)
        )""",
        "CREATE INDEX door_groups_group ON door_groups(group_id)",
        # Which track of the station's pipeline made the entry, and why access was denied.
        "ALTER TABLE entries ADD COLUMN track_id INTEGER",
        "ALTER TABLE entries ADD COLUMN reason TEXT",
        "CREATE INDEX entries_person_time ON entries(person_id, time)",
        "CREATE INDEX entries_door_time ON entries(door COLLATE NOCASE, time)",
        # Snapshot purges look for old entries that still have one.
        "CREATE INDEX entries_snapshot_time ON entries(time) WHERE snapshot IS NOT NULL",
    ):
        conn.execute(sql)


def _v3_security(conn: sqlite3.Connection) -> None:
    """Audit log and administrator credentials (reliability issue).

    ``audit`` is append-only: triggers refuse every UPDATE and DELETE, so no code path of the
    app (nor a retention purge) can rewrite history. Only a restore changes it, by replacing the
    whole database (the replaced one is kept as a backup file). ``credentials`` holds one row
    per role ("admin"): a salted scrypt hash with its parameters, never the password, and the
    failed-attempt counter that slows down guessing (it survives restarts)."""
    for sql in (
        """CREATE TABLE audit (
            id INTEGER PRIMARY KEY,
            time TEXT NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            target TEXT,
            details TEXT NOT NULL DEFAULT '{}'
        )""",
        "CREATE INDEX audit_time ON audit(time)",
        "CREATE INDEX audit_target ON audit(target)",
        """CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
           BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""",
        """CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
           BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""",
        """CREATE TABLE credentials (
            role TEXT PRIMARY KEY,
            scheme TEXT NOT NULL,
            params TEXT NOT NULL,
            salt BLOB NOT NULL,
            hash BLOB NOT NULL,
            updated TEXT NOT NULL,
            failures INTEGER NOT NULL DEFAULT 0,
            last_failure REAL
        )""",
    ):
        conn.execute(sql)


def _v4_visitors(conn: sqlite3.Connection) -> None:
    """Face events and visitors (visitors issue).

    ``entry_faces`` keeps the embedding of every logged face, per recognition model like
    ``templates`` (embeddings of different models are never compared). ``visitor_id`` groups
    unknown events into visitors. An embedding lives exactly as long as the entry's snapshot: the
    trigger deletes it whenever the snapshot is cleared (retention, erasing a person, forgetting a
    visitor) and the foreign key when the entry goes, whichever code path does it. A visitor whose
    last event is gone or relabelled is deleted by the other triggers.

    ``negatives`` are faces an administrator said are *not* the person (a corrected wrong match):
    the matcher refuses that person for a query nearer to one of them than to the person's own
    templates. They go with the person."""
    for sql in (
        """CREATE TABLE visitors (
            id INTEGER PRIMARY KEY,
            model_id TEXT NOT NULL,
            created TEXT NOT NULL
        )""",
        """CREATE TABLE entry_faces (
            entry_id INTEGER NOT NULL REFERENCES entries(id) ON DELETE CASCADE,
            model_id TEXT NOT NULL,
            embedding BLOB NOT NULL,
            det_score REAL,
            face_px REAL,
            visitor_id INTEGER REFERENCES visitors(id) ON DELETE SET NULL,
            PRIMARY KEY (entry_id, model_id)
        )""",
        "CREATE INDEX entry_faces_model_visitor ON entry_faces(model_id, visitor_id)",
        """CREATE TRIGGER entry_faces_follow_snapshot AFTER UPDATE OF snapshot ON entries
           WHEN NEW.snapshot IS NULL
           BEGIN DELETE FROM entry_faces WHERE entry_id = NEW.id; END""",
        """CREATE TRIGGER visitors_drop_empty_on_delete AFTER DELETE ON entry_faces
           WHEN OLD.visitor_id IS NOT NULL
           BEGIN DELETE FROM visitors WHERE id = OLD.visitor_id
                 AND NOT EXISTS (SELECT 1 FROM entry_faces WHERE visitor_id = OLD.visitor_id); END""",
        """CREATE TRIGGER visitors_drop_empty_on_update AFTER UPDATE OF visitor_id ON entry_faces
           WHEN OLD.visitor_id IS NOT NULL AND OLD.visitor_id IS NOT NEW.visitor_id
           BEGIN DELETE FROM visitors WHERE id = OLD.visitor_id
                 AND NOT EXISTS (SELECT 1 FROM entry_faces WHERE visitor_id = OLD.visitor_id); END""",
        """CREATE TABLE negatives (
            id INTEGER PRIMARY KEY,
            person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
            model_id TEXT NOT NULL,
            embedding BLOB NOT NULL,
            entry_id INTEGER,
            created TEXT NOT NULL
        )""",
        "CREATE INDEX negatives_model ON negatives(model_id, person_id)",
    ):
        conn.execute(sql)


# Tables whose changes can change a door decision (who is enrolled, their templates and
# negatives, doors, groups).
REVISED_TABLES = ("people", "templates", "negatives", "doors", "door_groups", "access_groups", "person_groups")


def _v5_revision(conn: sqlite3.Connection) -> None:
    """A change counter for running stations (logic issue, item 4).

    Counts and highest ids of the tables are no signature: SQLite reuses the id of a deleted
    newest row, so "remove the newest person, enroll another with as many photos" looked like no
    change. Triggers bump ``revision.n`` inside the very transaction of every change to the
    tables that decide who passes a door, whichever process or code path makes it, so a reader
    that sees the same number has seen the same people, templates and rules. It starts at a
    random number, so a database put in place by a restore is not taken for the one it replaced."""
    conn.execute("CREATE TABLE revision (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL)")
    conn.execute("INSERT INTO revision (id, n) VALUES (1, abs(random() / 4))")
    for table in REVISED_TABLES:
        for op in ("INSERT", "UPDATE", "DELETE"):
            conn.execute(f"CREATE TRIGGER {table}_revision_{op.lower()} AFTER {op} ON {table} "
                         f"BEGIN UPDATE revision SET n = n + 1 WHERE id = 1; END")


def _v6_visitor_index(conn: sqlite3.Connection) -> None:
    """Events by visitor: merging visitors and the triggers that drop an emptied visitor look
    them up by ``visitor_id`` alone (without it, every grouped event scanned the table)."""
    conn.execute("CREATE INDEX entry_faces_visitor ON entry_faces(visitor_id) WHERE visitor_id IS NOT NULL")


def _v7_sightings(conn: sqlite3.Connection) -> None:
    """Who was seen today, where, first and last (Presence page; the daily report's last out).
    One row per local day, person and door; ``visits`` counts separate appearances (tracks)."""
    conn.execute("""
        CREATE TABLE sightings (
            id INTEGER PRIMARY KEY,
            day TEXT NOT NULL,
            person_id INTEGER,
            person_name TEXT NOT NULL,
            door TEXT NOT NULL,
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL,
            visits INTEGER NOT NULL DEFAULT 1,
            UNIQUE (day, person_id, door)
        )""")
    conn.execute("CREATE INDEX sightings_day ON sightings (day)")


def _v8_door_liveness(conn: sqlite3.Connection) -> None:
    """Per-door liveness policy (liveness issue): 'off' (as before), 'passive' (the MiniFASNet check
    must find a known person's face live) or 'challenge' (the person also turns the head on request)."""
    conn.execute("ALTER TABLE doors ADD COLUMN liveness TEXT NOT NULL DEFAULT 'off' "
                 "CHECK (liveness IN ('off', 'passive', 'challenge'))")


# Rows a station sends to its site when they change locally (table, key columns). Entries only
# when deleted or their snapshot dropped (new entries go through the outbox); settings only the
# site-wide keys; credentials only the hash, never the failure counter (logins work offline).
SITE_CAPTURE: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("people", ("id",), ""),
    ("photos", ("id",), ""),
    ("templates", ("id",), ""),
    ("negatives", ("id",), ""),
    ("doors", ("id",), ""),
    ("access_groups", ("id",), ""),
    ("person_groups", ("person_id", "group_id"), ""),
    ("door_groups", ("door_id", "group_id"), ""),
    ("settings", ("key",), "site_setting"),
    ("credentials", ("role",), "credentials"),
    ("entries", ("uid",), "entries"),
)
SITE_SETTINGS = ("thresholds", "aggregate", "min_margin", "vote_frames", "cooldown_seconds",
                 "snapshot_retention_days", "entry_retention_days")
_CAPTURING = "(SELECT value FROM site_state WHERE key = 'capture') = '1'"


def _v9_site(conn: sqlite3.Connection) -> None:
    """Station of a site (issue #10): this database becomes the local replica of a PostgreSQL site.

    - ``entries`` and ``audit`` rows get a globally unique ``uid`` (filled by a trigger when the
      inserting code gives none) and ``station`` (NULL: written here; else pulled from that
      station); rows written here while this folder is a station go to ``site_outbox`` until
      the site has them (uploads are ``ON CONFLICT DO NOTHING``, so a repeat is a no-op).
    - ``site_changes`` records which replicated rows a transaction changed (triggers, only while
      ``site_state.capture`` is '1'); the store pushes them to the site before its own COMMIT.
    - ``site_state``: url (no password), station name, last pulled site revision, capture flag.
    The audit log stays append-only: only a missing uid may be filled in, once."""
    for sql in (
        "CREATE TABLE site_state (key TEXT PRIMARY KEY, value TEXT)",
        "CREATE TABLE site_changes (seq INTEGER PRIMARY KEY, tbl TEXT NOT NULL, op TEXT NOT NULL, pk TEXT NOT NULL)",
        "CREATE TABLE site_outbox (kind TEXT NOT NULL, uid TEXT NOT NULL, PRIMARY KEY (kind, uid))",
        "ALTER TABLE entries ADD COLUMN uid TEXT",
        "ALTER TABLE entries ADD COLUMN station TEXT",
        "UPDATE entries SET uid = lower(hex(randomblob(16)))",
        "CREATE UNIQUE INDEX entries_uid ON entries(uid)",
        "ALTER TABLE audit ADD COLUMN uid TEXT",
        "ALTER TABLE audit ADD COLUMN station TEXT",
        "DROP TRIGGER audit_no_update",
        "UPDATE audit SET uid = lower(hex(randomblob(16)))",
        "CREATE UNIQUE INDEX audit_uid ON audit(uid)",
        """CREATE TRIGGER audit_no_update BEFORE UPDATE OF id, time, actor, action, target, details, station ON audit
           BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""",
        """CREATE TRIGGER audit_uid_once BEFORE UPDATE OF uid ON audit WHEN OLD.uid IS NOT NULL
           BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""",
        f"""CREATE TRIGGER audit_after_insert AFTER INSERT ON audit BEGIN
              UPDATE audit SET uid = lower(hex(randomblob(16))) WHERE id = NEW.id AND NEW.uid IS NULL;
              INSERT OR IGNORE INTO site_outbox (kind, uid) SELECT 'audit', uid FROM audit
                WHERE id = NEW.id AND NEW.station IS NULL AND {_CAPTURING};
           END""",
        f"""CREATE TRIGGER entries_after_insert AFTER INSERT ON entries BEGIN
              UPDATE entries SET uid = lower(hex(randomblob(16))) WHERE id = NEW.id AND NEW.uid IS NULL;
              INSERT OR IGNORE INTO site_outbox (kind, uid) SELECT 'entry', uid FROM entries
                WHERE id = NEW.id AND NEW.station IS NULL AND {_CAPTURING};
           END""",
    ):
        conn.execute(sql)
    settings_keys = ", ".join(f"'{k}'" for k in SITE_SETTINGS)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    for table, keys, kind in SITE_CAPTURE:
        if table not in tables:
            continue
        new_pk = "json_array(" + ", ".join(f"NEW.{k}" for k in keys) + ")"
        old_pk = "json_array(" + ", ".join(f"OLD.{k}" for k in keys) + ")"
        extra_new = f" AND NEW.key IN ({settings_keys})" if kind == "site_setting" else ""
        extra_old = f" AND OLD.key IN ({settings_keys})" if kind == "site_setting" else ""
        update_of = {"credentials": " OF scheme, params, salt, hash", "entries": " OF snapshot"}.get(kind, "")
        if kind != "entries":
            conn.execute(f"""CREATE TRIGGER site_{table}_ins AFTER INSERT ON {table} WHEN {_CAPTURING}{extra_new}
                BEGIN INSERT INTO site_changes (tbl, op, pk) VALUES ('{table}', 'I', {new_pk}); END""")
        conn.execute(f"""CREATE TRIGGER site_{table}_upd AFTER UPDATE{update_of} ON {table} WHEN {_CAPTURING}{extra_new}
            BEGIN INSERT INTO site_changes (tbl, op, pk) VALUES ('{table}', 'U', {new_pk}); END""")
        conn.execute(f"""CREATE TRIGGER site_{table}_del AFTER DELETE ON {table} WHEN {_CAPTURING}{extra_old}
            BEGIN INSERT INTO site_changes (tbl, op, pk) VALUES ('{table}', 'D', {old_pk}); END""")


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_v1, _v2_attendance, _v3_security, _v4_visitors,
                                                        _v5_revision, _v6_visitor_index, _v7_sightings,
                                                        _v8_door_liveness, _v9_site]
SCHEMA_VERSION = len(MIGRATIONS)
