"""The desktop application built by installer/build.sh runs without Python or the repository:
its version, installing and verifying models, identifying a photo, the window recognising a
face on a video (offscreen), and the .deb installing, upgrading and uninstalling without
touching the data folder.

Slow (the build takes 5-15 minutes): runs only when asked, so that a developer's whole-suite
run does not build the application. CI asks (.ci/run sets FACEAPP_TEST_BUILD=1); by hand:

    FACEAPP_TEST_BUILD=1 python -m pytest tests/test_frozen_app.py
    FACEAPP_FROZEN_APP=dist/faceapp FACEAPP_FROZEN_DEB=dist/faceapp_0.1.0_amd64.deb \
        python -m pytest tests/test_frozen_app.py      # test an existing build instead
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from faceapp import __version__

from conftest import HAMILTON, REPO, SHARED, person_photos

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (os.environ.get("FACEAPP_TEST_BUILD") == "1" or os.environ.get("FACEAPP_FROZEN_APP")),
                       reason="builds the desktop application: set FACEAPP_TEST_BUILD=1 (CI does)"),
]

BUILD_TIMEOUT = 3 * 3600  # seconds; a 2-core machine at load 12 took 12 minutes


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> dict[str, Path]:
    """{"app": the one-folder application, "deb": the .deb or None}."""
    prebuilt = os.environ.get("FACEAPP_FROZEN_APP")
    if prebuilt:
        deb = os.environ.get("FACEAPP_FROZEN_DEB")
        return {"app": Path(prebuilt).resolve(), "deb": Path(deb).resolve() if deb else None}
    dist = tmp_path_factory.mktemp("dist")
    # The interpreter running the tests has every dependency: build from it (build.sh adds
    # PyInstaller if missing) and reuse the repository's PyInstaller work folder between runs.
    # An uncompressed .deb: gzip would add many minutes on a busy CI machine and tests nothing of ours.
    env = dict(os.environ, FACEAPP_BUILD_VENV=sys.prefix, FACEAPP_DIST_DIR=str(dist), FACEAPP_DEB_COMPRESSION="none")
    subprocess.run(["bash", str(REPO / "installer" / "build.sh")], check=True, env=env, timeout=BUILD_TIMEOUT)
    debs = sorted(dist.glob("faceapp_*.deb"))
    return {"app": dist / "faceapp", "deb": debs[0] if debs else None}


def _clean_env(home: Path | None = None) -> dict[str, str]:
    """No Python of ours in sight: the frozen app must bring everything it needs."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "VIRTUAL_ENV", "QT_", "FACEAPP_", "XDG_"))}
    venv_bin = str(Path(sys.prefix) / "bin")
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    env["QT_QPA_PLATFORM"] = "offscreen"
    if home is not None:
        env["HOME"] = str(home)
    return env


def _run(exe: Path, *args, home: Path | None = None, cwd: Path | None = None,
         timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env=_clean_env(home), cwd=cwd)


