"""Issue #7: the audit log, the administrator password with its slow-down, and privacy
(deletion really deletes, retention, subject-access export). Real photos and models."""

from __future__ import annotations

import csv
import io
import json
import shutil
import sqlite3
import sys
import unicodedata
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import SHARED, person_photos
from faceapp.cli import main
from faceapp.core.errors import DuplicateError, FaceAppError
from faceapp.core.settings import DEFAULT_THRESHOLDS, Settings
from faceapp.service import privacy, security
from faceapp.service.enroll import enroll_files
from faceapp.service.security import PasswordError, ScryptParams
from faceapp.store.attendance import AttendanceStore, NewEntry, make_snapshot
from faceapp.store.audit import AuditLog
from faceapp.store.db import NewPhoto, Store

FAST = ScryptParams(n=2 ** 10)  # the stored parameters are used on check: tests stay quick


def run(home: Path, *argv: str) -> int:
    return main(["--home", str(home), *argv])


@pytest.fixture(scope="module")
def real_shots(engine):
    """Aligned crops and embeddings of real photos (Obama), computed once."""
    out = []
    for path in person_photos("face_recognition_examples", "Barack_Obama")[:3]:
        face = engine.analyze_photo(cv2.imread(str(path)))[0]
        out.append(NewPhoto(face.crop, face.embedding, 0.9, path.name))
    return out


def actions(store: Store) -> list[str]:
    return [r.action for r in AuditLog(store).records(newest_first=False)]


# -- audit ------------------------------------------------------------------------------------------
def test_every_change_is_audited_with_what_changed(tmp_path, real_shots):
    with Store(tmp_path / "f.db") as s:
        s.actor = "cli:alice"
        pid = s.add_person("Ann Lee", "w600k_mbf", real_shots[:2], employee_id="E1")
        s.add_photos(pid, "w600k_mbf", real_shots[2:])
        s.update_person(pid, name="Anne Lee", active=False)
        s.update_person(pid, department=None)  # nothing given that changes: no row
        photo = s.photos(pid)[0]
        s.remove_photo(photo.id)
        s.add_templates("sface", [(p.id, np.full(128, 128 ** -0.5, np.float32)) for p in s.photos(pid)])
        settings = s.load_settings()
        s.save_settings(settings.with_threshold("w600k_mbf", 0.55))
        s.save_settings(s.load_settings())  # unchanged: no row
        s.actor = "gui:admin"
        s.save_settings(Settings(camera="clip.mp4", snapshot_retention_days=7))
        s.remove_person(pid)
        rows = AuditLog(s).records(newest_first=False)
    assert [r.action for r in rows] == ["person.add", "person.add_photos", "person.update", "photo.remove",
                                        "templates.recompute", "threshold.change", "settings.change",
                                        "person.remove"]
    by = {r.action: r for r in rows}
    # The person is removed: their rows keep what was done, but not who they were (#11 item 6).
    gone = f"removed person #{pid}"
    assert by["person.add"].changes == {"name": gone, "employee_id": gone, "department": None, "photos": 2,
                                        "model_id": "w600k_mbf"}
    assert by["person.update"].changes == {"name": [gone, gone], "active": [True, False]}
    assert by["photo.remove"].changes == {"photo_id": photo.id, "templates": 1}
    default = DEFAULT_THRESHOLDS["w600k_mbf"]
    assert by["threshold.change"].changes == {"thresholds.w600k_mbf": [default, 0.55]}
    changed = by["settings.change"].changes
    # Back to the default threshold, another camera and a shorter retention: each with old -> new.
    assert changed["camera"] == ["0", "clip.mp4"] and changed["snapshot_retention_days"] == [30, 7]
    assert changed["thresholds.w600k_mbf"] == [0.55, default]
    assert by["person.remove"].changes["name"] == gone and by["person.remove"].changes["photos"] == 2
    assert {r.target for r in rows if r.action.startswith(("person.", "photo."))} == {f"person:{pid}"}
    assert [r.actor for r in rows][:6] == ["cli:alice"] * 6 and rows[-1].actor == "gui:admin"
    assert all(datetime.fromisoformat(r.time).utcoffset() == timedelta(0) for r in rows)
    assert by["threshold.change"].describe() == f"thresholds.w600k_mbf: {default} → 0.55"


