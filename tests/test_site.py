"""Many doors, one site (issue #10): stations of a real PostgreSQL site, as separate processes.

Every test gets a fresh database in a throw-away cluster (tests/pg_cluster.py); stations are data
folders driven through the real `faceapp` command (one process each) or, where a test needs to
watch a station from inside, an App with its SiteSync thread in this process.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import psycopg
import pytest
from conftest import FACES
from pg_cluster import SUPERUSER_PASSWORD, pg_cluster, pg_db  # noqa: F401 (fixtures)

pytestmark = pytest.mark.slow

EXAMPLES = FACES / "face_recognition_examples"
LIN = [EXAMPLES / "Lin_Manuel_Miranda" / "lin-manuel-miranda.png"]
ALEX = [EXAMPLES / "Alex_Lacamoire" / "alex-lacamoire.png", EXAMPLES / "Alex_Lacamoire" / "img1.jpg"]
OBAMA = [EXAMPLES / "Barack_Obama" / n for n in ("obama.jpg", "obama2.jpg", "obama3.jpg")]
CLIP = FACES / "videos" / "face_recognition_short_hamilton_clip.mp4"


def make_home(tmp_path: Path, name: str, models_dir: Path) -> Path:
    h = tmp_path / name
    h.mkdir()
    (h / "models").symlink_to(models_dir, target_is_directory=True)
    return h


def cli(home: Path, *args, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, "-m", "faceapp", "--home", str(home), *map(str, args)],
                       capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"faceapp {' '.join(map(str, args))} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r


def cli_bg(home: Path, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "faceapp", "--home", str(home), *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def local(home: Path, sql: str, params=()) -> list[tuple]:
    with sqlite3.connect(home / "faceapp.db", timeout=30) as conn:
        return conn.execute(sql, params).fetchall()


def site_rows(cluster, db: str, sql: str) -> list[tuple]:
    return cluster.sql(sql, db)


def wait_for(predicate, timeout: float = 60.0, every: float = 0.1):
    """Poll until ``predicate()`` is truthy (functional wait, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(every)


def test_create_import_local_then_join_identifies_and_hides_the_password(tmp_path, models_dir, pg_cluster, pg_db):
    a = make_home(tmp_path, "a", models_dir)
    b = make_home(tmp_path, "b", models_dir)
    cli(a, "enroll", "Lin-Manuel Miranda", *LIN)
    cli(a, "group", "add", "Staff")
    cli(a, "door", "add", "Lobby", "--groups", "Staff")
    url = pg_cluster.url(pg_db)
    out = cli(a, "site", "create", url, "--import-local", "--station", "Front desk")
    assert "imported 1 people" in out.stdout
    # A second create, or a database holding something else, is refused.
    again = cli(b, "site", "create", url, check=False)
    assert again.returncode == 1 and "already holds a faceapp site" in again.stderr
    other = pg_cluster.new_database()
    pg_cluster.sql("CREATE TABLE invoices (id int)", other)
    refused = cli(b, "site", "create", pg_cluster.url(other), check=False)
    assert refused.returncode == 1 and "other table" in refused.stderr
    assert pg_cluster.sql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", other)[0][0] == 1

    cli(b, "site", "join", url, "--station", "Door 2")
    ident = json.loads(cli(b, "identify", "--json", LIN[0]).stdout.splitlines()[0])
    assert [f["person"] for f in ident["faces"]] == ["Lin-Manuel Miranda"]
    assert cli(b, "door", "list").stdout.startswith("Lobby: Staff")

    # The site holds A's people, templates, doors and audit; B's own join is audited at the site.
    assert site_rows(pg_cluster, pg_db, "SELECT name FROM people") == [("Lin-Manuel Miranda",)]
    actions = {r[0]: r[1] for r in site_rows(pg_cluster, pg_db, "SELECT action, station FROM audit")}
    assert actions["person.add"] == "Front desk" and actions["site.join"] == "Door 2"

    status = json.loads(cli(b, "site", "status", "--json").stdout)
    assert status["station"] == "Door 2" and status["connected"] is True and status["people"] == 1
    assert status["pending_entries"] == 0 and status["templates"] >= 1
    # The password is in the station's 0600 password file and nowhere else.
    for home in (a, b):
        passfile = home / "site.pgpass"
        assert passfile.stat().st_mode & 0o777 == 0o600
        assert SUPERUSER_PASSWORD in passfile.read_text()
        dump = "\n".join(map(str, local(home, "SELECT * FROM site_state") + local(home, "SELECT * FROM settings")
                             + local(home, "SELECT * FROM audit")))
        assert SUPERUSER_PASSWORD not in dump
    assert SUPERUSER_PASSWORD not in str(site_rows(pg_cluster, pg_db, "SELECT * FROM audit"))
    assert SUPERUSER_PASSWORD not in json.dumps(status)


def test_enrollment_at_a_reaches_b_and_removal_stops_granting(tmp_path, models_dir, engine, pg_cluster, pg_db):
    from faceapp.service.app import App
    from faceapp.service.pipeline import Pipeline
    from faceapp.service.site import SiteSync

    a = make_home(tmp_path, "a", models_dir)
    b = make_home(tmp_path, "b", models_dir)
    url = pg_cluster.url(pg_db)
    cli(a, "site", "create", url, "--import-local", "--station", "A")
    cli(b, "site", "join", url, "--station", "B")
    app_b = App(b, engine=engine)
    changed = threading.Event()
    sync = SiteSync(app_b, on_change=changed.set).start()
    try:
        assert wait_for(lambda: sync.status().connected)
        assert app_b.gallery().size == 0
        cli(a, "enroll", "Alex Lacamoire", *ALEX)
        assert wait_for(lambda: "Alex Lacamoire" in app_b.gallery().names.values(), 30)
        image = cv2.imread(str(ALEX[1]))
        pipeline = Pipeline(app_b, door="Main entrance", log_entries=False)
        assert _decisions(pipeline, image) == {"granted"}

        t0 = time.monotonic()
        cli(a, "people", "remove", "Alex Lacamoire")
        gone = wait_for(lambda: "Alex Lacamoire" not in app_b.gallery().names.values(), 30, every=0.05)
        latency = time.monotonic() - t0
        assert gone
        print(f"removal reached station B {latency:.2f} s after the command started (CLI start-up included)")
        pipeline = Pipeline(app_b, door="Main entrance", log_entries=False)
        assert "granted" not in _decisions(pipeline, image)
    finally:
        sync.stop()
        app_b.close()


def _decisions(pipeline, image) -> set[str]:
    from faceapp.capture.sources import Frame

    for i in range(8):     # enough frames for the vote to settle
        result = pipeline.process(Frame(image=image, index=i, captured=time.monotonic(), position=None))
    return {f.decision for f in result.faces}


def _long_clip(path: Path, repeats: int) -> Path:
    cap = cv2.VideoCapture(str(CLIP))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    h, w = frames[0].shape[:2]
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (w, h))
    for _ in range(repeats):
        for f in frames[::2]:
            out.write(f)
    out.release()
    return path


