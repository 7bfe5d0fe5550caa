"""Issue #7: SIGKILL at random moments during bulk import, enrollment and logging leaves a
database that opens, passes ``PRAGMA integrity_check`` and holds no half-enrolled person.

Real processes, really killed: `faceapp import` on real photos, `faceapp watch` on the
Hamilton clip, and a process enrolling people with many real crops per transaction (so that
most kills land inside a transaction). The delays are random but seeded
($FACEAPP_CRASH_SEED) so that a failure can be replayed.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import FACES, HAMILTON, person_photos
from faceapp.store.db import Store

pytestmark = pytest.mark.slow

SEED = int(os.environ.get("FACEAPP_CRASH_SEED", "20240531"))
MODEL = "w600k_mbf"  # buffalo_sc's recogniser
START_TIMEOUT = 90.0  # seconds for a child to reach its first write (model loading on a busy machine)


def faceapp_cmd(home: Path, *argv: str) -> list[str]:
    return [sys.executable, "-m", "faceapp", "--home", str(home), *argv]


def spawn(cmd: list[str], log: Path) -> subprocess.Popen:
    with open(log, "ab") as err:  # the child keeps its own copy of the handle
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})


def peek(db: Path, sql: str) -> int:
    """A number from the database as another process would see it right now (0 if not there yet)."""
    if not db.exists():
        return 0
    try:
        conn = sqlite3.connect(db, timeout=5)
        try:
            return int(conn.execute(sql).fetchone()[0] or 0)
        finally:
            conn.close()
    except sqlite3.Error:
        return 0  # still being created / migrated


def wait_for(proc: subprocess.Popen, db: Path, sql: str, above: int, log: Path) -> bool:
    """Wait until ``sql`` on ``db`` gives more than ``above`` (the child has started writing);
    False if the child finished successfully with nothing to write."""
    deadline = time.monotonic() + START_TIMEOUT
    while peek(db, sql) <= above:
        if proc.poll() is not None:
            if proc.returncode == 0:
                return False
            pytest.fail(f"child ended (rc {proc.returncode}) before writing: {log.read_text(errors='replace')[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("child did not start writing in time")
        time.sleep(0.02)
    return True


def kill(proc: subprocess.Popen) -> bool:
    """SIGKILL; True if the child was still running (so the kill interrupted it)."""
    alive = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    return alive


def check_consistent(db: Path) -> dict[str, int]:
    """The database opens and is whole: integrity, foreign keys, no half-enrolled person."""
    with Store(db) as s:  # opening replays the write-ahead log like the app would
        q = s.conn.execute
        assert q("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert q("PRAGMA foreign_key_check").fetchall() == []
        assert q("SELECT COUNT(*) FROM people p WHERE NOT EXISTS "
                 "(SELECT 1 FROM photos f WHERE f.person_id = p.id)").fetchone()[0] == 0, "person without photos"
        assert q("SELECT COUNT(*) FROM photos f WHERE NOT EXISTS (SELECT 1 FROM templates t "
                 "WHERE t.photo_id = f.id AND t.model_id = ?)", (MODEL,)).fetchone()[0] == 0, "photo without template"
        assert q("SELECT COUNT(*) FROM photos f WHERE NOT EXISTS "
                 "(SELECT 1 FROM people p WHERE p.id = f.person_id)").fetchone()[0] == 0, "orphan photo"
        assert q("SELECT COUNT(*) FROM templates t WHERE NOT EXISTS (SELECT 1 FROM photos f WHERE f.id = t.photo_id) "
                 "OR NOT EXISTS (SELECT 1 FROM people p WHERE p.id = t.person_id)").fetchone()[0] == 0, \
            "orphan template"
        # The audit row is written in the same transaction as the change it records.
        assert q("SELECT COUNT(*) FROM people p WHERE NOT EXISTS (SELECT 1 FROM audit a "
                 "WHERE a.action = 'person.add' AND a.target = 'person:' || p.id)").fetchone()[0] == 0
        for (snap,) in q("SELECT snapshot FROM entries WHERE snapshot IS NOT NULL"):
            assert cv2.imdecode(np.frombuffer(snap, np.uint8), cv2.IMREAD_COLOR) is not None
        s.photos()  # every stored crop decodes
        return {t: q(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("people", "photos", "entries", "audit")}


def test_import_killed_at_random_moments(home, tmp_path):
    """`faceapp import` of real LFW photos, killed 5 times mid-way; each run continues the last."""
    src = tmp_path / "to import"
    for person in sorted((FACES / "lfw_krasserm").iterdir()):
        (src / person.name).mkdir(parents=True)
        # All 100 photos: on a quiet machine fewer are imported before the later kills land.
        for photo in person_photos("lfw_krasserm", person.name):
            (src / person.name / photo.name).symlink_to(photo)
    db, log = home / "faceapp.db", tmp_path / "import.log"
    rng = random.Random(SEED)
    delays = [0.0] + [rng.uniform(0.05, 1.5) for _ in range(4)]
    interrupted = 0
    for delay in delays:
        before = peek(db, "SELECT MAX(id) FROM audit")
        proc = spawn(faceapp_cmd(home, "import", str(src)), log)
        if not wait_for(proc, db, "SELECT MAX(id) FROM audit", before, log):
            break   # an earlier run got to the end: nothing left to interrupt
        time.sleep(delay)
        interrupted += kill(proc)
        counts = check_consistent(db)
        assert counts["people"] >= 1
    assert interrupted >= 3, f"the imports ended before the kills (seed {SEED})"


ENROLLER = """
import sys
import numpy as np
from faceapp.store.db import NewPhoto, Store

