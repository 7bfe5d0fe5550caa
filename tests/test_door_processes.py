"""A person removed while `faceapp watch` runs in another process (#11 item 9, #17 item 4): real
processes on the real Hamilton clip. The station is paused (SIGSTOP) right after it granted Lin,
`faceapp people remove` commits in a third process, the station continues (SIGCONT): from then on
it must not grant Lin, every grant it printed must be a logged entry, and nothing is dropped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from conftest import HAMILTON, person_photos
from faceapp.service.app import App
from faceapp.service.enroll import enroll_files
from faceapp.store.attendance import AttendanceStore

LIN = "Lin Manuel Miranda"

pytestmark = pytest.mark.slow


def faceapp(home, *argv: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "faceapp", "--home", str(home), *argv],
                          capture_output=True, text=True, timeout=600, **kw)


def test_a_person_removed_while_the_station_runs_is_never_granted_again(tmp_path, models_dir, engine):
    home = tmp_path / "home"
    home.mkdir()
    (home / "models").symlink_to(models_dir, target_is_directory=True)
    with App(home, engine=engine) as app:
        for folder in ("Lin_Manuel_Miranda", "Alex_Lacamoire"):
            enroll_files(app, folder.replace("_", " "), person_photos("face_recognition_examples", folder))
        app.update_settings(cooldown_seconds=0.0)   # every new track of Lin would be a new grant
    station = subprocess.Popen([sys.executable, "-m", "faceapp", "--home", str(home), "watch", str(HAMILTON),
                                "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    events = []
    try:
        for line in station.stdout:
            events.append(json.loads(line))
            if events[-1]["person"] == LIN and events[-1]["decision"] == "granted":
                break
        assert events and events[-1]["person"] == LIN, "the station never granted Lin"
        os.kill(station.pid, signal.SIGSTOP)
        try:
            removed = faceapp(home, "people", "remove", LIN)
        finally:
            os.kill(station.pid, signal.SIGCONT)
        assert removed.returncode == 0, removed.stderr
        before = len(events)
        events += [json.loads(line) for line in station.stdout]
        _, err = station.communicate(timeout=600)
    finally:
        if station.poll() is None:
            station.kill()
            station.wait()
    assert station.returncode == 0, err
    after = events[before:]
    assert not [e for e in after if e["decision"] == "granted" and e["person"] == LIN]
    assert all(e["entry_id"] is not None for e in events)     # nothing printed that is not in the log
    assert "could not log" not in err
    with App(home, engine=engine) as app:
        logged = AttendanceStore(app.store).entries()
        [removal] = [r for r in app.store.query("SELECT time FROM audit WHERE action = 'person.remove'")]
    assert [r.id for r in logged] == [e["entry_id"] for e in events]      # nothing lost, nothing extra
    granted_lin = [r for r in logged if r.person_name == LIN and r.decision == "granted"]
    assert granted_lin and all(r.time < removal["time"] for r in granted_lin)
