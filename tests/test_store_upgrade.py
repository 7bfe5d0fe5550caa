"""Installing a newer faceapp over an older one: the database migrates on first start after a
safety copy; a database from a newer faceapp is refused and left exactly as it was."""

from __future__ import annotations

import hashlib
import sqlite3
import threading

import pytest

from faceapp.core.errors import StoreError
from faceapp.store.backup import read_backup_info, restore_database
from faceapp.store.db import SAFETY_FOLDER, Store
from faceapp.store.migrations import MIGRATIONS, SCHEMA_VERSION


def _old_database(path, version: int = SCHEMA_VERSION - 1) -> None:
    """A database as an older faceapp left it: the first ``version`` migrations and one person."""
    conn = sqlite3.connect(path, isolation_level=None)
    for i in range(version):
        conn.execute("BEGIN")
        MIGRATIONS[i](conn)
        conn.execute(f"PRAGMA user_version = {i + 1}")
        conn.execute("COMMIT")
    conn.execute("INSERT INTO people (name, active, created) VALUES ('Ada Lovelace', 1, '2024-01-01T00:00:00Z')")
    conn.close()


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_old_database_is_copied_then_migrated(tmp_path):
    db = tmp_path / "faceapp.db"
    _old_database(db)
    with Store(db) as store:
        assert store.schema_version() == SCHEMA_VERSION
        assert [p.name for p in store.list_people()] == ["Ada Lovelace"]
    copies = list((tmp_path / SAFETY_FOLDER).glob("before-upgrade-*"))
    assert len(copies) == 1
    info = read_backup_info(copies[0])  # a real faceapp backup: `faceapp restore` takes it
    assert info.schema_version == SCHEMA_VERSION - 1 and info.counts["people"] == 1
    # Reopening the migrated database makes no further copy.
    Store(db).close()
    assert len(list((tmp_path / SAFETY_FOLDER).iterdir())) == 1


def test_the_safety_copy_restores_the_old_data(tmp_path):
    db = tmp_path / "faceapp.db"
    _old_database(db)
    with Store(db) as store:
        store.remove_person(store.find_person("Ada Lovelace").id)
    (copy,) = (tmp_path / SAFETY_FOLDER).glob("before-upgrade-*")
    restore_database(copy, db, tmp_path / SAFETY_FOLDER)
    with Store(db) as store:
        assert [p.name for p in store.list_people()] == ["Ada Lovelace"]


def test_new_and_current_databases_get_no_copy(tmp_path):
    db = tmp_path / "faceapp.db"
    Store(db).close()  # created at the current schema
    Store(db).close()
    assert not (tmp_path / SAFETY_FOLDER).exists()


def test_no_copy_no_upgrade(tmp_path):
    db = tmp_path / "faceapp.db"
    _old_database(db)
    (tmp_path / SAFETY_FOLDER).write_text("a file where the folder should be")
    with pytest.raises(StoreError, match="cannot keep a copy .* nothing was changed"):
        Store(db)
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION - 1
    conn.close()


def test_newer_database_is_refused_unchanged(tmp_path):
    db = tmp_path / "faceapp.db"
    Store(db).close()
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    before = _digest(db)
    with pytest.raises(StoreError, match=r"written by a newer faceapp \(schema \d+, this one knows \d+\)"):
        Store(db)
    assert _digest(db) == before
    assert not (tmp_path / SAFETY_FOLDER).exists()


def test_two_processes_upgrading_at_once(tmp_path):
    """A door station and the reception window started together on an old database."""
    db = tmp_path / "faceapp.db"
    _old_database(db, version=1)
    errors, stores = [], []

    def open_it():
        try:
            stores.append(Store(db))
        except Exception as exc:  # noqa: BLE001 - collected for the assert
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for s in stores:
        assert s.schema_version() == SCHEMA_VERSION
        assert len(s.list_people()) == 1
        s.close()