def test_a_refused_change_leaves_no_audit_row(tmp_path, real_shots):
    with Store(tmp_path / "f.db") as s:
        s.add_person("Ann Lee", "m", real_shots[:1])
        with pytest.raises(DuplicateError):
            s.add_person("ann  lee", "m", real_shots[1:2])
        broken = NewPhoto(np.zeros((0, 0, 3), np.uint8), real_shots[0].embedding)
        with pytest.raises(FaceAppError):
            s.add_person("Half Done", "m", [real_shots[1], broken])
        assert actions(s) == ["person.add"]
        assert [p.name for p in s.list_people()] == ["Ann Lee"]


def test_audit_rows_cannot_be_changed_or_deleted(tmp_path, real_shots):
    path = tmp_path / "f.db"
    with Store(path) as s:
        s.add_person("Ann Lee", "m", real_shots[:1])
        for sql in ("UPDATE audit SET actor = 'nobody'", "DELETE FROM audit", "UPDATE audit SET details = '{}'"):
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                s.conn.execute(sql)
    other = sqlite3.connect(path)  # not even from outside the app
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        other.execute("DELETE FROM audit WHERE id = 1")
    other.close()
    with Store(path) as s:
        assert actions(s) == ["person.add"] and AuditLog(s).records()[0].actor


def test_cli_audit_list_and_export_are_spreadsheet_safe(home, tmp_path, capsys):
    photo = person_photos("face_recognition_examples", "Joe_Biden")[0]
    name = "=HYPERLINK(\"http://x\") 😀"
    assert run(home, "enroll", name, str(photo), "--department", "+R&D, \"Lab\"") == 0
    assert run(home, "admin", "retention", "--snapshots", "7") == 0
    capsys.readouterr()
    assert run(home, "audit", "list", "--json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["action"] for r in rows] == ["person.add", "settings.change"]
    assert rows[0]["details"]["name"] == name and rows[1]["actor"].startswith("cli:")
    assert rows[1]["details"] == {"snapshot_retention_days": [30, 7]}
    assert run(home, "audit", "list", "--person", name.lower()) == 0
    assert "person.add" in capsys.readouterr().out

    out = tmp_path / "audit 'log' \"ü\" 😀.csv"
    assert run(home, "audit", "export", "-o", str(out)) == 0
    with open(out, encoding="utf-8", newline="") as fh:
        table = list(csv.reader(fh))
    assert table[0] == ["time", "actor", "action", "target", "details", "id"]
    assert [r[2] for r in table[1:]] == ["person.add", "settings.change"]
    assert json.loads(table[1][4])["name"] == name  # JSON starts with '{': no quote needed
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in table for cell in row)
    assert run(home, "audit", "list", "--limit", "1") == 0
    assert "audit.export" in capsys.readouterr().out  # the export itself is audited


# -- administrator password ------------------------------------------------------------------------
def test_password_is_salted_scrypt_never_plain_text(tmp_path):
    path = tmp_path / "f.db"
    secret = "correct horse battery"
    with Store(path) as s:
        assert not security.has_admin_password(s)
        with pytest.raises(PasswordError, match="no administrator password"):
            security.check_admin_password(s, secret)
        security.set_admin_password(s, secret)  # the real default cost, once
        row = s.query("SELECT * FROM credentials")[0]
        assert row["scheme"] == "scrypt" and json.loads(row["params"])["n"] >= 2 ** 14
        assert len(row["salt"]) == 16 and len(row["hash"]) == 32
        assert security.check_admin_password(s, secret).ok
        salt1 = row["salt"]
        security.set_admin_password(s, secret, params=FAST)
        assert s.query("SELECT salt FROM credentials")[0]["salt"] != salt1  # fresh salt every time
    raw = path.read_bytes() + (path.with_name("f.db-wal").read_bytes() if path.with_name("f.db-wal").exists() else b"")
    assert secret.encode() not in raw


@pytest.mark.parametrize("bad,message", [("short", "at least 8"), (" " * 9, "only spaces"), ("x" * 1025, "at most")])
def test_weak_passwords_are_refused(tmp_path, bad, message):
    with Store(tmp_path / "f.db") as s:
        with pytest.raises(PasswordError, match=message):
            security.set_admin_password(s, bad, params=FAST)
        assert not security.has_admin_password(s)


def test_unicode_forms_of_one_password_match(tmp_path):
    composed = unicodedata.normalize("NFC", "Zoë Ñandú 2024")
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    with Store(tmp_path / "f.db") as s:
        security.set_admin_password(s, composed, params=FAST)
        assert security.check_admin_password(s, decomposed).ok


