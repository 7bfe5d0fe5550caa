"""`faceapp selftest`: the window on a real video recognises an enrolled person and quits;
nobody enrolled is a clear error. Run as a real process, as an office would run it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from faceapp.service.enroll import enroll_files

from conftest import HAMILTON, person_photos

pytestmark = pytest.mark.gui


def _selftest(home, *extra) -> subprocess.CompletedProcess:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    return subprocess.run([sys.executable, "-m", "faceapp", "--home", str(home), "selftest", str(HAMILTON), *extra],
                          capture_output=True, text=True, env=env, timeout=900)


def test_selftest_recognises_an_enrolled_person(app, home):
    enroll_files(app, "Lin Manuel Miranda", person_photos("face_recognition_examples", "Lin_Manuel_Miranda"))
    r = _selftest(home)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "recognised: Lin Manuel Miranda"
    assert app.store.query("SELECT COUNT(*) AS n FROM entries")[0]["n"] == 0  # a check, not an entry


def test_selftest_without_anyone_enrolled_fails_clearly(home):
    r = _selftest(home, "--timeout", "5")
    assert r.returncode == 1
    assert "faceapp: error: nobody enrolled was recognised" in r.stderr
