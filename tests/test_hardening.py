"""Issue #11: the attack run's defects, each reproduced with real files and processes."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from faceapp.cli import main
from faceapp.core.redact import redact_text, redact_url
from faceapp.service.app import App


def run(home: Path, *argv: str) -> int:
    return main(["--home", str(home), *argv])


def faceapp_proc(home: Path, *argv: str, stdin: str | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the real `faceapp` command in its own process."""
    return subprocess.run([sys.executable, "-m", "faceapp", "--home", str(home), *argv], input=stdin,
                          capture_output=True, text=True, timeout=timeout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def file_bytes(db: Path) -> bytes:
    """The database with its WAL, as an attacker copying the files would read them."""
    return b"".join(p.read_bytes() for p in (db, db.with_name(db.name + "-wal")) if p.exists())


# -- 5. URL secrets -----------------------------------------------------------------------------------
@pytest.mark.parametrize("url, secrets", [
    ("rtsp://admin:SuperSecret1@10.0.0.2:554/stream1", ["admin", "SuperSecret1"]),
    ("rtsp://admin:Pa#Secret2@10.0.0.2/live", ["Pa#Secret2", "Secret2"]),
    ("rtsp://admin:p@ss@word@cam.local/x?y=1", ["p@ss", "word@"]),
    ("http://127.0.0.1:8555/video.cgi?user=admin&pwd=Secret4", ["admin", "Secret4"]),
    ("http://cam/x?Password=a1&api_key=k2&access_token=t3&SECRET=s4&passwd=p5&size=640",
     ["a1", "k2", "t3", "s4", "p5"]),
    ("http://cam/x#user=admin&pass=Hidden5", ["Hidden5"]),
])
def test_redact_url_removes_userinfo_and_credential_parameters(url, secrets):
    clean = redact_url(url)
    for s in secrets:
        assert s not in clean
    assert "cam" in clean or "10.0.0.2" in clean or "127.0.0.1" in clean
    assert redact_text(f"cannot open {url}: timeout") == f"cannot open {clean}: timeout"


def test_redact_url_keeps_what_has_no_secret():
    for spec in ("0", "/tmp/a.mp4", "rtsp://10.0.0.2:554/live", "http://cam/x?size=640&fps=10", "C:\\v\\a.mp4"):
        assert redact_url(spec) == spec


def test_a_camera_password_never_reaches_the_database_or_the_audit_log(home):
    url = "rtsp://admin:SuperSecret1@10.0.0.2:554/stream1"
    with App(home) as app:
        app.update_settings(camera=url)
        assert app.camera_spec() == url                        # the station can still connect
    db = home / "faceapp.db"
    with App(home) as app:                                     # a new process finds the secret again
        assert app.settings.camera == "rtsp://***@10.0.0.2:554/stream1"
        assert app.camera_spec() == url
        run(home, "backup", str(home.parent / "b.faceapp-backup"))
    assert b"SuperSecret1" not in file_bytes(db)
    assert b"SuperSecret1" not in (home.parent / "b.faceapp-backup").read_bytes()
    secrets = home / "camera-secrets.json"
    assert "SuperSecret1" in secrets.read_text()
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600


@pytest.mark.parametrize("url", ["http://127.0.0.1:{port}/video.cgi?user=admin&pwd=Secret4",
                                 "rtsp://admin:Pa#Secret4@127.0.0.1:{port}/live"])
def test_watch_never_prints_the_camera_password(home, url):
    res = faceapp_proc(home, "-vv", "watch", url.format(port=free_port()), "--seconds", "3")
    out = res.stdout + res.stderr
    assert "127.0.0.1" in out                                  # it did talk about the camera
    assert "Secret4" not in out


# -- shared fixtures: a real enrolled database -----------------------------------------------------------
@pytest.fixture(scope="module")
def enrolled_db(tmp_path_factory, models_dir, engine) -> Path:
    """A closed database with Tony Blair and Ariel Sharon enrolled from real photos, entries for both."""
    from datetime import datetime, timezone

    from conftest import person_photos
    from faceapp.service.enroll import enroll_files
    from faceapp.store.attendance import AttendanceStore, NewEntry

    home = tmp_path_factory.mktemp("enrolled")
    (home / "models").symlink_to(models_dir, target_is_directory=True)
    with App(home, engine=engine) as app:
        for who in ("Tony_Blair", "Ariel_Sharon"):
            enroll_files(app, who.replace("_", " "), person_photos("lfw_krasserm", who)[:2],
                         employee_id=f"E-{who[:4]}", department="Politics")
        att = AttendanceStore(app.store)
        for pid, name in ((1, "Tony Blair"), (2, "Ariel Sharon")):
            att.add_entry(NewEntry(datetime.now(timezone.utc), "Door", pid, name, "granted"))
        att.add_entry(NewEntry(datetime.now(timezone.utc), "Door", None, None, "unknown", snapshot=b"\xff\xd8jpeg"))
    return home / "faceapp.db"


@pytest.fixture
def enrolled(home, enrolled_db) -> Path:
    """``home`` holding a copy of ``enrolled_db``; returns the data folder."""
    import shutil

    shutil.copyfile(enrolled_db, home / "faceapp.db")
    return home


def db_state(db: Path) -> tuple:
    """What a refused command must leave untouched."""
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        return tuple(tuple(conn.execute(f"SELECT * FROM {t} ORDER BY rowid").fetchall())
                     for t in ("people", "photos", "templates", "entries"))
    finally:
        conn.close()


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("faceapp: error: "), err
    return err[0]


# -- 1. writers of user-named files ---------------------------------------------------------------------
WRITERS = [("log", "export", "-o"), ("log", "report", "-o"), ("audit", "export", "-o"),
           ("people", "export", "Tony Blair", "-o"), ("backup",)]


@pytest.mark.parametrize("writer", WRITERS, ids=lambda w: " ".join(w[:2]))
def test_writers_refuse_the_database_and_the_data_folders_files(enrolled, tmp_path, capsys, writer):
    home = enrolled
    db = home / "faceapp.db"
    with App(home) as app:
        app.update_settings(camera="rtsp://admin:pw1234567@cam/x")   # creates camera-secrets.json
    before = db_state(db)
    (tmp_path / "link-to-db").symlink_to(db)
    (tmp_path / "link-to-wal").symlink_to(home / "faceapp.db-wal")   # dangling until the WAL exists
    os.link(db, tmp_path / "hardlink-to-db")
    (tmp_path / "linked-home").symlink_to(home, target_is_directory=True)
    targets = [db, home / "faceapp.db-wal", home / "faceapp.db-shm", home / "faceapp.db-journal",
               home / "camera-secrets.json", home / "models" / "new.csv", home / "backups" / "x.zip",
               tmp_path / "link-to-db", tmp_path / "link-to-wal", tmp_path / "hardlink-to-db",
               tmp_path / "linked-home" / "faceapp.db", home]
    for target in targets:
        for force in ((), ("--force",)):
            assert run(home, *writer, str(target), *force) == 1, target
            assert "of the data folder" in one_error_line(capsys)
            assert db_state(db) == before
    assert run(home, "people", "list") == 0                              # still a usable database
    assert "Tony Blair" in capsys.readouterr().out


@pytest.mark.parametrize("writer, own_name", [(WRITERS[0], "old.csv"), (WRITERS[2], "old.csv"),
                                              (WRITERS[3], "old.zip"), (WRITERS[4], "old.faceapp-backup")],
                         ids=["log export", "audit export", "people export", "backup"])
def test_writers_replace_their_own_kind_but_other_files_only_with_force(enrolled, tmp_path, capsys, writer,
                                                                        own_name):
    home = enrolled
    # (a folder export never replaces a file; its other kind of target is a .zip name)
    thesis = tmp_path / ("thesis.zip" if own_name.endswith(".zip") else "thesis.docx")
    thesis.write_bytes(b"PK\x03\x04 not a spreadsheet")
    assert run(home, *writer, str(thesis)) == 1
    assert "--force" in one_error_line(capsys)
    assert thesis.read_bytes() == b"PK\x03\x04 not a spreadsheet"
    own = tmp_path / own_name
    assert run(home, *writer, str(own)) == 0                             # new file
    first = own.read_bytes()
    assert run(home, *writer, str(own)) == 0                             # replacing its own kind
    assert own.read_bytes()[:4] == first[:4]
    if own_name.endswith(".csv"):
        csv_named = tmp_path / "photo.csv"
        csv_named.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00binary")
        assert run(home, *writer, str(csv_named)) == 1                   # a .csv name is not enough
        capsys.readouterr()
    assert run(home, *writer, str(thesis), "--force") == 0
    assert thesis.read_bytes() != b"PK\x03\x04 not a spreadsheet"


# -- 2. safety copies ---------------------------------------------------------------------------------
def test_two_restores_in_one_second_keep_two_safety_copies(enrolled, tmp_path, monkeypatch, capsys):
    from datetime import datetime as real_datetime

    from faceapp.store import backup as backup_mod

    home = enrolled
    b = tmp_path / "b.faceapp-backup"
    assert run(home, "backup", str(b)) == 0

    class Frozen(real_datetime):        # both restores in the same second, as in the attack
        @classmethod
        def now(cls, tz=None):
            return real_datetime(2026, 5, 31, 14, 25, 0, tzinfo=tz)

    monkeypatch.setattr(backup_mod, "datetime", Frozen)
    original = db_state(home / "faceapp.db")
    assert run(home, "restore", str(b), "--yes") == 0
    assert run(home, "restore", str(b), "--yes") == 0
    copies = sorted((home / "backups").iterdir())
    assert [p.name for p in copies] == ["before-restore-20260531-142500-2.faceapp-backup",
                                        "before-restore-20260531-142500.faceapp-backup"]
    for c in copies:
        assert db_state(c)[:4] == original                                # each is a whole copy
        assert stat.S_IMODE(c.stat().st_mode) == 0o600
    assert stat.S_IMODE((home / "backups").stat().st_mode) == 0o700


# -- 7. permissions -----------------------------------------------------------------------------------
def test_personal_data_files_are_private_whatever_the_umask(enrolled, tmp_path, capsys):
    home = enrolled
    os.chmod(home, 0o755)
    for p in home.glob("faceapp.db*"):
        os.chmod(p, 0o644)
    old = os.umask(0o022)
    try:
        out = tmp_path / "out"
        out.mkdir()
        assert run(home, "log", "export", "-o", str(out / "e.csv")) == 0
        assert run(home, "log", "report", "-o", str(out / "r.csv")) == 0
        assert run(home, "audit", "export", "-o", str(out / "a.csv")) == 0
        assert run(home, "backup", str(out / "b.faceapp-backup")) == 0
        assert run(home, "people", "export", "Tony Blair", "-o", str(out / "tony")) == 0
        assert run(home, "people", "export", "Tony Blair", "-o", str(out / "tony.zip")) == 0
        with App(home) as app:          # while a process has it open, as another user would copy it
            app.audit("test.write")
            db_files = [home / f"faceapp.db{s}" for s in ("", "-wal", "-shm")]
            assert [stat.S_IMODE(p.stat().st_mode) for p in db_files] == [0o600] * 3
    finally:
        os.umask(old)
    capsys.readouterr()
    written = [*home.glob("faceapp.db*"), *out.rglob("*")]
    assert any(p.suffix == ".png" for p in written)
    for p in written:
        mode = stat.S_IMODE(p.stat().st_mode)
        assert mode == (0o700 if p.is_dir() else 0o600), (p, oct(mode))
    # The data folder itself keeps the mode its owner gave it, but the check says so.
    assert run(home, "doctor") == 1
    assert "readable by other users" in capsys.readouterr().out
    os.chmod(home, 0o700)
    assert run(home, "doctor") == 0


# -- 8. leftovers of killed processes -----------------------------------------------------------------
def _kill_when(proc: subprocess.Popen, found) -> bool:
    """SIGKILL ``proc`` as soon as ``found()`` is true; False if it ended first."""
    import signal
    import time

    while proc.poll() is None:
        if found():
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.002)
    return False


