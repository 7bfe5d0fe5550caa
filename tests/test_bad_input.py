"""Issue #7: bad input at every entry point that tests/test_capture.py (load_image) and
tests/test_cli_core.py (enroll) do not cover already: identify, verify and import with broken
images; CSV exports to odd paths; odd names through the CLI; a damaged or newer database; a
damaged models folder; a camera that errors, stalls and sends garbage. Each gets one clear
line (`faceapp: error: ...`, exit 1) and nothing stored is lost."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import sqlite3
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import HAMILTON, person_photos
from faceapp.capture.sources import Frame, ResilientSource, SourceError, VideoFileSource
from faceapp.cli import main
from faceapp.core.errors import FaceAppError
from faceapp.service import attendance
from faceapp.service.app import App
from faceapp.service.enroll import enroll_files
from faceapp.service.pipeline import Pipeline
from faceapp.store.db import Store
from faceapp.store.migrations import SCHEMA_VERSION

OBAMA = person_photos("face_recognition_examples", "Barack_Obama")
BIDEN = person_photos("face_recognition_examples", "Joe_Biden")


def run(home: Path, *argv: str) -> int:
    return main(["--home", str(home), *argv])


def errors(capsys) -> list[str]:
    lines = capsys.readouterr().err.strip().splitlines()
    assert all(line.startswith("faceapp: error: ") for line in lines), lines
    return lines


def people_state(db: Path) -> tuple:
    with Store(db) as s:
        return tuple((r["name"], r["n"]) for r in s.query(
            "SELECT p.name, (SELECT COUNT(*) FROM templates t WHERE t.person_id = p.id) AS n FROM people p "
            "ORDER BY p.id"))


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict[str, Path]:
    """Broken files, and good-but-unusual encodings of a real Obama photo (not the enrolled one)."""
    d = tmp_path_factory.mktemp("images")
    real = OBAMA[1]
    data = real.read_bytes()
    rgb = Image.open(real).convert("RGB")
    files = {}

    def put(name: str) -> Path:
        files[name.split(".")[0]] = d / name
        return d / name

    put("empty.jpg").write_bytes(b"")
    put("notes.jpg").write_text("this is not a picture\n")
    put("cut.jpg").write_bytes(data[: len(data) // 3])
    Image.new("1", (20000, 20000)).save(put("huge.png"))
    Image.new("RGB", (20000, 1), (128, 128, 128)).save(put("strip.png"))  # a picture, but no face fits
    rgb.convert("CMYK").save(put("cmyk.jpg"), "JPEG", quality=95)
    Image.fromarray((np.asarray(rgb.convert("L")).astype(np.uint16) * 257)).save(put("deep.png"))
    rgb.save(put("anim.gif"), save_all=True, append_images=[Image.open(BIDEN[0]).convert("RGB").resize(rgb.size)],
             duration=100, loop=0)
    rgb.save(put("really_a_png.jpg"), "PNG")  # wrong extension
    assert Image.open(files["deep"]).mode.startswith("I")
    return files


BROKEN = ("empty", "notes", "cut", "huge")
UNUSUAL = ("cmyk", "deep", "anim", "really_a_png")


@pytest.fixture(scope="module")
def obama_home(tmp_path_factory, models_dir, engine) -> Path:
    home = tmp_path_factory.mktemp("obama_home")
    (home / "models").symlink_to(models_dir, target_is_directory=True)
    with App(home, engine=engine) as app:
        enroll_files(app, "Barack Obama", OBAMA[:1])
    return home


# -- images at identify / verify / import ---------------------------------------------------------------
def test_identify_reports_each_bad_image_and_goes_on(obama_home, images, capsys):
    before = people_state(obama_home / "faceapp.db")
    order = [*BROKEN, *UNUSUAL, "strip"]
    assert run(obama_home, "identify", "--json", *(str(images[k]) for k in order)) == 1
    out = capsys.readouterr()
    errs = out.err.strip().splitlines()
    assert len(errs) == len(BROKEN) and all(e.startswith("faceapp: error: ") for e in errs)
    for kind, line in zip(BROKEN, errs):
        assert images[kind].name in line
    assert "too large" in errs[3] and "empty" in errs[0]
    results = {Path(o["image"]).stem: o for o in map(json.loads, out.out.splitlines())}
    for kind in UNUSUAL:
        assert [f["person"] for f in results[kind]["faces"]] == ["Barack Obama"], kind
    assert results["strip"]["faces"] == []
    assert people_state(obama_home / "faceapp.db") == before


@pytest.mark.parametrize("kind", BROKEN)
def test_verify_with_a_bad_image_is_one_line(obama_home, images, capsys, kind):
    assert run(obama_home, "verify", str(OBAMA[2]), str(images[kind])) == 1
    (line,) = errors(capsys)
    assert images[kind].name in line


def test_verify_unusual_encodings_of_one_person(obama_home, images, capsys):
    assert run(obama_home, "verify", "--json", str(images["cmyk"]), str(images["anim"])) == 0
    assert json.loads(capsys.readouterr().out)["same_person"] is True
    assert run(obama_home, "verify", "--json", str(images["deep"]), str(BIDEN[0])) == 0
    assert json.loads(capsys.readouterr().out)["same_person"] is False


def test_import_rejects_bad_files_and_keeps_everything_else(home, engine, images, tmp_path, capsys):
    with App(home, engine=engine) as app:
        enroll_files(app, "Barack Obama", OBAMA[:2])
    before = people_state(home / "faceapp.db")
    src = tmp_path / "import from 'HR' ü"
    (src / "Joe_Biden").mkdir(parents=True)
    (src / "Only_Bad").mkdir()
    for p in BIDEN:
        shutil.copy(p, src / "Joe_Biden" / p.name)
    for kind in BROKEN:
        shutil.copy(images[kind], src / "Joe_Biden" / images[kind].name)
        shutil.copy(images[kind], src / "Only_Bad" / images[kind].name)
    assert run(home, "import", str(src)) == 0
    out = capsys.readouterr().out
    assert f"{len(BIDEN)} photos accepted, {2 * len(BROKEN)} rejected; 1 people enrolled" in out
    for kind in BROKEN:
        assert str(src / "Joe_Biden" / images[kind].name) in out
    assert "skipped" in out and "Only_Bad: no usable photo" in out
    after = people_state(home / "faceapp.db")
    assert after == (*before, ("Joe Biden", len(BIDEN)))


# -- exports to odd paths ---------------------------------------------------------------------------------
ODD_NAMES = ["with space.csv", "quote ' and \" both.csv", "ünïcödé 😀.csv", "=cmd|' calc'!A0.csv", "semi;colon,comma.csv"]


def test_exports_to_odd_paths(obama_home, tmp_path, capsys):
    folder = tmp_path / "Reports 'Q3' \"final\" ü 😀"
    folder.mkdir()
    for i, name in enumerate(ODD_NAMES):
        cmd = [("log", "export"), ("log", "report"), ("audit", "export")][i % 3]
        target = folder / name
        assert run(obama_home, *cmd, "-o", str(target)) == 0, name
        with open(target, encoding="utf-8", newline="") as fh:
            header = next(csv.reader(fh))
        assert header[0] in ("time", "date")
    capsys.readouterr()
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]
    for cmd in (("log", "export"), ("audit", "export")):
        assert run(obama_home, *cmd, "-o", str(tmp_path / "missing folder" / "x.csv")) == 1
        (line,) = errors(capsys)
        assert "does not exist" in line
        assert run(obama_home, *cmd, "-o", str(folder)) == 1  # a folder, not a file
        (line,) = errors(capsys)
        assert "is a folder" in line


# -- names ----------------------------------------------------------------------------------------------------
def test_odd_names_through_the_cli(home, tmp_path, capsys):
    quoted = "Dr. O'Brien \"Bob\" 😀 Ñandú"
    long = "Zoë " + "x" * 196
    assert len(long) == 200
    assert run(home, "enroll", quoted, str(person_photos("face_recognition_examples", "Rose_Leslie")[0])) == 0
    assert run(home, "enroll", long, str(person_photos("face_recognition_examples", "Kit_Harington")[0])) == 0
    before = people_state(home / "faceapp.db")
    capsys.readouterr()
    assert run(home, "enroll", long + "y", str(BIDEN[0])) == 1
    (line,) = errors(capsys)
    assert "at most 200 characters" in line
    assert run(home, "enroll", "Bell\x07Ringer", str(BIDEN[0])) == 1
    assert "control characters" in errors(capsys)[0]
    assert people_state(home / "faceapp.db") == before
    assert run(home, "people", "list", "--json") == 0
    assert {p["name"] for p in json.loads(capsys.readouterr().out)} == {quoted, long}
    assert run(home, "people", "export", long, "-o", str(tmp_path / f"{quoted}.zip")) == 0
    assert run(home, "audit", "list", "--json", "--person", quoted) == 0
    capsys.readouterr()
    assert run(home, "people", "remove", quoted) == 0
    assert people_state(home / "faceapp.db") == (before[1],)


# -- a damaged or newer database -----------------------------------------------------------------------------
def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("kind", ["corrupt", "newer"])
def test_unusable_database_is_refused_and_left_alone(tmp_path, models_dir, capsys, kind):
    home = tmp_path / "home"
    home.mkdir()
    (home / "models").symlink_to(models_dir, target_is_directory=True)
    db = home / "faceapp.db"
    if kind == "corrupt":
        db.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 64)
        expected = "is not a usable faceapp database"
    else:
        Store(db).close()
        conn = sqlite3.connect(db)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        conn.commit()
        conn.close()
        expected = "newer faceapp"
    digest = _digest(db)
    out = tmp_path / "out"
    out.mkdir()
    for argv in (("people", "list"), ("identify", str(OBAMA[0])), ("audit", "list"), ("purge",),
                 ("backup", str(out / "b.faceapp-backup")), ("log", "export", "-o", str(out / "x.csv")),
                 ("enroll", "Someone", str(OBAMA[0]))):
        assert run(home, *argv) == 1, argv
        (line,) = errors(capsys)
        assert expected in line
    assert _digest(db) == digest
    assert list(out.iterdir()) == []
    assert sorted(p.name for p in home.iterdir()) == ["faceapp.db", "models"]


# -- a damaged models folder ----------------------------------------------------------------------------------
@pytest.mark.parametrize("damage", ["truncated", "wrong_file"])
def test_damaged_model_files_are_refused_with_the_fix(tmp_path, models_dir, obama_home, capsys, damage):
    home = tmp_path / "home"
    shutil.copytree(models_dir / "buffalo_sc", home / "models" / "buffalo_sc")
    shutil.copyfile(obama_home / "faceapp.db", home / "faceapp.db")
    before = people_state(home / "faceapp.db")
    pack = home / "models" / "buffalo_sc"
    rec, det = pack / "w600k_mbf.onnx", pack / "det_500m.onnx"
    if damage == "truncated":
        rec.write_bytes(rec.read_bytes()[: rec.stat().st_size // 2])
    else:  # the right size, the wrong content (a part of the other model)
        det.write_bytes(rec.read_bytes()[: det.stat().st_size])
    for argv in (("identify", str(OBAMA[0])), ("enroll", "Joe Biden", str(BIDEN[0]))):
        assert run(home, *argv) == 1
        (line,) = errors(capsys)
        assert "faceapp models install --pack buffalo_sc" in line
        assert ("w600k_mbf.onnx" if damage == "truncated" else "det_500m.onnx") in line
    assert people_state(home / "faceapp.db") == before


# -- camera faults ----------------------------------------------------------------------------------------------
GARBAGE = [np.zeros((0, 0, 3), np.uint8), np.zeros(10, np.uint8), np.full((360, 640, 3), np.nan, np.float32),
           np.zeros((2, 2, 3), np.uint8), np.zeros((50, 50, 5), np.uint8), np.empty((4, 4, 3), object),
           np.zeros((1, 20000, 3), np.uint8), np.ones((64, 64), bool), np.zeros((8, 8, 3), np.complex64)]


@pytest.fixture(scope="module")
def lin_frames() -> list[np.ndarray]:
    """Frames 85-124 of the Hamilton clip, where Lin-Manuel Miranda fills the picture."""
    src = VideoFileSource(HAMILTON)
    src.open()
    out = []
    try:
        while len(out) < 40:
            frame = src.read()
            assert frame is not None
            if frame.index >= 85:
                out.append(frame.image)
    finally:
        src.close()
    return out


class FlakyCamera:
    """A camera that misbehaves: a script shared across reconnects of frames, garbage arrays,
    read errors, driver exceptions and stalls; ends (None) when the script is done."""

    live = False
    fps = 25.0
    description = "flaky camera"

    def __init__(self, script: list, opened: list) -> None:
        self.script = script
        self.index = 0
        opened.append(self)
        if len(opened) == 1:
            raise SourceError("device busy")

    def open(self) -> None:
        pass

    def read(self) -> Frame | None:
        if not self.script:
            return None
        item = self.script.pop(0)
        if isinstance(item, BaseException):
            raise item
        if isinstance(item, tuple):  # ("stall", seconds, image)
            time.sleep(item[1])
            item = item[2]
        self.index += 1
        return Frame(item, self.index, time.monotonic(), None)

    def close(self) -> None:
        pass


def test_flaky_camera_never_stops_the_station(home, engine, lin_frames):
    with App(home, engine=engine) as app:
        enroll_files(app, "Lin Manuel Miranda", person_photos("face_recognition_examples", "Lin_Manuel_Miranda"))
        script: list = []
        for i, image in enumerate(lin_frames):
            script.append(image)
            if i % 4 == 1:
                script.append(GARBAGE[(i // 4) % len(GARBAGE)])
            if i == 10:
                script.append(SourceError("USB glitch"))
            if i == 20:
                script.append(RuntimeError("driver bug"))
            if i == 30:
                script.append(("stall", 0.5, image))
        opened: list = []
        source = ResilientSource(lambda: FlakyCamera(script, opened), retry_initial=0.01, retry_max=0.05)
        done = threading.Event()
        result = {}

        def station() -> None:
            result["summary"] = attendance.watch(app, source, door="Lobby")
            done.set()

        t = threading.Thread(target=station, daemon=True)
        t.start()
        t.join(300)
        assert done.is_set(), "the station froze"
        summary = result["summary"]
        assert summary.stopped_by == "eof"
        assert len(opened) == 4  # busy at first, then reconnected after each of the two failures
        assert summary.frames >= len(lin_frames)  # every real frame was processed, garbage skipped
        assert "Lin Manuel Miranda" in {e.name for e in summary.events if e.decision == "granted"}
        rows = app.store.query("SELECT door, person_name FROM entries")
        assert {r["door"] for r in rows} == {"Lobby"}


def test_garbage_frames_are_rejected_or_normalised_by_the_pipeline(app, lin_frames):
    pipeline = Pipeline(app, door="Lobby", log_entries=True)
    frames = [*GARBAGE, lin_frames[0].astype(np.float32) / 255.0, lin_frames[1].astype(np.uint16) * 257,
              lin_frames[2][:, :, 0], np.dstack([lin_frames[3], np.full(lin_frames[3].shape[:2], 255, np.uint8)])]
    outcomes = []
    for i, image in enumerate(frames):
        try:
            result = pipeline.process(Frame(image, i, time.monotonic(), None))
            outcomes.append(len(result.faces))
            assert result.image.dtype == np.uint8 and result.image.ndim == 3 and result.image.shape[2] == 3
        except FaceAppError as exc:
            outcomes.append(str(exc))
    rejected = [o for o in outcomes if isinstance(o, str)]
    assert len(rejected) == 5 and all("unsupported" in o for o in rejected)
    assert outcomes[-4:] == [1, 1, 1, 1]  # other pixel formats of a real frame still find the face
    assert pipeline.process(Frame(lin_frames[4], 99, time.monotonic(), None)).faces
