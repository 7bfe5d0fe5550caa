"""Issue #2 end to end through the CLI, with the real models and real photos."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from conftest import FACES, person_photos
from faceapp.cli import main

N_ENROLL = 5
COLLECTIONS = ("lfw_krasserm", "five_celebrity")


def run(home: Path, *argv: str) -> int:
    return main(["--home", str(home), *argv])


def _state(home: Path) -> tuple:
    """Everything a failed command must leave untouched."""
    from faceapp.store.db import Store

    with Store(home / "faceapp.db") as s:
        return tuple(s.query("SELECT id, name FROM people ORDER BY id")), s.template_count(), \
            s.conn.execute("SELECT COUNT(*) FROM photos").fetchone()[0]


@pytest.fixture(scope="module")
def enrolled_home(tmp_path_factory, models_dir):
    """A data folder with the first N photos of every lfw_krasserm and five_celebrity identity
    imported through `faceapp import`; the other photos are held back as probes."""
    home = tmp_path_factory.mktemp("home")
    (home / "models").symlink_to(models_dir, target_is_directory=True)
    src = tmp_path_factory.mktemp("import")
    probes: dict[str, list[Path]] = {}
    for coll in COLLECTIONS:
        for person_dir in sorted((FACES / coll).iterdir()):
            photos = person_photos(coll, person_dir.name)
            (src / person_dir.name).mkdir()
            for p in photos[:N_ENROLL]:
                shutil.copy(p, src / person_dir.name / p.name)
            probes[person_dir.name.replace("_", " ")] = photos[N_ENROLL:]
    assert run(home, "import", str(src)) == 0
    before = _state(home)
    assert run(home, "import", str(src)) == 0, "a finished import run again is not a failure"
    assert _state(home) == before
    return home, probes


def test_import_enrolled_everyone(enrolled_home, capsys):
    home, probes = enrolled_home
    assert run(home, "people", "list", "--json") == 0
    people = json.loads(capsys.readouterr().out)
    names = {p["name"].lower() for p in people}
    assert names == {n.lower() for n in probes}
    assert all(1 <= p["photos"] <= N_ENROLL for p in people)


def test_held_back_photos_are_identified(enrolled_home, capsys):
    home, probes = enrolled_home
    paths = [str(p) for ps in probes.values() for p in ps]
    run(home, "identify", "--json", *paths)
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert len(lines) == len(paths)
    truth = {str(p): n for n, ps in probes.items() for p in ps}
    correct = total = 0
    for obj in lines:
        faces = obj["faces"]
        if not faces:
            continue
        main_face = max(faces, key=lambda f: (f["bbox"][2] - f["bbox"][0]) * (f["bbox"][3] - f["bbox"][1]))
        assert set(main_face) >= {"bbox", "det_score", "person", "person_id", "distance", "similarity", "known"}
        assert main_face["similarity"] == pytest.approx(1 - main_face["distance"], abs=1e-3)
        total += 1
        correct += (main_face["person"] or "").lower() == truth[obj["image"]].lower()
    assert total >= 0.95 * len(paths)
    assert correct / total >= 0.95, f"{correct}/{total} held-back photos identified"


def test_unknown_people_are_unknown(enrolled_home, capsys):
    home, _ = enrolled_home
    singles = sorted(p for p in (FACES / "extras" / "lfw_singletons").rglob("*") if p.is_file())
    assert singles
    run(home, "identify", "--json", *map(str, singles))
    for line in capsys.readouterr().out.splitlines():
        for f in json.loads(line)["faces"]:
            assert f["known"] is False and f["person"] is None


def test_group_photo_gives_six_faces(enrolled_home, capsys):
    home, _ = enrolled_home
    assert run(home, "identify", "--json", str(FACES / "group_photos" / "insightface_t1.jpg")) == 0
    obj = json.loads(capsys.readouterr().out)
    assert len(obj["faces"]) == 6
    assert all(f["det_score"] > 0.5 for f in obj["faces"])


def test_verify_same_and_different(home, capsys):
    obama = person_photos("face_recognition_examples", "Barack_Obama")
    biden = person_photos("face_recognition_examples", "Joe_Biden")
    assert run(home, "verify", "--json", str(obama[0]), str(FACES / "extras" / "face_recognition_obama-240p.jpg")) == 0
    same = json.loads(capsys.readouterr().out)
    assert same["same_person"] is True
    assert run(home, "verify", "--json", str(obama[0]), str(biden[0])) == 0
    diff = json.loads(capsys.readouterr().out)
    assert diff["same_person"] is False and diff["distance"] > same["distance"]


def test_badge_crop_enrolls_and_matches(home, capsys):
    badge = FACES / "extras" / "insightface_Tom_Hanks_54745.png"
    assert Image.open(badge).size == (112, 112)
    assert run(home, "enroll", "Tom Hanks", str(badge), "--employee-id", "B-1") == 0
    capsys.readouterr()
    assert run(home, "identify", "--json", str(badge)) == 0
    assert json.loads(capsys.readouterr().out)["faces"][0]["person"] == "Tom Hanks"


@pytest.fixture
def bad_files(tmp_path):
    """Bad inputs made from real photos."""
    real = person_photos("face_recognition_examples", "Barack_Obama")[0]
    data = real.read_bytes()
    files = {}
    files["missing"] = tmp_path / "missing.jpg"
    (files.setdefault("empty", tmp_path / "empty.jpg")).write_bytes(b"")
    (files.setdefault("text", tmp_path / "notes.jpg")).write_text("not an image at all\n")
    (files.setdefault("truncated", tmp_path / "cut.jpg")).write_bytes(data[: len(data) // 3])
    huge = tmp_path / "huge.png"
    Image.new("1", (20000, 20000)).save(huge)
    files["huge"] = huge
    img = cv2.imread(str(real))
    noface = tmp_path / "noface.jpg"
    cv2.imwrite(str(noface), img[:60, -60:])  # a corner of background
    files["noface"] = noface
    files["group"] = FACES / "group_photos" / "insightface_t1.jpg"
    return files


@pytest.mark.parametrize("kind,message", [
    ("missing", "not found"), ("empty", "empty"), ("text", "not an image"), ("truncated", ""),
    ("huge", "too large"), ("noface", "no face"), ("group", "similar size")])
def test_bad_enrollment_input_changes_nothing(home, bad_files, capsys, kind, message):
    good = person_photos("face_recognition_examples", "Joe_Biden")[0]
    assert run(home, "enroll", "Joe Biden", str(good)) == 0
    before = _state(home)
    capsys.readouterr()
    assert run(home, "enroll", "Someone", str(good.parent / "biden2.jpg"), str(bad_files[kind])) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("faceapp: error:") and len(err.splitlines()) == 1
    assert message in err.lower()
    assert _state(home) == before


def test_dominant_face_with_bystanders_is_enrolled(home, tmp_path, capsys):
    big = cv2.imread(str(person_photos("face_recognition_examples", "Barack_Obama")[0]))
    small = cv2.imread(str(person_photos("face_recognition_examples", "Joe_Biden")[0]))
    h, w = big.shape[:2]
    by = cv2.resize(small, (w // 6, int(small.shape[0] * (w // 6) / small.shape[1])))
    big[: by.shape[0], : by.shape[1]] = by  # a small bystander in the corner
    path = tmp_path / "with_bystander.jpg"
    cv2.imwrite(str(path), big)
    assert run(home, "enroll", "Barack Obama", str(path)) == 0
    out = capsys.readouterr()
    assert "largest" in out.err
    # The template is Obama's face: another photo of him is named, another of the bystander is not.
    other_obama = person_photos("face_recognition_examples", "Barack_Obama")[1]
    other_biden = person_photos("face_recognition_examples", "Joe_Biden")[1]
    assert run(home, "identify", str(other_obama), str(other_biden), "--json") == 0
    results = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert [f["person"] for f in results[0]["faces"]] == ["Barack Obama"]
    assert [f["person"] for f in results[1]["faces"]] == [None]


def test_duplicate_name_and_unknown_person(home, capsys):
    photo = person_photos("face_recognition_examples", "Joe_Biden")[0]
    assert run(home, "enroll", "Joe Biden", str(photo)) == 0
    before = _state(home)
    other = person_photos("face_recognition_examples", "Rose_Leslie")[0]
    assert run(home, "enroll", "joe biden", str(other)) == 1
    assert "already enrolled" in capsys.readouterr().err
    assert run(home, "people", "remove", "Nobody Here") == 1
    assert "no enrolled person" in capsys.readouterr().err
    assert _state(home) == before
    assert run(home, "people", "remove", "Joe Biden") == 0
    assert _state(home)[1] == 0


def test_engine_accepts_any_pixel_format(engine):
    img = cv2.imread(str(person_photos("face_recognition_examples", "Barack_Obama")[0]))
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    rgba = np.dstack([img, np.full(img.shape[:2], 255, np.uint8)])
    deep = img.astype(np.uint16) * 257
    ref = engine.analyze(img)[0].embedding
    for variant in (gray, rgba, deep):
        faces = engine.analyze(variant)
        assert len(faces) == 1
        assert float(ref @ faces[0].embedding) > 0.8
