"""Store: migrations, transactions, people/photos/templates, settings, bad databases."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from faceapp.core.errors import DuplicateError, NotFoundError, StoreError
from faceapp.core.settings import Settings
from faceapp.store.db import NewPhoto, Store
from faceapp.store.migrations import SCHEMA_VERSION


def _photo(rng, dim=512):
    e = rng.normal(size=dim).astype(np.float32)
    return NewPhoto(crop=rng.integers(0, 255, (112, 112, 3), dtype=np.uint8), embedding=e / np.linalg.norm(e),
                    quality=0.9, source="x.jpg")


def test_fresh_database_is_migrated_and_wal(tmp_path):
    with Store(tmp_path / "f.db") as s:
        assert s.schema_version() == SCHEMA_VERSION
        assert s.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert s.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_people_photos_templates_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    with Store(tmp_path / "f.db") as s:
        pid = s.add_person("Ada Lovelace", "m1", [_photo(rng), _photo(rng)], employee_id="E7", department="R&D")
        p = s.get_person(pid)
        assert (p.name, p.employee_id, p.department, p.n_photos, p.n_templates) == ("Ada Lovelace", "E7", "R&D", 2, 2)
        assert s.find_person("ada lovelace").id == pid and s.find_person(str(pid)).id == pid
        g = s.gallery("m1")
        assert g.size == 2 and g.names[pid] == "Ada Lovelace"
        assert s.gallery("other-model").size == 0  # embeddings of different models are never mixed
        photos = s.photos(pid)
        assert photos[0].crop.shape == (112, 112, 3)
        s.remove_photo(photos[0].id)
        assert s.get_person(pid).n_templates == 1
        with pytest.raises(DuplicateError):
            s.add_person("ADA  lovelace", "m1", [_photo(rng)])
        s.update_person(pid, active=False)
        assert s.gallery("m1").size == 0 and s.gallery("m1", active_only=False).size == 1
        s.remove_person(pid)
        assert s.conn.execute("SELECT COUNT(*) FROM photos").fetchone()[0] == 0
        assert s.conn.execute("SELECT COUNT(*) FROM templates").fetchone()[0] == 0
        with pytest.raises(NotFoundError):
            s.find_person("Ada Lovelace")


def test_failed_enrollment_writes_nothing(tmp_path):
    rng = np.random.default_rng(1)
    bad = NewPhoto(crop=np.zeros((0, 0, 3), np.uint8), embedding=np.zeros(512, np.float32))
    with Store(tmp_path / "f.db") as s:
        with pytest.raises(StoreError, match="could not encode image"):
            s.add_person("Half Done", "m1", [_photo(rng), bad])
        assert s.list_people() == []
        assert s.conn.execute("SELECT COUNT(*) FROM photos").fetchone()[0] == 0


@pytest.mark.parametrize("name,ok", [("O'Brien, \"Bob\"", True), ("Zoë 😀 Ñandú", True), ("x" * 200, True),
                                     ("x" * 201, False), ("   ", False), ("bad\x07name", False)])
def test_names(tmp_path, name, ok):
    rng = np.random.default_rng(2)
    with Store(tmp_path / "f.db") as s:
        if ok:
            pid = s.add_person(name, "m1", [_photo(rng)])
            assert s.get_person(pid).name == name
        else:
            with pytest.raises(StoreError):
                s.add_person(name, "m1", [_photo(rng)])


def test_settings_persist(tmp_path):
    with Store(tmp_path / "f.db") as s:
        s.save_settings(Settings(camera="video.mp4").with_threshold("w600k_mbf", 0.5))
    with Store(tmp_path / "f.db") as s:
        got = s.load_settings()
        assert got.camera == "video.mp4" and got.threshold_for("w600k_mbf") == 0.5


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "f.db"
    Store(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    conn.close()
    with pytest.raises(StoreError, match="newer faceapp"):
        Store(path)


def test_corrupt_database_is_a_clear_error(tmp_path):
    path = tmp_path / "f.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="not a usable faceapp database"):
        Store(path)
    assert path.read_bytes().startswith(b"this is not")  # nothing overwritten
