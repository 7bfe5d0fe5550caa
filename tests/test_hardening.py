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
