"""A running station and changes committed by another process (issues #11 item 9, #12 defects 2
and 4, #17 items 1 and 5): real models and photos, the real Pipeline and store; "another process"
is a second App on the same data folder (its own SQLite connection). The CLI version with real
processes is in test_door_processes.py."""

from __future__ import annotations

import itertools
import logging

import numpy as np
import pytest

from conftest import person_photos
from faceapp.capture.images import load_image
from faceapp.capture.sources import Frame
from faceapp.gui.live_view import face_label
from faceapp.service.app import App
from faceapp.service.enroll import enroll_files
from faceapp.service.pipeline import INACTIVE, Pipeline
from faceapp.store.attendance import AttendanceStore

TONY = "Tony Blair"


@pytest.fixture
def tony(app):
    photos = person_photos("lfw_krasserm", "Tony_Blair")
    pid, _ = enroll_files(app, TONY, photos[:3])
    return pid, [load_image(p) for p in photos[3:]]


class Station:
    def __init__(self, app, door=None, cooldown: float = 0.0) -> None:
        app.update_settings(cooldown_seconds=cooldown)
        self.pipe = Pipeline(app, door=door, log_entries=True)
        self.index = itertools.count()
        self.events: list = []

    def show(self, image, frames: int = 4):
        """The same photo for a few frames (a new photo is a new scene: a new track)."""
        for _ in range(frames):
            i = next(self.index)
            result = self.pipe.process(Frame(image, i, i / 25.0, None))
            self.events += result.events
        return result


def other_process(home, engine):
    return App(home, engine=engine)


def test_a_person_removed_by_another_process_is_not_granted_from_the_next_frame(app, home, engine, tony, caplog):
    pid, shots = tony
    station = Station(app)
    station.show(shots[0])
    assert [(e.name, e.decision) for e in station.events] == [(TONY, "granted")]
    with other_process(home, engine) as other:
        other.store.remove_person(pid)
    caplog.set_level(logging.ERROR)
    shown = [station.show(shots[1], frames=1) for _ in range(5)]
    assert all(f.decision != "granted" for r in shown for f in r.faces)
    # A stranger now: logged as unknown once it is clearly one, never granted.
    assert [e.decision for e in station.events] == ["granted", "unknown"]
    assert "could not log" not in caplog.text


def test_a_change_committed_after_the_frame_was_decided_is_caught_when_logging(app, home, engine, tony):
    """The race the per-frame check cannot close: the change commits between this frame's gallery
    check and its log write. The entry is checked in the logging transaction: logged as unknown,
    never granted, never dropped."""
    pid, shots = tony
    station = Station(app)
    station.show(shots[0])
    stale = station.pipe._current_gallery()
    with other_process(home, engine) as other:
        other.store.remove_person(pid)
    fresh = station.pipe._current_gallery
    # These two frames still see the old gallery (as if the removal committed just after each
    # check): the new track is identified on the second and its entry written.
    station.pipe._current_gallery = lambda: stale
    shown = [station.show(shots[1], frames=1) for _ in range(2)]
    station.pipe._current_gallery = fresh
    shown += [station.show(shots[1], frames=1) for _ in range(3)]
    late = station.events[1:]
    assert [(e.decision, e.person_id) for e in late] == [("unknown", None)]
    assert late[0].entry_id is not None and "removed" in late[0].reason
    assert all(f.decision != "granted" for r in shown for f in r.faces)
    logged = AttendanceStore(app.store).entries()
    assert [(e.decision, e.person_name) for e in logged] == [("granted", TONY), ("unknown", None)]


def test_a_deactivated_person_is_shown_and_logged_as_inactive(app, home, engine, tony):
    pid, shots = tony
    with other_process(home, engine) as other:
        other.store.update_person(pid, active=False)
    station = Station(app)
    result = station.show(shots[0])
    [face] = result.faces
    assert (face.decision, face.reason, face.candidate_name) == ("denied", INACTIVE, TONY)
    assert face_label(face)[0] == f"inactive: {TONY}"
    assert [(e.name, e.decision, e.reason) for e in station.events] == [(TONY, "denied", INACTIVE)]
    [entry] = AttendanceStore(app.store).entries()
    assert (entry.person_id, entry.decision, entry.reason) == (pid, "denied", INACTIVE)


