"""Issue #7: `faceapp backup` / `faceapp restore` — one-file backups made with SQLite's online
backup API while the database is in use, and restores that refuse anything doubtful."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import threading
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from conftest import person_photos
from faceapp.cli import main
from faceapp.core.errors import StoreError
from faceapp.service.app import App
from faceapp.service.enroll import enroll_files
from faceapp.service.recognize import identify_file
from faceapp.store.attendance import AttendanceStore, NewEntry
from faceapp.store.audit import AuditLog
from faceapp.store.backup import backup_database, read_backup_info, restore_database
from faceapp.store.db import Store
from faceapp.store.migrations import MIGRATIONS, SCHEMA_VERSION


def run(home: Path, *argv: str) -> int:
    return main(["--home", str(home), *argv])


def state(db: Path) -> tuple:
    """What a refused restore must leave untouched."""
    with Store(db) as s:
        return (tuple((r["id"], r["name"]) for r in s.query("SELECT id, name FROM people ORDER BY id")),
                tuple(r["h"] for r in s.query("SELECT hex(embedding) AS h FROM templates ORDER BY id")),
                s.query("SELECT COUNT(*) AS n FROM entries")[0]["n"],
                s.query("SELECT COUNT(*) AS n FROM audit")[0]["n"])


@pytest.fixture(scope="module")
def enrolled_db(tmp_path_factory, models_dir, engine) -> Path:
    """A closed database with Obama and Biden enrolled from real photos and one entry (made once)."""
    home = tmp_path_factory.mktemp("enrolled")
    (home / "models").symlink_to(models_dir, target_is_directory=True)
    with App(home, engine=engine) as app:
        for who in ("Barack_Obama", "Joe_Biden"):
            enroll_files(app, who.replace("_", " "), person_photos("face_recognition_examples", who)[:2])
        AttendanceStore(app.store).add_entry(NewEntry(datetime.now(timezone.utc), "Door", 1, "Barack Obama",
                                                      "granted"))
    return home / "faceapp.db"


@pytest.fixture
def two_people(home, engine, enrolled_db):
    """A fresh App on a copy of ``enrolled_db``."""
    shutil.copyfile(enrolled_db, home / "faceapp.db")
    app = App(home, engine=engine)
    yield app
    app.close()


def test_backup_and_restore_round_trip(two_people, tmp_path, capsys):
    app = two_people
    home = app.paths.home
    before = state(app.paths.db)
    dest = tmp_path / "backups dir" / "Friday's \"full\" backup ü.faceapp-backup"
    dest.parent.mkdir()
    assert run(home, "backup", str(dest)) == 0
    assert "2 people, 4 photos, 1 log entries" in capsys.readouterr().out
    assert dest.stat().st_mode & 0o077 == 0  # biometric data: owner only
    info = read_backup_info(dest)
    assert info.schema_version == SCHEMA_VERSION and info.counts["people"] == 2
    # A backup is one self-contained SQLite file (no -wal next to it).
    assert not dest.with_name(dest.name + "-wal").exists()
    conn = sqlite3.connect(dest)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert conn.execute("SELECT value FROM backup_meta WHERE key = 'format'").fetchone()[0] == "faceapp-backup"
    conn.close()

    app.store.remove_person(app.store.find_person("Barack Obama").id, remove_entries=True)
    app.invalidate_gallery()
    assert run(home, "restore", str(dest), "--yes") == 0
    out = capsys.readouterr().out
    assert "the previous database is kept in" in out
    # The App that stayed open sees the restored data (restored in one transaction, online).
    app.invalidate_gallery()
    assert state(app.paths.db)[:3] == before[:3]
    probe = person_photos("face_recognition_examples", "Barack_Obama")[2]
    assert identify_file(app, probe)[0].match.name == "Barack Obama"
    log = AuditLog(app.store).records(newest_first=False)
    assert log[-1].action == "backup.restore" and log[-1].changes["mode"] == "online"
    assert "person.remove" not in [r.action for r in log]  # the restored log is the backup's ...
    safety = Path(log[-1].changes["previous_database"])
    with sqlite3.connect(safety) as old:  # ... and the replaced one is kept in the safety copy
        assert "person.remove" in [r[0] for r in old.execute("SELECT action FROM audit")]
    assert safety.parent == home / "backups"
    restore_database(safety, app.paths.db, tmp_path / "more")  # the safety copy is a backup too
    assert len(app.store.list_people()) == 1


def test_backup_while_another_connection_writes(two_people, tmp_path):
    app = two_people
    stop = threading.Event()
    written = []
    errors = []

    def writer() -> None:
        try:
            with Store(app.paths.db) as s:
                att = AttendanceStore(s)
                while not stop.is_set():
                    written.append(att.add_entry(NewEntry(datetime.now(timezone.utc), "Door", None, None, "unknown",
                                                          snapshot=bytes(4000))))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    t = threading.Thread(target=writer)
    t.start()
    try:
        while len(written) < 20:
            threading.Event().wait(0.01)
        infos = []
        for i in range(3):
            infos.append(backup_database(app.paths.db, tmp_path / f"b{i}.faceapp-backup"))
            n0 = len(written)
            while len(written) < n0 + 5:  # the writer was not blocked by the backup
                threading.Event().wait(0.01)
    finally:
        stop.set()
        t.join(30)
    assert not errors
    for info in infos:
        with sqlite3.connect(info.path) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            n = conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0]
            assert n == info.counts["entries"] >= 21  # a consistent snapshot: meta and data agree
            assert conn.execute("SELECT COUNT(*) FROM templates").fetchone()[0] == 4
    assert infos[0].counts["entries"] < infos[-1].counts["entries"]


def _make(path: Path, kind: str, good: Path) -> Path:
    if kind == "text":
        path.write_text("people,photos\nAnn,3\n")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "other_sqlite":
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE notes (x)")
        conn.commit()
        conn.close()
    elif kind == "plain_database":  # a copy of faceapp.db is not a backup (no marker)
        src = sqlite3.connect(good)
        dst = sqlite3.connect(path)
        src.backup(dst)
        dst.execute("DROP TABLE backup_meta")
        dst.commit()
        src.close()
        dst.close()
    elif kind == "newer_schema":
        shutil.copyfile(good, path)
        conn = sqlite3.connect(path)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        conn.commit()
        conn.close()
    elif kind == "truncated":
        data = good.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "nan_template":   # one damaged template would make everyone unknown (#17 item 9)
        shutil.copyfile(good, path)
        conn = sqlite3.connect(path)
        conn.execute("UPDATE templates SET embedding = ? WHERE id = (SELECT MIN(id) FROM templates)",
                     (np.full(512, np.nan, np.float32).tobytes(),))
        conn.commit()
        conn.close()
    elif kind == "folder":
        path.mkdir()
    return path


@pytest.mark.parametrize("kind,message", [
    ("text", "is not a faceapp backup"), ("empty", "is not a faceapp backup"),
    ("other_sqlite", "is not a faceapp backup"), ("plain_database", "is not a faceapp backup"),
    ("newer_schema", "newer faceapp"), ("truncated", "is damaged"), ("folder", "is not a file"),
    ("nan_template", "damaged embedding in templates"),
    ("missing", "not found")])
def test_restore_refuses_doubtful_files(two_people, tmp_path, capsys, kind, message):
    app = two_people
    good = tmp_path / "good.faceapp-backup"
    backup_database(app.paths.db, good)
    before = state(app.paths.db)
    bad = _make(tmp_path / f"bad {kind}.faceapp-backup", kind, good)
    digest = hashlib.sha256(bad.read_bytes()).hexdigest() if bad.is_file() else None
    capsys.readouterr()
    assert run(app.paths.home, "restore", str(bad), "--yes") == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("faceapp: error:") and "\n" not in err and message in err
    assert state(app.paths.db) == before
    assert not (app.paths.home / "backups").exists()  # refused before anything was touched
    if digest:
        assert hashlib.sha256(bad.read_bytes()).hexdigest() == digest  # the user's file is never written
    assert not [p for p in app.paths.home.iterdir() if p.name.startswith(".restore-")]


def test_restore_needs_confirmation(two_people, tmp_path, capsys):
    good = backup_database(two_people.paths.db, tmp_path / "b.faceapp-backup").path
    assert run(two_people.paths.home, "restore", str(good)) == 1  # stdin is no terminal here
    assert "add --yes to confirm" in capsys.readouterr().err


def _v2_backup(path: Path, crop_png: bytes, embedding: bytes) -> None:
    """A backup as an older faceapp (schema 2, before the audit log) would have written it."""
    conn = sqlite3.connect(path, isolation_level=None)
    for step in MIGRATIONS[:2]:
        step(conn)
    conn.execute("PRAGMA user_version = 2")
    now = datetime.now(timezone.utc).isoformat()
    conn.execute("INSERT INTO people (id, name, active, created) VALUES (1, 'Old Timer', 1, ?)", (now,))
    conn.execute("INSERT INTO photos (id, person_id, crop, created) VALUES (1, 1, ?, ?)", (crop_png, now))
    conn.execute("INSERT INTO templates (person_id, photo_id, model_id, embedding, created) "
                 "VALUES (1, 1, 'w600k_mbf', ?, ?)", (embedding, now))
    conn.execute("CREATE TABLE backup_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    conn.executemany("INSERT INTO backup_meta VALUES (?, ?)", [("format", "faceapp-backup"), ("format_version", "1"),
                                                               ("app_version", "0.0.9"), ("created", now)])
    conn.close()


def test_restore_migrates_an_older_schema(two_people, tmp_path, capsys):
    app = two_people
    row = app.store.query("SELECT crop FROM photos LIMIT 1")[0]
    emb = app.store.query("SELECT embedding FROM templates LIMIT 1")[0]["embedding"]
    old = tmp_path / "old.faceapp-backup"
    _v2_backup(old, row["crop"], emb)
    assert read_backup_info(old).schema_version == 2
    assert run(app.paths.home, "restore", str(old), "--yes") == 0
    assert f"upgraded it from schema 2 to {SCHEMA_VERSION}" in capsys.readouterr().out
    assert app.store.schema_version() == SCHEMA_VERSION
    assert [p.name for p in app.store.list_people()] == ["Old Timer"]
    assert [r.action for r in AuditLog(app.store).records()] == ["backup.restore"]
    g = app.store.gallery("w600k_mbf")
    assert g.size == 1 and np.allclose(np.linalg.norm(g.embeddings, axis=1), 1, atol=1e-3)


def test_restore_replaces_a_damaged_database(home, tmp_path, capsys, engine):
    with App(home, engine=engine) as app:
        enroll_files(app, "Joe Biden", person_photos("face_recognition_examples", "Joe_Biden")[:1])
        good = backup_database(app.paths.db, tmp_path / "b.faceapp-backup").path
    db = home / "faceapp.db"
    db.write_bytes(b"garbage " * 5000)
    assert run(home, "people", "list") == 1
    assert "faceapp restore FILE" in capsys.readouterr().err
    assert run(home, "restore", str(good), "--yes") == 0
    assert run(home, "people", "list") == 0
    assert "Joe Biden" in capsys.readouterr().out
    kept = list((home / "backups").iterdir())
    assert len(kept) == 1 and kept[0].name.endswith("-damaged.db")
    assert kept[0].read_bytes() == b"garbage " * 5000
    with Store(db) as s:
        assert s.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert AuditLog(s).records(limit=1)[0].changes["mode"] == "replaced"


def test_backup_errors_are_one_line(home, tmp_path, capsys):
    assert run(home, "backup", str(tmp_path / "no such folder" / "b.faceapp-backup")) == 1
    assert capsys.readouterr().err.strip() == f"faceapp: error: folder '{tmp_path / 'no such folder'}' does not exist"
    assert run(home, "backup", str(tmp_path)) == 1
    assert "is a folder" in capsys.readouterr().err
    assert run(home, "backup", str(home / "faceapp.db")) == 1
    assert "is a file of the data folder" in capsys.readouterr().err
    with pytest.raises(StoreError, match="no database"):
        backup_database(tmp_path / "none.db", tmp_path / "x")


def test_restore_into_a_new_data_folder(two_people, tmp_path, capsys):
    good = backup_database(two_people.paths.db, tmp_path / "b.faceapp-backup").path
    fresh = tmp_path / "new machine" / "faceapp data"
    assert main(["--home", str(fresh), "restore", str(good), "--yes"]) == 0
    out = capsys.readouterr().out
    assert "previous database" not in out
    assert state(fresh / "faceapp.db")[:3] == state(two_people.paths.db)[:3]


def _damage_data_pages(good: Path, bad: Path) -> None:
    """A copy of ``good`` whose header, schema and backup_meta read fine but some of whose data
    pages are overwritten: only a full integrity check of the copy can tell."""
    with sqlite3.connect(good) as conn:
        page = int(conn.execute("PRAGMA page_size").fetchone()[0])
        n_pages = int(conn.execute("PRAGMA page_count").fetchone()[0])
    data = bytearray(good.read_bytes())
    hit = 0
    for p in range(n_pages // 3, n_pages):
        trial = bytearray(data)
        trial[p * page: p * page + 64] = b"\xa5" * 64  # a b-tree or overflow page header
        bad.write_bytes(bytes(trial))
        try:
            read_backup_info(bad)
        except StoreError:
            continue  # this page holds the schema or backup_meta: not the case under test
        data = trial
        hit += 1
        if hit == 3:
            break
    assert hit, "no data page could be damaged"
    bad.write_bytes(bytes(data))


def test_restore_refuses_a_backup_with_damaged_data_pages(two_people, tmp_path, capsys):
    """The integrity check runs on the staged copy BEFORE anything is written over the live database."""
    app = two_people
    good = backup_database(app.paths.db, tmp_path / "good.faceapp-backup").path
    bad = tmp_path / "bad.faceapp-backup"
    _damage_data_pages(good, bad)
    assert read_backup_info(bad).counts["people"] == 2  # header and backup_meta still read fine
    before = state(app.paths.db)
    capsys.readouterr()
    assert run(app.paths.home, "restore", str(bad), "--yes") == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("faceapp: error:") and "\n" not in err and "damaged" in err
    assert state(app.paths.db) == before
    with sqlite3.connect(app.paths.db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # Into a new data folder: nothing damaged is installed there either.
    fresh = tmp_path / "new machine"
    assert main(["--home", str(fresh), "restore", str(bad), "--yes"]) == 1
    db = fresh / "faceapp.db"
    if db.exists():
        with sqlite3.connect(db) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            assert conn.execute("SELECT COUNT(*) FROM people").fetchone()[0] == 0