def test_the_built_app_works_on_its_own(build, tmp_path):
    app_dir = tmp_path / "somewhere-else" / "faceapp"
    shutil.copytree(build["app"], app_dir, symlinks=True)  # not tied to where it was built
    exe = app_dir / "faceapp"
    home = tmp_path / "data"

    r = _run(exe, "--version", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"faceapp {__version__}"

    r = _run(exe, "--home", home, "models", "install", "--from", SHARED / "models", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = _run(exe, "--home", home, "models", "verify", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "buffalo_sc/w600k_mbf.onnx: ok" in r.stdout

    photos = person_photos("face_recognition_examples", "Lin_Manuel_Miranda")
    r = _run(exe, "--home", home, "enroll", "Lin Manuel Miranda", *photos, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    group = SHARED / "faces" / "face_recognition_examples" / "Alex_Lacamoire"
    probe = next(p for p in sorted(group.iterdir()) if p.is_file())
    r = _run(exe, "--home", home, "identify", "--json", photos[0], probe, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    results = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    assert [f["person"] for f in results[0]["faces"]] == ["Lin Manuel Miranda"]
    assert results[1]["faces"] and all(f["person"] is None for f in results[1]["faces"])

    # The window (offscreen): Qt platform plugins, the camera thread, the engine and the overlay.
    r = _run(exe, "--home", home, "selftest", HAMILTON, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip() == "recognised: Lin Manuel Miranda"


def test_the_built_app_carries_its_notices(build):
    app_dir = build["app"]
    notices = (app_dir / "THIRD-PARTY-NOTICES.txt").read_text(encoding="utf-8")
    for needle in ("Qt 6 - LGPL-3.0-only", "ONNX Runtime - MIT", "Apache-2.0", "insightface", "BSD-3-Clause"):
        assert needle in notices
    lic = app_dir / "licenses"
    for name in ("LGPL-3.0.txt", "GPL-3.0.txt", "faceapp-LICENSE.txt", "Python-LICENSE.txt"):
        assert (lic / name).is_file(), name
    assert any((lic / "onnxruntime").glob("*ThirdPartyNotices*"))
    # Qt stays replaceable: separate shared libraries, not linked into the executable.
    qt_libs = list(app_dir.rglob("libQt6Core.so*"))
    assert qt_libs, "Qt is not a separate shared library"


def _dpkg(root: Path, *args) -> subprocess.CompletedProcess:
    return subprocess.run(["dpkg", f"--root={root}", "--force-not-root", "--force-depends",
                           "--force-script-chrootless", "--log=/dev/null", *map(str, args)],
                          capture_output=True, text=True, timeout=900)


def test_deb_install_upgrade_remove_keeps_the_data(build, tmp_path):
    """Into a private dpkg root (the machine's own packages are not touched)."""
    if build["deb"] is None or shutil.which("dpkg") is None:
        pytest.skip("no .deb was built (dpkg-deb missing)")
    root = tmp_path / "root"
    for d in ("var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers"):
        (root / d).mkdir(parents=True)
    (root / "var/lib/dpkg/status").touch()
    r = _dpkg(root, "-i", build["deb"])
    assert r.returncode == 0, r.stdout + r.stderr
    launcher = root / "usr" / "bin" / "faceapp"
    assert (root / "opt" / "faceapp" / "faceapp").is_file()
    assert (root / "usr/share/applications/faceapp.desktop").is_file()
    home = tmp_path / "user"
    data = home / ".local" / "share" / "faceapp"  # the default data folder of that user
    r = _run(launcher, "models", "install", "--from", SHARED / "models", home=home)
    assert r.returncode == 0, r.stderr
    photos = person_photos("face_recognition_examples", "Lin_Manuel_Miranda")
    r = _run(launcher, "enroll", "Lin Manuel Miranda", photos[0], home=home)
    assert r.returncode == 0, r.stderr
    assert (data / "faceapp.db").is_file()

    # A newer version over it (same files, higher version number): the data stays.
    newer = tmp_path / "newer"
    pkg = newer / "pkg"
    newer.mkdir()
    subprocess.run(["dpkg-deb", "-R", str(build["deb"]), str(pkg)], check=True, timeout=900)
    control = (pkg / "DEBIAN" / "control").read_text()
    control = control.replace(f"Version: {__version__}", f"Version: {__version__}+1")
    (pkg / "DEBIAN" / "control").write_text(control)
    deb2 = newer / "faceapp_newer.deb"
    subprocess.run(["dpkg-deb", "-Znone", "--root-owner-group", "--build", str(pkg), str(deb2)],
                   check=True, capture_output=True, timeout=900)
    r = _dpkg(root, "-i", deb2)
    assert r.returncode == 0, r.stdout + r.stderr
    r = _run(launcher, "people", "list", home=home)
    assert r.returncode == 0 and "Lin Manuel Miranda" in r.stdout, r.stdout + r.stderr

    # Uninstall (even purge): the application goes, the data folder stays.
    r = _dpkg(root, "--purge", "faceapp")
    assert r.returncode == 0, r.stdout + r.stderr
    assert not (root / "opt" / "faceapp").exists() and not launcher.exists()
    assert (data / "faceapp.db").is_file() and (data / "models" / "buffalo_sc").is_dir()
