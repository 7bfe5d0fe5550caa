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
    """Doors, access groups and richer entries (attendance issue)."""


def _v3_security(conn: sqlite3.Connection) -> None:
    """Audit log and administrator credentials (reliability issue)."""


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_v1, _v2_attendance, _v3_security]
SCHEMA_VERSION = len(MIGRATIONS)