def _assert_exactly_once(home: Path, cluster, db: str, station: str) -> int:
    mine = sorted(r[0] for r in local(home, "SELECT uid FROM entries WHERE station IS NULL"))
    there = sorted(r[0] for r in cluster.sql(f"SELECT uid FROM entries WHERE station = '{station}'", db))
    assert there == mine, f"{len(mine)} entries here, {len(there)} at the site"
    # Same content too: no entry duplicated under another uid.
    keys = cluster.sql(f"SELECT time, door, track_id, count(*) FROM entries WHERE station = '{station}' "
                       f"GROUP BY 1, 2, 3 HAVING count(*) > 1", db)
    assert keys == []
    assert local(home, "SELECT COUNT(*) FROM site_outbox") == [(0,)]
    return len(mine)


def test_watch_through_a_site_outage_uploads_every_entry_once(tmp_path, models_dir, pg_cluster, pg_db):
    from faceapp.service.app import App

    a = make_home(tmp_path, "a", models_dir)
    cli(a, "enroll", "Lin-Manuel Miranda", *LIN)
    cli(a, "enroll", "Alex Lacamoire", *ALEX)
    with App(a) as app:
        app.update_settings(cooldown_seconds=1.0)
    url = pg_cluster.url(pg_db)
    cli(a, "site", "create", url, "--import-local", "--station", "A")
    video = _long_clip(tmp_path / "long.mp4", 8)
    watch = subprocess.Popen([sys.executable, "-m", "faceapp", "--home", str(a), "-v", "watch", str(video)],
                             stdout=subprocess.DEVNULL, stderr=open(tmp_path / "watch.log", "w"), text=True)
    try:
        assert wait_for(lambda: pg_cluster.sql("SELECT count(*) FROM entries", pg_db)[0][0] > 0, 300), \
            (tmp_path / "watch.log").read_text()
        pg_cluster.stop("fast")
        before = local(a, "SELECT COUNT(*) FROM entries")[0][0]
        # Entries keep being logged (and wait) while the site is down.
        assert wait_for(lambda: local(a, "SELECT COUNT(*) FROM site_outbox WHERE kind = 'entry'")[0][0] >= 2, 120)
        assert local(a, "SELECT COUNT(*) FROM entries")[0][0] > before
        pg_cluster.start()
        watch.wait(timeout=900)
    finally:
        if watch.poll() is None:
            watch.kill()
        pg_cluster.start() if not _running(pg_cluster) else None
    log = (tmp_path / "watch.log").read_text()
    assert watch.returncode == 0, log
    assert "site: offline" in log
    cli(a, "site", "sync")
    n = _assert_exactly_once(a, pg_cluster, pg_db, "A")
    assert n >= 3


