"""Attendance with real models, real photos and the real Hamilton clip: `faceapp watch` (CLI and
service), doors and groups, snapshots and their retention, CSV export and the daily report.

The full clip runs once per module through the CLI (module-scoped ``station``); the other
recognition tests replay a few dozen decoded frames of it."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
import shutil
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from faceapp.capture.images import load_image
from faceapp.capture.sources import ArraySource, VideoFileSource
from faceapp.cli import main
from faceapp.core.csvexport import ENTRY_HEADER, REPORT_HEADER, format_distance, local_iso
from faceapp.core.tracking import Tracker
from faceapp.core.types import BBox
from faceapp.service.app import App
from faceapp.service.attendance import entry_query, export_entries, purge_snapshots, watch
from faceapp.service.enroll import enroll_files
from faceapp.service.pipeline import Pipeline
from faceapp.store.attendance import AttendanceStore, EntryQuery, NewEntry, make_snapshot

from conftest import FACES, HAMILTON, person_photos

LIN, ALEX = "Lin Manuel Miranda", "Alex Lacamoire"
EVIL = "=cmd|' /C calc'!A0"
BIDEN = FACES / "face_recognition_examples" / "Joe_Biden"
LIN_FRAMES = range(85, 125)   # Lin-Manuel Miranda fills the picture here
OFFSET = re.compile(r"[+-]\d\d:\d\d$")


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def new_home(root: Path, models_dir: Path) -> Path:
    home = root / "home"
    home.mkdir(parents=True)
    (home / "models").symlink_to(models_dir, target_is_directory=True)
    return home


@pytest.fixture(scope="module")
def lin_frames() -> list[np.ndarray]:
    src = VideoFileSource(HAMILTON)
    src.open()
    frames = []
    try:
        while (frame := src.read()) is not None and frame.index < LIN_FRAMES.stop:
            if frame.index in LIN_FRAMES:
                frames.append(frame.image)
    finally:
        src.close()
    return frames


@pytest.fixture(scope="module")
def station(tmp_path_factory, models_dir, engine):
    """Lin and Alex enrolled (and a person with a hostile name); doors "Main entrance" (everyone)
    and "Lab" (group "band" = Alex only); `faceapp watch` run once over the whole clip."""
    root = tmp_path_factory.mktemp("station")
    home = new_home(root, models_dir)
    app = App(home, engine=engine)
    ids = {}
    for folder in ("Lin_Manuel_Miranda", "Alex_Lacamoire"):
        name = folder.replace("_", " ")
        ids[name], _ = enroll_files(app, name, person_photos("face_recognition_examples", folder))
    ids[EVIL], _ = enroll_files(app, EVIL, [BIDEN / "biden.jpg"])
    att = AttendanceStore(app.store)
    att.add_group("band")
    att.assign(ids[ALEX], "band")
    att.add_door("Main entrance")
    att.add_door("Lab", groups=["band"])
    code, out, err = cli("--home", str(home), "watch", str(HAMILTON), "--door", "main ENTRANCE", "--json")
    assert code == 0, err
    events = [json.loads(line) for line in out.splitlines() if line.strip()]
    yield SimpleNamespace(app=app, home=home, root=root, ids=ids, events=events, stderr=err, att=att)
    app.close()


def test_watch_logs_only_enrolled_people_once_each(station):
    named = [e["person"] for e in station.events if e["person"] is not None]
    assert LIN in named
    assert set(named) <= {LIN, ALEX}
    assert len(named) == len(set(named))   # once per cooldown, not once per frame (the clip is 9 s)
    for e in station.events:
        assert set(e) >= {"time", "door", "person", "person_id", "decision", "distance"}
        assert OFFSET.search(e["time"]) and e["door"] == "Main entrance"
        assert e["decision"] == ("granted" if e["person"] else "unknown")
        assert e["person_id"] == (station.ids[e["person"]] if e["person"] else None)
    assert "275 frames" in station.stderr and "stopped: eof" in station.stderr
    logged = station.att.entries(EntryQuery(door="Main entrance"))
    assert [r.id for r in logged] == [e["entry_id"] for e in station.events]
    assert [(r.person_name, r.decision) for r in logged] == [(e["person"], e["decision"]) for e in station.events]


def test_every_entry_keeps_a_useful_snapshot_and_its_face(station):
    logged = station.att.entries(EntryQuery(door="Main entrance"))
    model_id = station.app.model_id
    faces = {r["entry_id"]: r for r in station.app.store.query(
        "SELECT entry_id, model_id, embedding, visitor_id FROM entry_faces")}
    for r in logged:
        data = station.att.snapshot(r.id)
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        # The face at up to 160 px with half a face of context on each side: never a tiny crop.
        assert img is not None and max(img.shape[:2]) <= 2 * 160 + 2 and min(img.shape[:2]) >= 64, img.shape
        face = faces[r.id]
        assert face["model_id"] == model_id
        emb = np.frombuffer(face["embedding"], np.float32)
        assert emb.shape == (512,) and abs(float(np.linalg.norm(emb)) - 1.0) < 1e-3
        # Unknown events are grouped into visitors at once; known ones are not visitors.
        assert (face["visitor_id"] is not None) == (r.decision == "unknown")


def test_a_door_whose_groups_exclude_a_person_denies_them(station, lin_frames):
    summary = watch(station.app, ArraySource(lin_frames, description="lin"), door="lab")
    assert summary.door == "Lab" and summary.frames == len(lin_frames)
    assert [(e.name, e.decision) for e in summary.events] == [(LIN, "denied")]
    event = summary.events[0]
    assert event.reason == "not in a group admitted at Lab" and event.entry_id is not None
    assert event.snapshot and station.att.snapshot(event.entry_id) == event.snapshot
    # A door that is closed at this hour (its only window is on another weekday) denies everyone.
    tomorrow = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")[(datetime.now().weekday() + 1) % 7]
    station.att.add_door("Night exit", hours=f"{tomorrow} 00:00-24:00")
    closed = watch(station.app, ArraySource(lin_frames), door="Night exit")
    assert [(e.name, e.decision) for e in closed.events] == [(LIN, "denied")]
    assert "opening hours" in closed.events[0].reason


def test_one_entry_per_track_and_cooldown_across_tracks(station, lin_frames):
    lin_frames = lin_frames[:20]
    pipeline = Pipeline(station.app, door="Lab")   # log_entries=False: nothing written
    frames = ArraySource(lin_frames, loop=True)
    frames.open()
    passes = []
    for _ in range(2):
        pipeline.reset()   # the second walk is a new track of the same person
        events = []
        for _ in lin_frames:
            result = pipeline.process(frames.read())
            events += result.events
            assert len({f.candidate_id for f in result.faces if f.known}) == sum(f.known for f in result.faces)
        passes.append([(e.name, e.entry_id) for e in events])
    assert passes == [[(LIN, None)], []]
    # Without a cooldown the new track is a new entry; still one per track.
    pipeline.tracker = Tracker(replace(pipeline.tracker.config, cooldown_seconds=0.0))
    again = []
    for _ in range(2):
        pipeline.reset()
        again += [e.name for f in range(len(lin_frames)) for e in pipeline.process(frames.read()).events]
    assert again == [LIN, LIN]


def test_never_one_person_for_two_faces_of_a_frame(station, lin_frames):
    """The same person twice in one picture (two copies of the frame side by side): both faces are
    found, and at most one of them is given his name, on every frame."""
    pipeline = Pipeline(station.app, door="Main entrance")
    named_per_frame = []
    for frame in _frames([np.hstack([image, image]) for image in lin_frames[:20]]):
        result = pipeline.process(frame)
        assert len(result.faces) == 2
        known = [f.candidate_id for f in result.faces if f.known]
        assert len(known) == len(set(known))
        named_per_frame.append(len(known))
    assert max(named_per_frame) == 1  # he is named (once), not refused altogether


def test_the_pipeline_embeds_far_fewer_faces_than_it_shows(station, lin_frames):
    pipeline = Pipeline(station.app)
    results = [pipeline.process(f) for f in _frames(lin_frames)]
    shown = sum(len(r.faces) for r in results)
    embedded = sum(r.embedded for r in results)
    assert shown >= len(lin_frames) - 2
    assert embedded <= shown / 3
    assert all(f.name == LIN for r in results[3:] for f in r.faces if f.known)


def _frames(images):
    src = ArraySource(images)
    src.open()
    return [src.read() for _ in images]


def test_a_hostile_name_is_logged_and_exported_harmlessly(station, tmp_path):
    folder = tmp_path / "visitor"
    folder.mkdir()
    for i in range(3):  # three frames of a different photo than the enrolled one
        shutil.copy(BIDEN / "biden2.jpg", folder / f"frame{i}.jpg")
    summary = watch(station.app, str(folder), door="Main entrance")
    assert [(e.name, e.decision) for e in summary.events] == [(EVIL, "granted")]
    out = tmp_path / "log.csv"
    code, stdout, err = cli("--home", str(station.home), "log", "export", "--person", EVIL, "-o", str(out))
    assert code == 0, err
    raw = out.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8"), newline="")))
    assert rows[0] == list(ENTRY_HEADER) and len(rows) == 2
    assert rows[1][2] == "'" + EVIL and rows[1][3] == str(station.ids[EVIL])
    assert all(not line.startswith(("=", "+", "-", "@")) for line in raw.decode().splitlines())


def test_csv_export_round_trips_every_value(station, tmp_path):
    out = tmp_path / "all.csv"
    code, stdout, err = cli("--home", str(station.home), "log", "export", "--bom", "-o", str(out))
    assert code == 0, err
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    with out.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    records = station.att.entries()
    assert f"wrote {len(records)} entries" in stdout
    assert rows[0] == list(ENTRY_HEADER) and len(rows) == len(records) + 1
    people = {p.id: p for p in station.app.store.list_people()}
    for row, r in zip(rows[1:], records):
        name = r.person_name or ""
        p = people.get(r.person_id)
        info = [p.employee_id or "", p.department or ""] if p is not None else ["", ""]
        assert row == [local_iso(r.time), r.door, "'" + name if name.startswith("=") else name,
                       "" if r.person_id is None else str(r.person_id), *info, r.decision,
                       format_distance(r.distance), r.reason or "", str(r.id)]
        assert OFFSET.search(row[0])
    assert not list(tmp_path.glob(".*.tmp"))   # the temp file was renamed, not left behind


@pytest.fixture
def india(monkeypatch):
    """Local time UTC+05:30 for this test (a half-hour offset catches sloppy conversions)."""
    monkeypatch.setenv("TZ", "IST-5:30")
    time.tzset()
    yield timezone(timedelta(hours=5, minutes=30))
    monkeypatch.undo()
    time.tzset()


def test_date_filters_and_daily_report_in_local_time(station, tmp_path, india):
    att = station.att
    lin, alex = station.ids[LIN], station.ids[ALEX]

    def at(day: int, hh: int, mm: int, pid, name, door="Main entrance", decision="granted"):
        when = datetime(2024, 3, day, hh, mm, tzinfo=india)
        return att.add_entry(NewEntry(when, door, pid, name, decision, 0.4))

    at(4, 0, 10, lin, LIN)           # 18:40 UTC on the 3rd: local day is the 4th
    at(4, 12, 0, lin, LIN, "Lab", "denied")
    at(4, 17, 30, lin, LIN, "Lab")
    at(4, 9, 0, alex, ALEX)
    at(5, 23, 50, alex, ALEX)        # 18:20 UTC on the 5th
    at(6, 8, 0, None, None, decision="unknown")
    home = str(station.home)

    def export(*args) -> list[list[str]]:
        out = tmp_path / "x.csv"
        code, _, err = cli("--home", home, "log", "export", *args, "-o", str(out))
        assert code == 0, err
        with out.open(encoding="utf-8", newline="") as fh:
            return list(csv.reader(fh))[1:]

    day4 = export("--from", "2024-03-04", "--to", "2024-03-04")
    assert [r[0] for r in day4] == ["2024-03-04T00:10:00+05:30", "2024-03-04T09:00:00+05:30",
                                    "2024-03-04T12:00:00+05:30", "2024-03-04T17:30:00+05:30"]
    assert len(export("--from", "2024-03-05", "--to", "2024-03-06")) == 2
    assert [r[2] for r in export("--from", "2024-03-01", "--to", "2024-03-31", "--person", "LIN manuel miranda")] \
        == [LIN] * 3
    assert [r[0][11:16] for r in export("--from", "2024-03-04", "--to", "2024-03-04", "--door", "lab")] \
        == ["12:00", "17:30"]
    assert export("--to", "2024-03-03") == []

    out = tmp_path / "report.csv"
    code, stdout, err = cli("--home", home, "log", "report", "--from", "2024-03-04", "--to", "2024-03-05",
                            "-o", str(out))
    assert code == 0 and "wrote 3 person-days" in stdout, err
    with out.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == list(REPORT_HEADER)
    assert rows[1:] == [
        ["2024-03-04", ALEX, str(alex), "", "", "2024-03-04T09:00:00+05:30", "2024-03-04T09:00:00+05:30", "1",
         "Main entrance"],
        ["2024-03-04", LIN, str(lin), "", "", "2024-03-04T00:10:00+05:30", "2024-03-04T17:30:00+05:30", "2",
         "Main entrance, Lab"],
        ["2024-03-05", ALEX, str(alex), "", "", "2024-03-05T23:50:00+05:30", "2024-03-05T23:50:00+05:30", "1",
         "Main entrance"],
    ]
    code, stdout, _ = cli("--home", home, "log", "list", "--from", "2024-03-06", "--to", "2024-03-06", "--json")
    listed = json.loads(stdout)
    assert code == 0 and [(e["decision"], e["time"]) for e in listed] == [("unknown", "2024-03-06T08:00:00+05:30")]
    with pytest.raises(Exception, match="not a date"):
        entry_query(since="4 March")


def test_old_snapshots_are_purged_at_pipeline_start(app, faces_dir):
    att = AttendanceStore(app.store)
    photo = load_image(BIDEN / "biden.jpg")
    snap = make_snapshot(photo, BBox(100, 100, 300, 320))
    # The face (220 px tall here) is stored at 160 px, with half a face of context around it.
    assert snap and 160 < max(cv2.imdecode(np.frombuffer(snap, np.uint8), cv2.IMREAD_COLOR).shape[:2]) <= 322
    now = datetime.now(timezone.utc)
    old = att.add_entry(NewEntry(now - timedelta(days=45), "Main entrance", None, None, "unknown", 0.9,
                                 snapshot=snap))
    recent = att.add_entry(NewEntry(now - timedelta(days=3), "Main entrance", None, None, "unknown", 0.9,
                                    snapshot=snap))
    assert purge_snapshots(app.store, 0, now) == 0                # 0 = keep forever
    assert purge_snapshots(app.store, 60, now) == 0
    Pipeline(app, log_entries=True)                               # default retention: 30 days
    assert att.snapshot(old) is None and att.snapshot(recent) == snap
    assert purge_snapshots(app.store, 2, now) == 1 and att.snapshot(recent) is None
    assert len(att.entries()) == 2                                # the entries themselves stay
    out = export_entries(app.store, app.paths.home / "e.csv")
    assert out == 2


def test_door_and_group_commands(app, capsys):
    home = str(app.paths.home)
    pid, _ = enroll_files(app, ALEX, person_photos("face_recognition_examples", "Alex_Lacamoire"))

    def run(*argv) -> tuple[int, str, str]:
        code = main(["--home", home, *argv])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    assert run("door", "list")[1].startswith("no doors yet")
    code, _, err = run("door", "add", "Lab", "--groups", "band")
    assert code == 1 and "faceapp group add 'band'" in err
    assert run("group", "add", "band")[0] == 0
    assert run("group", "add", "BAND")[0] == 1
    code, out, _ = run("door", "add", "Lab", "--groups", "band", "--hours", "mon-fri 7:00-19:00")
    assert code == 0 and "Lab: band; hours Mon-Fri 07:00-19:00" in out
    code, _, err = run("door", "add", "Gym", "--hours", "Mon 7-19")
    assert code == 1 and "not a time" in err
    assert run("group", "assign", "alex lacamoire", "band")[0] == 0
    assert run("group", "list")[1].strip() == f"band: {ALEX}; admitted at Lab"
    assert run("door", "allow", "Lab", "band", "--hours", "Sat 10:00-12:00")[1].strip() == \
        "Lab: band (Sat 10:00-12:00); hours Mon-Fri 07:00-19:00"
    code, _, err = run("group", "remove", "band")
    assert code == 1 and "disallow it there first" in err
    code, _, err = run("door", "disallow", "Lab", "band")
    assert code == 1 and "--open" in err
    assert run("door", "disallow", "Lab", "band", "--open")[1].strip() == "Lab: everyone enrolled; hours Mon-Fri 07:00-19:00"
    assert run("door", "hours", "Lab", "always")[1].strip() == "Lab: everyone enrolled; hours always"
    doors = json.loads(run("door", "list", "--json")[1])
    assert doors == [{"id": doors[0]["id"], "name": "Lab", "hours": None, "liveness": "off", "groups": []}]
    assert run("group", "unassign", str(pid), "band")[0] == 0
    assert run("group", "remove", "band")[0] == 0 and run("door", "remove", "lab")[0] == 0
    assert AttendanceStore(app.store).doors() == [] and AttendanceStore(app.store).groups() == []


def test_watch_refuses_bad_sources_and_unknown_doors_and_stops_after_seconds(app, capsys):
    home = str(app.paths.home)
    assert main(["--home", home, "watch", str(app.paths.home / "missing.mp4")]) == 1
    assert "not found" in capsys.readouterr().err
    AttendanceStore(app.store).add_door("Lab")
    assert main(["--home", home, "watch", str(HAMILTON), "--door", "Labb"]) == 1
    assert "no door called 'Labb' (doors: Lab)" in capsys.readouterr().err
    summary = watch(app, str(HAMILTON), door="Lab", seconds=1.0, log_entries=False)
    assert summary.stopped_by == "time" and 0 < summary.frames < 275
    assert AttendanceStore(app.store).entries() == []