data = np.load(sys.argv[2])
photos = [NewPhoto(c, e, 0.9, "real.jpg") for c, e in zip(data["crops"], data["embs"])] * 8
store = Store(sys.argv[1])
run, i = sys.argv[3], 0
while True:
    pid = store.add_person(f"Person {run}-{i}", "w600k_mbf", photos)
    store.add_photos(pid, "w600k_mbf", photos[:3])
    if i % 3 == 2:
        store.remove_person(pid)
    i += 1
"""


def test_enrollment_killed_inside_transactions(home, tmp_path, engine):
    """A process enrolling people of 24 real crops each (one transaction per person, then 3 more
    photos in another) killed 4 times: every person has exactly 24 or 27 photos, never a part."""
    crops, embs = [], []
    for path in person_photos("face_recognition_examples", "Barack_Obama")[:3]:
        face = engine.analyze_photo(cv2.imread(str(path)))[0]
        crops.append(face.crop)
        embs.append(face.embedding)
    data = tmp_path / "faces.npz"
    np.savez(data, crops=np.stack(crops), embs=np.stack(embs))
    script = tmp_path / "enroller.py"
    script.write_text(ENROLLER)
    db, log = home / "faceapp.db", tmp_path / "enroll.log"
    rng = random.Random(SEED + 1)
    for run in range(4):
        before = peek(db, "SELECT MAX(id) FROM audit")
        proc = spawn([sys.executable, str(script), str(db), str(data), str(run)], log)
        wait_for(proc, db, "SELECT MAX(id) FROM audit", before, log)
        time.sleep(rng.uniform(0.0, 0.6))
        assert kill(proc), "the enrolling process never ends by itself"
        check_consistent(db)
        with Store(db) as s:
            sizes = {r["n"] for r in s.query("SELECT COUNT(*) AS n FROM photos GROUP BY person_id")}
        assert sizes <= {24, 27}, f"half-enrolled people: photo counts {sorted(sizes)} (seed {SEED})"


def test_watch_killed_while_logging(home, tmp_path):
    """`faceapp watch` on the real Hamilton clip, killed twice after it started logging entries."""
    db, log = home / "faceapp.db", tmp_path / "watch.log"
    rng = random.Random(SEED + 2)
    for _ in range(2):
        before = peek(db, "SELECT COUNT(*) FROM entries")
        proc = spawn(faceapp_cmd(home, "watch", str(HAMILTON), "--door", "Main entrance"), log)
        wait_for(proc, db, "SELECT COUNT(*) FROM entries", before, log)
        time.sleep(rng.uniform(0.0, 1.0))
        kill(proc)
        counts = check_consistent(db)
        assert counts["entries"] > before
    with Store(db) as s:
        rows = s.query("SELECT decision, door, snapshot IS NOT NULL AS snap FROM entries")
    assert {r["door"] for r in rows} == {"Main entrance"}
    assert all(r["snap"] for r in rows if r["decision"] != "granted")