def test_a_killed_restore_and_a_killed_backup_leave_nothing_behind(enrolled, tmp_path, capsys):
    import signal

    home = enrolled
    b = tmp_path / "b.faceapp-backup"
    assert run(home, "backup", str(b)) == 0
    before = db_state(home / "faceapp.db")
    kills = 0
    for _ in range(5):                    # a staged restore killed mid-way, several times
        proc = subprocess.Popen([sys.executable, "-m", "faceapp", "--home", str(home), "restore", str(b), "--yes"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        kills += _kill_when(proc, lambda: any((w / "staged.db").exists() for w in home.glob(".restore-*")))
    assert kills >= 1
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    target = out_dir / "nightly.faceapp-backup"
    for _ in range(3):                    # a backup killed while its temporary file exists
        proc = subprocess.Popen([sys.executable, "-m", "faceapp", "--home", str(home), "backup", str(target)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        kills += _kill_when(proc, lambda: any(out_dir.glob(".nightly.faceapp-backup.*.tmp")))
    leftovers = [p.name for p in home.iterdir() if p.name.startswith(".")]
    if leftovers:
        # The next start removes them and says so.
        assert run(home, "people", "list") == 0
        assert "leftover" in capsys.readouterr().err
    assert [p.name for p in home.iterdir() if p.name.startswith(".")] == []
    assert db_state(home / "faceapp.db") == before
    # The next backup to the same place cleans what the killed ones left beside it.
    assert run(home, "backup", str(target)) == 0
    assert [p.name for p in out_dir.iterdir()] == ["nightly.faceapp-backup"]
    # A running restore's staging folder is locked: a start meanwhile leaves it alone.
    proc = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from faceapp.core.fsutil import private_workdir\n"
        "with private_workdir(Path(sys.argv[1]), '.restore-') as w:\n"
        "    (w / 'staged.db').write_bytes(b'x'); print(w, flush=True); time.sleep(600)"), str(home)],
        stdout=subprocess.PIPE, text=True)
    try:
        work = Path(proc.stdout.readline().strip())
        with App(home):
            pass
        assert (work / "staged.db").exists()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    with App(home):
        pass
    assert not work.exists()


# -- 3. restore builds its own schema ---------------------------------------------------------------------
def _schema(db: Path) -> list:
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name").fetchall()
    finally:
        conn.close()


def test_a_tampered_backups_triggers_views_and_tables_never_reach_the_database(enrolled, tmp_path, capsys):
    import sqlite3
    from datetime import datetime, timezone

    from faceapp.store.attendance import AttendanceStore, NewEntry
    from faceapp.store.db import Store

    home = enrolled
    b = tmp_path / "b.faceapp-backup"
    assert run(home, "backup", str(b)) == 0
    conn = sqlite3.connect(b)     # the attack: edited with sqlite3
    conn.executescript("""
        DROP TRIGGER audit_no_update;
        DROP TRIGGER audit_no_delete;
        CREATE TRIGGER hide_removals AFTER INSERT ON audit WHEN NEW.action = 'person.remove'
            BEGIN DELETE FROM audit WHERE id = NEW.id; END;
        CREATE TRIGGER grant_all AFTER INSERT ON entries WHEN NEW.decision = 'denied'
            BEGIN UPDATE entries SET decision = 'granted' WHERE id = NEW.id; END;
        CREATE VIEW everyone AS SELECT name FROM people;
        CREATE TABLE backdoor (cmd TEXT);
        INSERT INTO backdoor VALUES ('rm -rf /');
    """)
    conn.close()
    fresh = tmp_path / "fresh" / "faceapp.db"
    Store(fresh).close()
    assert run(home, "restore", str(b), "--yes") == 0
    capsys.readouterr()
    assert _schema(home / "faceapp.db") == _schema(fresh)          # exactly faceapp's own schema
    assert db_state(home / "faceapp.db")[0][0][1] == "Tony Blair"  # and the backup's rows
    assert run(home, "people", "remove", "Tony Blair") == 0
    with Store(home / "faceapp.db") as s:
        assert s.query("SELECT COUNT(*) AS n FROM audit WHERE action = 'person.remove'")[0]["n"] == 1
        AttendanceStore(s).add_entry(NewEntry(datetime.now(timezone.utc), "Door", 2, "Ariel Sharon", "denied"))
        assert s.query("SELECT decision FROM entries ORDER BY id DESC LIMIT 1")[0]["decision"] == "denied"
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            s.conn.execute("DELETE FROM audit")


def _fake_backup(path: Path, tables: dict[str, str], user_version: int | None = None) -> Path:
    import sqlite3

    from faceapp.store.migrations import SCHEMA_VERSION

    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE backup_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    conn.executemany("INSERT INTO backup_meta VALUES (?, ?)", [("format", "faceapp-backup"), ("format_version", "1"),
                                                               ("app_version", "9.9"), ("created", "2026-01-01")])
    for name, sql in tables.items():
        conn.execute(sql)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION if user_version is None else user_version}")
    conn.commit()
    conn.close()
    return path


