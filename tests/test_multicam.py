"""Several door cameras in one process (#16): real video files played in real time, one file that
ends early and one that does not exist; every door logs its own entries and the others keep
running. Also the fair scheduler's choice (pure logic)."""

from __future__ import annotations

import contextlib
import io
import json

import cv2
import pytest

from conftest import HAMILTON, person_photos
from faceapp.cli import main
from faceapp.service import enroll
from faceapp.service.stations import CameraSpec, CameraStats, FairScheduler, Station
from faceapp.store.attendance import AttendanceStore


def _short_clip(path, frames: int) -> str:
    """The first ``frames`` frames of the Hamilton clip as a video file of their own."""
    cap = cv2.VideoCapture(str(HAMILTON))
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    out = None
    for _ in range(frames):
        ok, image = cap.read()
        if not ok:
            break
        if out is None:
            out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (image.shape[1], image.shape[0]))
        out.write(image)
    cap.release()
    out.release()
    return str(path)


@pytest.fixture
def enrolled(app):
    enroll.enroll_files(app, "Lin-Manuel Miranda", person_photos("face_recognition_examples", "Lin_Manuel_Miranda"))
    enroll.enroll_files(app, "Alex Lacamoire", person_photos("face_recognition_examples", "Alex_Lacamoire")[:2])
    return app


def test_one_process_serves_three_doors_one_ending_early_one_missing(enrolled, tmp_path):
    app = enrolled
    short = _short_clip(tmp_path / "short.avi", 150)
    cameras = [CameraSpec(str(HAMILTON), "Main"), CameraSpec(short, "Side"),
               CameraSpec(str(tmp_path / "missing.mp4"), "Back")]
    station = Station(app, cameras, log_entries=True)
    summaries = {s.door: s for s in station.run(seconds=300)}
    assert summaries["Back"].stopped_by.startswith("error") and "not found" in summaries["Back"].stopped_by
    assert summaries["Back"].frames == 0
    assert summaries["Main"].stopped_by == "eof" and summaries["Side"].stopped_by == "eof"
    # The short camera ended after 5 s; the main one went on for the whole 9 s clip.
    assert summaries["Main"].frames > summaries["Side"].frames > 0
    entries = AttendanceStore(app.store).entries()
    by_door = {d: [e for e in entries if e.door == d] for d in ("Main", "Side", "Back")}
    assert by_door["Main"] and by_door["Side"] and not by_door["Back"], summaries
    # Each door's entries are the ones its own pipeline reported, and the clip's enrolled people are
    # recognised at the camera that saw the whole clip.
    assert {e.id for e in by_door["Main"]} == {ev.entry_id for ev in summaries["Main"].events}
    assert {e.id for e in by_door["Side"]} == {ev.entry_id for ev in summaries["Side"].events}
    assert {"Lin-Manuel Miranda", "Alex Lacamoire"} & {e.person_name for e in by_door["Main"]}
    # Events say which camera saw them (track numbers are per camera: an alert keys on both).
    assert {ev.camera for ev in summaries["Main"].events} == {0}
    assert {ev.camera for ev in summaries["Side"].events} == {1}
    assert not any(t.is_alive() for f in station.feeds for t in [f._thread])


def test_watch_cli_with_several_cameras_reports_the_missing_one(enrolled, tmp_path):
    home = str(enrolled.paths.home)
    short = _short_clip(tmp_path / "short.avi", 150)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--home", home, "watch", short, "--door", "Side", "--camera", f"{tmp_path / 'nope.mp4'}=Back",
                     "--json"])
    assert code == 1
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert events and {e["door"] for e in events} == {"Side"}
    assert "faceapp: error: camera of door 'Back'" in err.getvalue()
    assert "door 'Side'" in err.getvalue()
    # Bad --camera values are refused with one line, before anything runs.
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err := io.StringIO()):
        assert main(["--home", home, "watch", "--camera", "no-door-given"]) != 0
    assert "SOURCE=DOOR" in err.getvalue()


def test_camera_spec_parsing():
    assert CameraSpec.parse("rtsp://cam/stream?ch=1=Front door") == CameraSpec("rtsp://cam/stream?ch=1", "Front door")
    assert CameraSpec.parse("0=Lobby") == CameraSpec("0", "Lobby")
    for bad in ("video.mp4", "=Lobby", "video.mp4=", "  =  "):
        with pytest.raises(ValueError):
            CameraSpec.parse(bad)


def test_scheduler_serves_the_longest_waiting_camera_busy_ones_counting_double():
    sched = FairScheduler()
    stats = [CameraStats(last_served=10.0, busy=False), CameraStats(last_served=11.0, busy=True),
             CameraStats(last_served=9.0, busy=False)]
    # At t=12: waits 2, 1 (x2 = 2) and 3: the one waiting longest goes first.
    assert sched.pick([0, 1, 2], stats, 12.0) == 2
    # Among the ready ones only; a busy camera beats an idle one that waited a little longer.
    stats[1].last_served = 9.5
    assert sched.pick([0, 1], stats, 12.0) == 1
    assert sched.pick([], stats, 12.0) is None