def _running(cluster) -> bool:
    try:
        cluster.sql("SELECT 1")
        return True
    except psycopg.Error:
        return False


def test_station_killed_during_upload_then_exactly_once(tmp_path, models_dir, pg_cluster, pg_db):
    from datetime import datetime, timedelta, timezone

    from faceapp.service.app import App
    from faceapp.store.attendance import AttendanceStore, NewEntry

    a = make_home(tmp_path, "a", models_dir)
    url = pg_cluster.url(pg_db)
    cli(a, "site", "create", url, "--import-local", "--station", "A")
    pg_cluster.stop("fast")
    with App(a) as app:      # a station offline logs on: 6,000 entries wait
        log = AttendanceStore(app.store)
        t = datetime(2026, 1, 5, 8, tzinfo=timezone.utc)
        for i in range(6000):
            log.add_entry(NewEntry(t + timedelta(seconds=i), "Lobby", None, None, "unknown", None, None, i,
                                   b"\xff\xd8snapshot" * 50))
    pg_cluster.start()
    sync = cli_bg(a, "site", "sync")
    got = wait_for(lambda: pg_cluster.sql("SELECT count(*) FROM entries", pg_db)[0][0] > 0, 120, every=0.02)
    sync.send_signal(signal.SIGKILL)
    sync.wait()
    assert got
    partial = pg_cluster.sql("SELECT count(*) FROM entries", pg_db)[0][0]
    print(f"killed with {partial} of 6000 entries at the site")
    cli(a, "site", "sync")
    assert _assert_exactly_once(a, pg_cluster, pg_db, "A") == 6000