@pytest.mark.parametrize("case", ["empty tables", "newer faceapp", "wrong types", "not a backup", "orphan rows"])
def test_refused_restores_leave_the_database_untouched_and_say_one_line(enrolled, tmp_path, capsys, case):
    import shutil
    import sqlite3

    from faceapp.store.migrations import SCHEMA_VERSION

    home = enrolled
    three = {"people": "CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT)",
             "photos": "CREATE TABLE photos (id INTEGER PRIMARY KEY)",
             "templates": "CREATE TABLE templates (id INTEGER PRIMARY KEY)"}
    b = tmp_path / "x.faceapp-backup"
    # Each attack: a real backup edited with sqlite3, and the one line it must be refused with.
    edits = {"newer faceapp": ([f"PRAGMA user_version = {SCHEMA_VERSION + 1}"], "newer faceapp"),
             "wrong types": (["UPDATE people SET active = 'yes please' WHERE id = 1"], "people.active"),
             "orphan rows": (["PRAGMA foreign_keys = OFF", "UPDATE photos SET person_id = 999 WHERE id = 1"],
                             "missing rows")}
    if case == "empty tables":
        _fake_backup(b, three)
        expect = "tables missing"
    elif case in edits:
        assert run(home, "backup", str(b)) == 0
        sql, expect = edits[case]
        conn = sqlite3.connect(b)
        for statement in sql:
            conn.execute(statement)
        conn.commit()
        conn.close()
    else:
        shutil.copyfile(home / "models" / "buffalo_sc" / "w600k_mbf.onnx", b)
        expect = "not a faceapp backup"
    capsys.readouterr()
    before = db_state(home / "faceapp.db")
    schema = _schema(home / "faceapp.db")
    assert run(home, "restore", str(b), "--yes") == 1
    assert expect in one_error_line(capsys)
    assert db_state(home / "faceapp.db") == before and _schema(home / "faceapp.db") == schema
    assert not (home / "backups").exists() or not list((home / "backups").iterdir())
    assert [p for p in home.iterdir() if p.name.startswith(".")] == []
    assert run(home, "people", "list") == 0                               # every command still works
    assert "Tony Blair" in capsys.readouterr().out