def test_wrong_passwords_slow_down_and_the_counter_survives_a_restart(tmp_path):
    path = tmp_path / "f.db"
    t = 1_000_000.0
    with Store(path) as s:
        security.set_admin_password(s, "the right one", params=FAST)
        r1 = security.check_admin_password(s, "guess 1", now=t)
        r2 = security.check_admin_password(s, "guess 2", now=t)
        assert (r1.ok, r1.retry_after, r2.retry_after) == (False, 0, 0) and r2.message == "wrong password"
        r3 = security.check_admin_password(s, "guess 3", now=t)
        assert r3.retry_after == 1 and r3.message == "wrong password; try again in 1 s"
        # During the wait even the right password is not looked at, and nothing is counted.
        early = security.check_admin_password(s, "the right one", now=t + 0.5)
        assert not early.ok and early.failures == 3 and "try again in 1 s" in early.message
        r4 = security.check_admin_password(s, "guess 4", now=t + 1)
        assert r4.retry_after == 2
    with Store(path) as s:  # a restart does not reset the wait
        assert security.retry_after(s, now=t + 1.5) == pytest.approx(1.5)
        assert not security.check_admin_password(s, "the right one", now=t + 2).ok
        ok = security.check_admin_password(s, "the right one", now=t + 3)
        assert ok.ok and security.retry_after(s, now=t + 3) == 0
        assert security.check_admin_password(s, "guess 5", now=t + 3).retry_after == 0  # counting restarted
        assert actions(s).count("admin.login_failed") == 5 and "admin.login" in actions(s)


def test_delay_doubles_up_to_a_minute_and_a_clock_set_back_does_not_lock_out():
    assert [security.failure_delay(n) for n in range(1, 10)] == [0, 0, 1, 2, 4, 8, 16, 32, 60]
    assert security.failure_delay(500) == 60
    assert security._remaining(20, 5_000.0, now=1_000.0) == 60  # last failure "in the future"


def test_cli_set_password(home, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("s3cret-enough\n"))
    assert run(home, "admin", "set-password", "--password-stdin") == 0
    assert capsys.readouterr().out.strip() == "administrator password set"
    # Once set, the current password comes first (line 1), the new one second.
    monkeypatch.setattr(sys, "stdin", io.StringIO("s3cret-enough\nshort\n"))
    assert run(home, "admin", "set-password", "--password-stdin") == 1
    err = capsys.readouterr().err.strip()
    assert err == "faceapp: error: the password needs at least 8 characters"
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # no terminal, no --password-stdin
    assert run(home, "admin", "set-password") == 1
    assert "--password-stdin" in capsys.readouterr().err
    monkeypatch.setattr(sys, "stdin", io.StringIO("a-wrong-guess\nanother-one-9\n"))
    assert run(home, "admin", "set-password", "--password-stdin") == 1   # not without the old one
    assert "wrong password" in capsys.readouterr().err
    monkeypatch.setattr(sys, "stdin", io.StringIO("s3cret-enough\nanother-one-9\n"))
    assert run(home, "admin", "set-password", "--password-stdin") == 0
    assert "changed" in capsys.readouterr().out
    with Store(home / "faceapp.db") as s:
        assert security.check_admin_password(s, "another-one-9").ok
        assert not security.check_admin_password(s, "s3cret-enough").ok
        assert [a for a in actions(s) if a.startswith("admin.password")] == ["admin.password_set",
                                                                             "admin.password_change"]


# -- privacy ----------------------------------------------------------------------------------------
def _entry(att: AttendanceStore, image, person_id, name, decision, when, bbox=None) -> int:
    snap = make_snapshot(image, bbox) if bbox is not None else None
    return att.add_entry(NewEntry(when, "Main entrance", person_id, name, decision, 0.4, None, None, snap))


@pytest.fixture(scope="module")
def obama_db(tmp_path_factory, models_dir, engine):
    """A closed database with Barack Obama enrolled from real photos and two entries logged
    today (denied with a snapshot, granted); made once, copied by :func:`obama`."""
    from faceapp.service.app import App

    home = tmp_path_factory.mktemp("obama")
    photos = person_photos("face_recognition_examples", "Barack_Obama")[:3]
    image = cv2.imread(str(photos[0]))
    with App(home, engine=engine) as a:
        pid, _ = enroll_files(a, "Barack Obama", photos, employee_id="P-44")
        face = engine.analyze(image)[0]
        att = AttendanceStore(a.store)
        _entry(att, image, pid, "Barack Obama", "denied", datetime.now(timezone.utc), face.bbox)
        _entry(att, image, pid, "Barack Obama", "granted", datetime.now(timezone.utc))
    return home / "faceapp.db", pid, image, face