def test_site_killed_during_enrollment_leaves_the_person_whole_or_absent(tmp_path, models_dir, pg_cluster,
                                                                          pg_db):
    from faceapp.store.site_schema import LOCK_KEY

    a = make_home(tmp_path, "a", models_dir)
    url = pg_cluster.url(pg_db)
    cli(a, "site", "create", url, "--import-local", "--station", "A")
    outcomes = []
    # Each time the enrollment's site transaction is caught in flight: the test holds the site's
    # writer lock, waits until the enrollment waits for it (its transaction is open), then either
    # kills the server at once or lets go and kills it a moment later (during or after COMMIT).
    for attempt, after in enumerate((None, None, 0.0, 0.002, 0.01, 0.05, 0.5)):
        name = f"Obama {attempt}"
        blocker = psycopg.connect(url)
        blocker.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        proc = cli_bg(a, "enroll", name, *OBAMA, "--allow-duplicate")
        waiting = wait_for(lambda: blocker.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted").fetchone()[0], 300, 0.02)
        assert waiting, proc.communicate()
        if after is not None:
            blocker.commit()
            time.sleep(after)
        pg_cluster.stop("immediate")
        out, err = proc.communicate(timeout=300)
        try:
            blocker.close()
        except psycopg.Error:
            pass
        pg_cluster.start()
        cli(a, "site", "sync")
        site = pg_cluster.sql(f"SELECT p.id, (SELECT count(*) FROM photos f WHERE f.person_id = p.id), "
                              f"(SELECT count(*) FROM templates t WHERE t.person_id = p.id) FROM people p "
                              f"WHERE p.name = '{name}'", pg_db)
        here = local(a, "SELECT p.id, (SELECT count(*) FROM photos f WHERE f.person_id = p.id), "
                        "(SELECT count(*) FROM templates t WHERE t.person_id = p.id) FROM people p WHERE p.name = ?",
                     (name,))
        assert site == here, (site, here)
        if site:
            assert site[0][1] == site[0][2] == len(OBAMA)
            audited = pg_cluster.sql(f"SELECT count(*) FROM audit WHERE action = 'person.add' "
                                     f"AND target = 'person:{site[0][0]}'", pg_db)[0][0]
            assert audited == 1
        else:
            assert proc.returncode == 1 and err.count("\n") == 1 and "faceapp: error:" in err, err
        if after is None:
            assert not site    # killed with the enrollment's transaction open
        outcomes.append(bool(site))
    print("enrolled despite the kill:", outcomes)


def test_two_stations_enrolling_the_same_name_one_wins(tmp_path, models_dir, pg_cluster, pg_db):
    a = make_home(tmp_path, "a", models_dir)
    b = make_home(tmp_path, "b", models_dir)
    url = pg_cluster.url(pg_db)
    cli(a, "site", "create", url, "--import-local", "--station", "A")
    cli(b, "site", "join", url, "--station", "B")
    procs = [cli_bg(a, "enroll", "Barack Obama", *OBAMA[:2]), cli_bg(b, "enroll", "Barack Obama", *OBAMA[1:])]
    results = [(p.wait(300), p.stderr.read()) for p in procs]
    codes = sorted(r[0] for r in results)
    assert codes == [0, 1], results
    loser = next(err for code, err in results if code == 1)
    assert loser.startswith("faceapp: error:") and "already" in loser, loser
    assert pg_cluster.sql("SELECT count(*) FROM people WHERE name = 'Barack Obama'", pg_db) == [(1,)]
    cli(a, "site", "sync")
    cli(b, "site", "sync")
    for home in (a, b):
        assert local(home, "SELECT count(*) FROM people WHERE name = 'Barack Obama'") == [(1,)]


def test_roles_station_cannot_delete_audit_or_change_people(tmp_path, models_dir, pg_cluster, pg_db):
    a = make_home(tmp_path, "a", models_dir)
    door = make_home(tmp_path, "door", models_dir)
    cli(a, "enroll", "Lin-Manuel Miranda", *LIN)
    cli(a, "site", "create", pg_cluster.url(pg_db), "--import-local", "--station", "A")
    roles = cli(a, "site", "roles").stdout
    # Roles are cluster-wide: make this test's names unique.
    suffix = pg_db[-6:]
    roles = roles.replace("faceapp_station", f"st_{suffix}").replace("faceapp_admin", f"ad_{suffix}")
    roles = roles.replace("change-me-station", "station-pw").replace("change-me-admin", "admin-pw")
    with psycopg.connect(pg_cluster.url(pg_db), autocommit=True) as owner:
        owner.execute(roles)
        with pytest.raises(psycopg.Error, match="append-only"):
            owner.execute("DELETE FROM audit")
        with pytest.raises(psycopg.Error, match="append-only"):
            owner.execute("TRUNCATE audit")
    station_url = pg_cluster.url(pg_db, f"st_{suffix}", "station-pw")
    with psycopg.connect(station_url, autocommit=True) as st:
        for sql in ("DELETE FROM audit", "DELETE FROM people", "UPDATE people SET active = 0",
                    "INSERT INTO people (id, name, created) VALUES (99, 'x', 'now')", "DELETE FROM entries"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                st.execute(sql)
        assert st.execute("SELECT count(*) FROM templates").fetchone()[0] == 1
    admin_url = pg_cluster.url(pg_db, f"ad_{suffix}", "admin-pw")
    with psycopg.connect(admin_url, autocommit=True) as ad:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            ad.execute("DELETE FROM audit")

    # A door station joined with the station role: recognises and logs, may not change people.
    cli(door, "site", "join", station_url, "--station", "Door")
    refused = cli(door, "people", "remove", "Lin-Manuel Miranda", check=False)
    assert refused.returncode == 1 and "administrator" in refused.stderr
    assert local(door, "SELECT count(*) FROM people") == [(1,)]
    assert pg_cluster.sql("SELECT count(*) FROM people", pg_db) == [(1,)]
    ident = json.loads(cli(door, "identify", "--json", LIN[0]).stdout.splitlines()[0])
    assert [f["person"] for f in ident["faces"]] == ["Lin-Manuel Miranda"]


def test_offline_station_refuses_admin_changes_and_changes_nothing(tmp_path, models_dir, pg_cluster, pg_db):
    a = make_home(tmp_path, "a", models_dir)
    cli(a, "site", "create", pg_cluster.url(pg_db), "--import-local", "--station", "A")
    pg_cluster.stop("fast")
    try:
        r = cli(a, "door", "add", "Back door", check=False)
        assert r.returncode == 1 and r.stderr.count("\n") == 1 and "unreachable" in r.stderr
        assert SUPERUSER_PASSWORD not in r.stderr
        assert local(a, "SELECT count(*) FROM doors") == [(0,)]
        status = cli(a, "site", "status").stdout
        assert "offline since" in status
        # Local, station-only things still work: the entry log, a local setting.
        assert cli(a, "log", "list").returncode == 0
    finally:
        pg_cluster.start()
    cli(a, "door", "add", "Back door")
    assert pg_cluster.sql("SELECT name FROM doors", pg_db) == [("Back door",)]
    assert os.path.exists(a / "site.pgpass")
    cli(a, "site", "leave")
    assert not (a / "site.pgpass").exists()
    assert json.loads(cli(a, "site", "status", "--json").stdout)["site"] is None


def test_restore_on_a_station_is_refused_and_changes_nothing(tmp_path, models_dir, pg_cluster, pg_db):
    """A station's data comes from the site: a backup restored over it would silently end its
    membership (and lose entries not yet uploaded). Refused with one line; it stays a station."""
    a = make_home(tmp_path, "a", models_dir)
    cli(a, "site", "create", pg_cluster.url(pg_db), "--import-local", "--station", "A")
    cli(a, "door", "add", "Back door")
    backup = tmp_path / "a.faceapp-backup"
    cli(a, "backup", str(backup))
    r = cli(a, "restore", str(backup), "--yes", check=False)
    assert r.returncode == 1 and r.stderr.count("\n") == 1
    assert "station 'A'" in r.stderr and "faceapp site leave" in r.stderr and SUPERUSER_PASSWORD not in r.stderr
    assert not (a / "backups").exists() or not list((a / "backups").glob("before-restore-*"))
    assert json.loads(cli(a, "site", "status", "--json").stdout)["station"] == "A"
    assert local(a, "SELECT name FROM doors") == [("Back door",)]