def test_denied_then_added_to_the_group_while_in_view_is_logged_as_granted(app, home, engine, tony):
    """#12 defect 2 / #17 item 1, at the pipeline: the change of decision is an entry."""
    pid, shots = tony
    att = AttendanceStore(app.store)
    att.add_group("staff")
    att.add_door("Lab", groups=["staff"])
    station = Station(app, door="Lab", cooldown=60)
    station.show(shots[0])
    with other_process(home, engine) as other:
        AttendanceStore(other.store).assign(pid, "staff")
    station.show(shots[0])                       # the same face, still in view
    assert [(e.name, e.decision) for e in station.events] == [(TONY, "denied"), (TONY, "granted")]
    assert [e.decision for e in att.entries()] == ["denied", "granted"]


def test_a_removed_door_admits_nobody(app, home, engine, tony):
    pid, shots = tony
    att = AttendanceStore(app.store)
    att.add_group("staff")
    att.assign(pid, "staff")
    att.add_door("Lab", groups=["staff"])
    station = Station(app, door="Lab")
    station.show(shots[0])
    with other_process(home, engine) as other:
        AttendanceStore(other.store).remove_door("Lab")
    station.show(shots[1])                       # a new track: decided again
    assert [e.decision for e in station.events] == ["granted", "denied"]
    assert "removed" in station.events[1].reason


def test_an_unknown_face_logged_before_a_restart_is_not_logged_again_after_it(app, faces_dir):
    """#12 defect 5: the cooldown of unknown faces survives a restart like that of known people."""
    stranger = load_image(person_photos("extras/lfw_singletons", "Rob_Lowe")[0])
    first = Station(app, cooldown=60)
    first.show(stranger, frames=5)
    assert [e.decision for e in first.events] == ["unknown"]
    again = Station(app, cooldown=60)       # the station restarts (same data folder)
    again.show(stranger, frames=5)
    assert again.events == []
    assert [e.decision for e in AttendanceStore(app.store).entries()] == ["unknown"]


def test_a_long_running_station_applies_retention_every_day(app, tony):
    from datetime import datetime, timedelta, timezone

    from faceapp.store.attendance import NewEntry

    app.update_settings(snapshot_retention_days=30)
    station = Station(app)
    att = AttendanceStore(app.store)
    old = att.add_entry(NewEntry(datetime.now(timezone.utc) - timedelta(days=45), "Main entrance", None, None,
                                 "unknown", snapshot=b"\xff\xd8old"))
    blank = np.zeros((360, 640, 3), np.uint8)
    station.show(blank, frames=1)
    assert att.snapshot(old) is not None              # not due yet
    station.pipe._next_retention = 0.0                 # a day later (the clock is monotonic)
    station.show(blank, frames=1)
    assert att.snapshot(old) is None
    assert station.pipe._next_retention > 1.0          # and due again a day from now


def test_door_hours_are_judged_in_the_site_time_zone(app, home, tony, capsys):
    from datetime import datetime, timezone

    from faceapp.cli import main

    pid, _ = tony
    h = datetime.now(timezone.utc).hour
    att = AttendanceStore(app.store)
    att.add_door("Lab", hours=f"{(h - 1) % 24:02d}:00-{(h + 2) % 24:02d}:00")   # open now, in UTC
    assert main(["--home", str(home), "admin", "timezone", "UTC"]) == 0
    assert main(["--home", str(home), "admin", "timezone", "Mars/Olympus"]) == 1
    assert "is not a time zone" in capsys.readouterr().err
    with App(home) as utc:
        assert utc.settings.timezone == "UTC"
        assert Pipeline(utc, door="Lab")._access(pid, datetime.now(timezone.utc)).granted
    assert main(["--home", str(home), "admin", "timezone", "Pacific/Kiritimati"]) == 0   # UTC+14
    with App(home) as far:
        verdict = Pipeline(far, door="Lab")._access(pid, datetime.now(timezone.utc))
        assert not verdict.granted and "opening hours" in verdict.reason