@pytest.fixture
def obama(home, engine, obama_db):
    """(person id, photo, face) with ``app`` replaced by an App on a fresh copy of ``obama_db``."""
    from faceapp.service.app import App

    db, pid, image, face = obama_db
    shutil.copyfile(db, home / "faceapp.db")
    a = App(home, engine=engine)
    yield a, pid, image, face
    a.close()


def _file_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    wal = path.with_name(path.name + "-wal")
    return data + (wal.read_bytes() if wal.exists() else b"")


@pytest.mark.parametrize("remove_entries", [False, True])
def test_deleting_a_person_deletes_their_faces_from_the_file(obama, remove_entries):
    app, pid, _, _ = obama
    crops = [r["crop"] for r in app.store.query("SELECT crop FROM photos WHERE person_id = ?", (pid,))]
    snap = app.store.query("SELECT snapshot FROM entries WHERE snapshot IS NOT NULL")[0]["snapshot"]
    probes = [c[len(c) // 2: len(c) // 2 + 48] for c in crops] + [snap[len(snap) // 2: len(snap) // 2 + 48]]
    assert all(p in _file_bytes(app.paths.db) for p in probes[:1])
    app.store.remove_person(pid, remove_entries=remove_entries)
    rows = app.store.query("SELECT person_id, person_name, snapshot FROM entries")
    if remove_entries:
        assert rows == []
    else:  # the log keeps the name as text, without the link and without any picture
        assert rows == [{"person_id": None, "person_name": "Barack Obama", "snapshot": None}] * 2
    assert app.store.query("SELECT COUNT(*) AS n FROM templates")[0]["n"] == 0
    raw = _file_bytes(app.paths.db)
    assert not [p for p in probes if p in raw], "deleted face pictures are still in the database file"
    last = AuditLog(app.store).records(limit=1)[0]
    assert last.action == "person.remove" and last.changes["photos"] == 3
    assert ("entries_deleted" if remove_entries else "snapshots_deleted") in last.changes


def test_retention_purges_old_snapshots_and_entries(obama):
    app, pid, image, face = obama
    att = AttendanceStore(app.store)
    now = datetime.now(timezone.utc)
    for days, decision in ((100, "unknown"), (45, "denied"), (10, "unknown")):
        _entry(att, image, None if decision == "unknown" else pid, None, decision, now - timedelta(days=days),
               face.bbox)
    assert privacy.preview_retention(app.store, 0, 0) == privacy.PurgeReport(0, 0, 0, 0)  # 0 = keep forever
    app.update_settings(snapshot_retention_days=30, entry_retention_days=60)
    preview = privacy.preview_retention(app.store, 30, 60)
    assert (preview.snapshots, preview.entries) == (1, 1)
    report = privacy.apply_retention(app)
    assert (report.snapshots, report.entries) == (1, 1)
    left = app.store.query("SELECT time, snapshot IS NOT NULL AS snap FROM entries ORDER BY time")
    assert [bool(r["snap"]) for r in left] == [False, True, True, False]  # 45 d, 10 d, today (denied), today
    assert AuditLog(app.store).records(limit=1)[0].changes["entries_removed"] == 1
    assert privacy.apply_retention(app) == privacy.PurgeReport(0, 0, 30, 60)
    assert actions(app.store).count("retention.purge") == 1  # an empty automatic run is not recorded


def test_cli_purge(home, capsys):
    from faceapp.service.app import App

    with App(home) as a:
        att = AttendanceStore(a.store)
        att.add_entry(NewEntry(datetime.now(timezone.utc) - timedelta(days=400), "Door", None, None, "unknown"))
        att.add_entry(NewEntry(datetime.now(timezone.utc), "Door", None, None, "unknown"))
    assert run(home, "admin", "retention", "--entries", "365") == 0
    assert "the next purge removes" in capsys.readouterr().out
    assert run(home, "purge") == 0
    assert "1 entry older than 365 days" in capsys.readouterr().out
    assert run(home, "purge") == 0
    assert "0 entries" in capsys.readouterr().out
    with Store(home / "faceapp.db") as s:
        assert s.query("SELECT COUNT(*) AS n FROM entries")[0]["n"] == 1
        assert actions(s).count("retention.purge") == 2  # runs by hand are always recorded


def test_subject_access_export(obama, tmp_path, capsys):
    app, pid, _, _ = obama
    other = person_photos("face_recognition_examples", "Joe_Biden")[:1]
    enroll_files(app, "Joe Biden", other)
    att = AttendanceStore(app.store)
    att.add_group("Staff")
    att.assign(pid, "Staff")
    app.store.update_person(pid, department="Office")

    folder = tmp_path / "requests" / "Obama 'BO' ü"
    folder.parent.mkdir()
    result = privacy.export_person_data(app, pid, folder)
    doc = json.loads((folder / "person.json").read_text(encoding="utf-8"))
    assert doc["person"]["name"] == "Barack Obama" and doc["person"]["employee_id"] == "P-44"
    assert doc["person"]["department"] == "Office" and doc["access_groups"] == ["Staff"]
    assert doc["templates"]["count"] == 3 and doc["templates"]["by_model"] == {app.model_id: 3}
    assert [a["action"] for a in doc["audit"]] == ["person.add", "group.assign", "person.update"]
    assert doc["entries"]["count"] == 2 and doc["entries"]["snapshots"] == 1
    stored = {r["id"]: r["crop"] for r in app.store.query("SELECT id, crop FROM photos WHERE person_id = ?", (pid,))}
    assert {p["file"] for p in doc["photos"]} == {f"photos/photo-{i}.png" for i in stored}
    for p in doc["photos"]:
        assert (folder / p["file"]).read_bytes() == stored[p["id"]]
        assert cv2.imread(str(folder / p["file"])).shape == (112, 112, 3)
    with open(folder / "entries.csv", encoding="utf-8", newline="") as fh:
        entries = list(csv.DictReader(fh))
    assert {e["decision"] for e in entries} == {"denied", "granted"}
    assert {e["person"] for e in entries} == {"Barack Obama"}
    assert len(list((folder / "snapshots").iterdir())) == 1
    assert "Joe Biden" not in json.dumps(doc)
    assert (result.photos, result.entries, result.snapshots) == (3, 2, 1)

    with pytest.raises(FaceAppError, match="not a new or empty folder"):
        privacy.export_person_data(app, pid, folder)
    z = tmp_path / "obama.zip"
    assert main(["--home", str(app.paths.home), "people", "export", "barack obama", "-o", str(z)]) == 0
    assert "3 photo(s), 2 log entries, 1 snapshot(s)" in capsys.readouterr().out
    with zipfile.ZipFile(z) as zf:
        names = set(zf.namelist())
        assert {"person.json", "entries.csv"} <= names and len([n for n in names if n.startswith("photos/")]) == 3
    assert AuditLog(app.store).records(action="person.export")[0].target == f"person:{pid}"
    assert not [p for p in tmp_path.rglob(".subject-export-*")]  # no temporary leftovers


def test_subject_export_of_unknown_person_is_a_clear_error(home, tmp_path, capsys):
    assert run(home, "people", "export", "Nobody", "-o", str(tmp_path / "x.zip")) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("faceapp: error: no enrolled person is called 'Nobody'") and "\n" not in err
    assert not (tmp_path / "x.zip").exists()


def test_a_tampered_password_row_is_a_clear_error(tmp_path):
    with Store(tmp_path / "f.db") as s:
        security.set_admin_password(s, "the right one", params=FAST)
        s.conn.execute("""UPDATE credentials SET params = '{"n": 1073741824, "r": 8, "p": 1, "dklen": 32}'""")
        with pytest.raises(PasswordError, match="damaged.*faceapp admin set-password"):
            security.check_admin_password(s, "the right one")


def test_a_new_data_folder_is_private_and_an_existing_one_keeps_its_mode(tmp_path):
    from faceapp.service.app import App

    new = tmp_path / "a" / "home"
    App(new).close()
    assert (new.stat().st_mode & 0o777) == 0o700
    shared = tmp_path / "shared-station"
    shared.mkdir(mode=0o750)
    shared.chmod(0o750)
    App(shared).close()
    assert (shared.stat().st_mode & 0o777) == 0o750


def test_installing_models_first_still_makes_a_private_data_folder(tmp_path, capsys):
    home = tmp_path / "fresh-home"
    assert main(["--home", str(home), "models", "install", "--from", str(SHARED / "models"), "--pack", "buffalo_sc"]) == 0
    assert (home.stat().st_mode & 0o777) == 0o700
