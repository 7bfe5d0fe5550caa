"""Shared fixtures: real models from ../shared/models installed once per session through
the installer, real photos from ../shared/faces, a fresh data folder per test."""

from __future__ import annotations

import os
from pathlib import Path

# Before anything imports Qt: tests run without a display.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest

# opencv-python points Qt at its own bundled plugins; undo that for the whole session.
from faceapp.gui.qt_env import clean_qt_environment

clean_qt_environment()

REPO = Path(__file__).resolve().parents[1]


def _shared() -> Path:
    env = os.environ.get("FACEAPP_SHARED")
    path = Path(env) if env else REPO.parent / "shared"
    if not (path / "models").is_dir() or not (path / "faces").is_dir():
        pytest.exit(f"test data not found at {path} (set FACEAPP_SHARED to the folder with models/ and faces/)",
                    returncode=3)
    return path


SHARED = _shared()
FACES = SHARED / "faces"
HAMILTON = FACES / "videos" / "face_recognition_short_hamilton_clip.mp4"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return SHARED


@pytest.fixture(scope="session")
def faces_dir() -> Path:
    return FACES


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory) -> Path:
    """A models folder with buffalo_sc, opencv and the minifasnet liveness pack installed by our own
    installer from ../shared/models."""
    from faceapp.engine.installer import install_pack

    d = tmp_path_factory.mktemp("models")
    for pack in ("buffalo_sc", "opencv", "minifasnet"):
        install_pack(pack, d, source=SHARED / "models")
    return d


@pytest.fixture(scope="session")
def engine(models_dir):
    """The default engine (buffalo_sc), loaded once for the whole session."""
    from faceapp.engine.engine import EngineConfig, FaceEngine

    return FaceEngine(EngineConfig(pack="buffalo_sc", models_dir=models_dir)).prepare()


@pytest.fixture(scope="session")
def liveness(models_dir, engine):
    """The MiniFASNet liveness scorer, loaded once, sharing the engine's run lock as the App does."""
    from faceapp.engine.liveness import LivenessConfig, LivenessScorer

    return LivenessScorer(LivenessConfig.from_pack(models_dir), run_lock=engine.run_lock).prepare()


@pytest.fixture
def home(tmp_path, models_dir) -> Path:
    """A fresh data folder whose models/ points at the session's installed models."""
    h = tmp_path / "home"
    h.mkdir()
    (h / "models").symlink_to(models_dir, target_is_directory=True)
    return h


@pytest.fixture
def app(home, engine, liveness):
    """A fresh App (new database and settings) sharing the session's loaded engine and liveness scorer."""
    from faceapp.service.app import App

    a = App(home, engine=engine, liveness=liveness)
    yield a
    a.close()


def person_photos(collection: str, person: str) -> list[Path]:
    """Sorted photo files of one identity folder in ../shared/faces."""
    from faceapp.capture.images import iter_image_files

    return iter_image_files(FACES / collection / person)