# -- who may do what from the CLI --------------------------------------------------------------------
PASSWORD = "correct horse 42"


def _set_password(home: Path, monkeypatch) -> None:
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO(PASSWORD + "\n"))
    assert run(home, "admin", "set-password", "--password-stdin") == 0


ADMIN_COMMANDS = [
    ("people", "remove", "Tony Blair"), ("enroll", "Eve", "x.jpg"), ("door", "add", "Lab"), ("group", "add", "staff"),
    ("group", "assign", "Tony Blair", "staff"), ("admin", "retention", "--entries", "1"), ("purge",),
    ("backup", "{tmp}/b.faceapp-backup"), ("restore", "{tmp}/b.faceapp-backup", "--yes"),
    ("log", "export", "-o", "{tmp}/e.csv"), ("audit", "export", "-o", "{tmp}/a.csv"),
    ("people", "export", "Tony Blair", "-o", "{tmp}/t.zip"), ("models", "use", "opencv"),
    ("admin", "set-password", "--password-stdin"),
]


def test_once_a_password_is_set_administrative_commands_need_it(enrolled, tmp_path, monkeypatch, capsys):
    import io

    home = enrolled
    _set_password(home, monkeypatch)
    capsys.readouterr()
    before = db_state(home / "faceapp.db")
    for cmd in ADMIN_COMMANDS:
        argv = [a.format(tmp=tmp_path) for a in cmd]
        monkeypatch.setattr(sys, "stdin", io.StringIO(""))           # a script without the password
        assert run(home, *argv) == 1, argv
        assert "administrator password" in one_error_line(capsys)
        monkeypatch.setattr(sys, "stdin", io.StringIO("not the password\n"))
        assert run(home, *argv, "--password-stdin") == 1, argv
        assert "wrong password" in one_error_line(capsys)
        # (the slow-down of wrong guesses is the window's; reset it for the next command)
        monkeypatch.setattr(sys, "stdin", io.StringIO(PASSWORD + "\n"))
        assert run(home, "group", "list") == 0 and run(home, "admin", "retention", "--password-stdin") == 0
        capsys.readouterr()
    assert db_state(home / "faceapp.db") == before
    assert list(tmp_path.glob("*.csv")) == [] and not (tmp_path / "b.faceapp-backup").exists()
    # Reading commands never ask.
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    for cmd in (("people", "list"), ("audit", "list"), ("log", "list"), ("door", "list"), ("doctor",),
                ("models", "verify", "--pack", "buffalo_sc")):
        assert run(home, *cmd) in (0, 1) and "administrator password" not in capsys.readouterr().err, cmd
    # With the password, fed by a script.
    monkeypatch.setattr(sys, "stdin", io.StringIO(PASSWORD + "\n"))
    assert run(home, "people", "remove", "Tony Blair", "--password-stdin") == 0
    assert "Tony Blair" not in str(db_state(home / "faceapp.db")[0])


def test_the_audit_actor_is_the_os_account_never_the_environment(enrolled, tmp_path, monkeypatch):
    import pwd
    import sqlite3

    home = enrolled
    _set_password(home, monkeypatch)
    me = pwd.getpwuid(os.getuid()).pw_name
    env = {**os.environ, "FACEAPP_ACTOR": "gui:admin", "USER": "mallory", "LOGNAME": "mallory"}
    res = subprocess.run([sys.executable, "-m", "faceapp", "--home", str(home), "people", "remove", "Tony Blair",
                          "--password-stdin"], input=PASSWORD + "\n", env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    conn = sqlite3.connect(home / "faceapp.db")
    actor = conn.execute("SELECT actor FROM audit WHERE action = 'person.remove'").fetchone()[0]
    conn.close()
    assert actor == f"cli:{me}"


def test_set_password_needs_the_old_one_and_root_may_reset_a_lost_one(enrolled, monkeypatch, capsys):
    import io

    from faceapp.service import security
    from faceapp.store.audit import AuditLog
    from faceapp.store.db import Store

    home = enrolled
    _set_password(home, monkeypatch)
    monkeypatch.setattr(sys, "stdin", io.StringIO("forgotten it\nmy new password\n"))
    assert run(home, "admin", "set-password", "--password-stdin") == 1
    capsys.readouterr()
    monkeypatch.setattr(os, "geteuid", lambda: 1000)                   # not root: no recovery
    monkeypatch.setattr(sys, "stdin", io.StringIO("my new password\n"))
    assert run(home, "admin", "reset-password", "--password-stdin") == 1
    assert "only root" in one_error_line(capsys)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(sys, "stdin", io.StringIO("my new password\n"))
    assert run(home, "admin", "reset-password", "--password-stdin") == 0
    with Store(home / "faceapp.db") as s:
        assert security.check_admin_password(s, "my new password").ok
        resets = AuditLog(s).records(action="admin.password_reset")
        assert len(resets) == 1 and resets[0].actor.startswith("cli:")


# -- 4. model integrity -------------------------------------------------------------------------------
def test_a_model_edited_in_place_with_its_mtime_restored_is_refused(tmp_path, shared_dir, capsys):
    from faceapp.engine.engine import EngineConfig, FaceEngine
    from faceapp.engine.installer import install_pack, list_packs
    from faceapp.core.errors import ModelError

    home = tmp_path / "home"
    install_pack("buffalo_sc", home / "models", source=shared_dir / "models")
    assert run(home, "models", "verify", "--pack", "buffalo_sc") == 0   # fills the size/mtime/inode cache
    capsys.readouterr()
    model = home / "models" / "buffalo_sc" / "w600k_mbf.onnx"
    st = model.stat()
    with open(model, "r+b") as fh:     # the attack: flip 4 KB inside the weights, put the mtime back
        fh.seek(st.st_size // 2)
        block = fh.read(4096)
        fh.seek(st.st_size // 2)
        fh.write(bytes(b ^ 0x5A for b in block))
    os.utime(model, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert model.stat().st_mtime_ns == st.st_mtime_ns and model.stat().st_ino == st.st_ino
    assert run(home, "models", "verify", "--pack", "buffalo_sc") == 1
    assert "w600k_mbf.onnx: mismatch" in capsys.readouterr().out
    with pytest.raises(ModelError, match="damaged"):
        FaceEngine(EngineConfig(pack="buffalo_sc", models_dir=home / "models")).prepare()
    res = faceapp_proc(home, "identify", str(shared_dir / "faces" / "lfw_krasserm" / "Tony_Blair" /
                                             sorted(os.listdir(shared_dir / "faces" / "lfw_krasserm" /
                                                               "Tony_Blair"))[0]))
    assert res.returncode == 1 and "damaged" in res.stderr and "Traceback" not in res.stderr
    assert run(home, "doctor") == 1
    assert "w600k_mbf.onnx" in capsys.readouterr().out
    assert {p.name: p.ok for p in list_packs(home / "models")}["buffalo_sc"] in (True, False)  # listing still works


# -- 11. terminal escapes and look-alike names ----------------------------------------------------------
EVIL = ["E1\x1b]0;PWNED\x07\x1b[2J", "Tony\u200bBlair", "Tony\u202eriaIB", "A\u00adB", "x\ufeff", "a\x9b31m"]


def test_control_and_format_characters_are_refused_everywhere_with_one_line(enrolled, tmp_path, capsys):
    from conftest import person_photos

    home = enrolled
    before = db_state(home / "faceapp.db")
    photo = str(person_photos("lfw_krasserm", "Ariel_Sharon")[3])
    for bad in EVIL:
        for argv in (("enroll", bad, photo), ("enroll", "Someone New", photo, "--employee-id", bad),
                     ("enroll", "Someone New", photo, "--department", bad),
                     ("door", "add", bad), ("group", "add", bad)):
            assert run(home, *argv) == 1, argv
            line = one_error_line(capsys)
            assert "control characters or invisible formatting characters" in line and "U+" in line
            assert "\x1b" not in line and "\u202e" not in line and "\u200b" not in line
    assert db_state(home / "faceapp.db") == before
    # NFC: the same name typed composed or decomposed is one person.
    assert run(home, "enroll", "Jose\u0301 Garci\u0301a", photo, "--allow-duplicate") == 0
    capsys.readouterr()
    assert run(home, "enroll", "José García", str(person_photos("lfw_krasserm", "Ariel_Sharon")[4]),
               "--allow-duplicate") == 1
    assert "already enrolled" in one_error_line(capsys)


def test_stored_escape_codes_are_printed_harmlessly(enrolled, capsys):
    import json
    import sqlite3

    home = enrolled
    conn = sqlite3.connect(home / "faceapp.db")   # data from before this check, or written by hand
    conn.execute("UPDATE people SET employee_id = ?, department = ? WHERE id = 1", (EVIL[0], "R\u202eD"))
    conn.execute("INSERT INTO audit (time, actor, action, target, details) VALUES ('2026-01-01T00:00:00+00:00', "
                 "?, 'x.y', ?, ?)", ("cli:\x1b[31mroot", "person:1\x07", json.dumps({"name": "A\x1b[2J\u200b"})))
    conn.commit()
    conn.close()
    for argv in (("people", "list"), ("audit", "list"), ("people", "list", "--json"), ("audit", "list", "--json"),
                 ("log", "list")):
        assert run(home, *argv) == 0
        out = capsys.readouterr().out
        for c in "\x1b\x07\u202e\u200b\x9b":
            assert c not in out, (argv, c)
        if "--json" in argv:
            json.loads(out)                         # still valid JSON, same text once parsed
            assert EVIL[0] in out.encode().decode("unicode_escape") or "\\u001b" in out
    assert run(home, "people", "list") == 0
    assert "\\u001b]0;PWNED\\u0007" in capsys.readouterr().out   # shown, visibly, not obeyed


# -- 6. safety copies and removed people ---------------------------------------------------------------
def _two_safety_copies(home: Path, tmp_path: Path) -> list[Path]:
    b = tmp_path / "b.faceapp-backup"
    assert run(home, "backup", str(b)) == 0
    assert run(home, "restore", str(b), "--yes") == 0
    assert run(home, "restore", str(b), "--yes") == 0
    copies = sorted((home / "backups").glob("before-restore-*"))
    assert len(copies) == 2
    return copies


def _crop_bytes(db: Path, person_id: int) -> list[bytes]:
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        # 500 bytes from the start of each PNG: on the table's own page, not cut by overflow pointers
        return [r[0][64:564] for r in conn.execute("SELECT crop FROM photos WHERE person_id = ?", (person_id,))]
    finally:
        conn.close()


def test_removal_scrubs_the_person_from_safety_copies_and_anonymises_the_audit(enrolled, tmp_path, capsys):
    import sqlite3

    home = enrolled
    crops = _crop_bytes(home / "faceapp.db", 2)
    copies = _two_safety_copies(home, tmp_path)
    assert all(crops[0] in c.read_bytes() for c in copies)            # the attack's finding
    capsys.readouterr()
    assert run(home, "people", "remove", "Ariel Sharon", "--with-entries", "--scrub-backups") == 0
    assert "also removed them from 2 safety copies" in capsys.readouterr().out
    for f in [home / "faceapp.db", *copies]:
        data = f.read_bytes()
        assert not any(c in data for c in crops), f                   # no face crop left in any file
        conn = sqlite3.connect(f)
        try:
            assert conn.execute("SELECT COUNT(*) FROM people WHERE id = 2").fetchone()[0] == 0
            assert conn.execute("SELECT name FROM people").fetchall() == [("Tony Blair",)]
            rows = conn.execute("SELECT action, details FROM audit WHERE target = 'person:2'").fetchall()
        finally:
            conn.close()
        text = " ".join(d for _, d in rows)
        assert "Ariel" not in text and "E-Arie" not in text and "removed person #2" in text
        assert "person.add" in [a for a, _ in rows]                   # the facts of who did what stay
    assert run(home, "audit", "list", "--person", "Tony Blair") == 0  # and the log still reads


def test_without_scrubbing_removal_says_which_copies_still_hold_the_person(enrolled, tmp_path, capsys):
    home = enrolled
    _two_safety_copies(home, tmp_path)
    capsys.readouterr()
    assert run(home, "people", "remove", "Ariel Sharon") == 0
    out = capsys.readouterr().out
    assert "2 safety copies" in out and "30 days" in out and "--scrub-backups" in out


def test_safety_copies_fall_under_retention(enrolled, tmp_path, capsys):
    import time

    home = enrolled
    old, new = _two_safety_copies(home, tmp_path)
    month_ago = time.time() - 31 * 86400
    os.utime(old, (month_ago, month_ago))
    capsys.readouterr()
    assert run(home, "purge") == 0
    assert "1 old safety copy" in capsys.readouterr().out
    assert not old.exists() and new.exists()
    assert run(home, "admin", "retention", "--safety-copies", "0") == 0
    assert "safety copies of the database are kept forever" in capsys.readouterr().out
    os.utime(new, (month_ago, month_ago))
    assert run(home, "purge") == 0 and new.exists()
