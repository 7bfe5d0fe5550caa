"""The pipeline sees every change of people, templates and rules, from this process or another,
on the next frame, through the store's revision counter (migration v4), and loads the gallery
once per change."""

from __future__ import annotations

import itertools

from conftest import person_photos
from faceapp.capture.images import load_image
from faceapp.capture.sources import Frame
from faceapp.service import enroll
from faceapp.service.app import App
from faceapp.service.pipeline import Pipeline
from faceapp.store.attendance import AttendanceStore


def _stepper(pipe: Pipeline, image):
    index = itertools.count()

    def step():
        return pipe.process(Frame(image, next(index), float(next(index)), None))
    return step


def test_gallery_is_reloaded_once_per_change_from_this_or_another_process(app, home, engine, monkeypatch):
    obama = person_photos("face_recognition_examples", "Barack_Obama")
    enroll.enroll_files(app, "Barack Obama", obama[:1])
    # Galleries the pipeline got (kept alive so their ids stay distinct); enrollment checks load
    # their own from the store, so the store's loads are not what we count.
    seen: list = []
    gallery = app.gallery
    monkeypatch.setattr(app, "gallery", lambda **k: seen.append(gallery(**k)) or seen[-1])

    class Loads:
        def __len__(self) -> int:
            return len({id(g) for g in seen})
    loads = Loads()
    pipe = Pipeline(app)
    clears: list[str] = []
    clear = pipe.tracker.clear_votes
    monkeypatch.setattr(pipe.tracker, "clear_votes", lambda: clears.append("clear") or clear())
    step = _stepper(pipe, load_image(obama[1]))
    step()
    assert len(loads) == 1

    enroll.enroll_files(app, "Joe Biden", person_photos("face_recognition_examples", "Joe_Biden")[:1])
    step()                         # the in-process change is picked up at once, and once
    step()
    step()
    assert (len(loads), len(clears)) == (2, 1)

    other = App(home, engine=engine)  # another process: this app's cache is not invalidated
    try:
        enroll.enroll_files(other, "Alex Lacamoire",
                            person_photos("face_recognition_examples", "Alex_Lacamoire")[:1])
    finally:
        other.close()
    step()                         # noticed on the very next frame, however soon
    step()
    assert (len(loads), len(clears)) == (3, 2)
    assert "Alex Lacamoire" in app.gallery().names.values()


def test_a_removed_newest_person_replaced_by_one_with_as_many_photos_is_noticed(app, home, engine):
    """Item 4 of the logic issue: SQLite reuses the id of a deleted newest row, so counts and
    highest ids do not change; the revision does, and the entry is not stored under the new id."""
    obama = person_photos("face_recognition_examples", "Barack_Obama")
    biden = person_photos("face_recognition_examples", "Joe_Biden")
    enroll.enroll_files(app, "Joe Biden", biden[:1])
    obama_id = enroll.enroll_files(app, "Barack Obama", obama[:1])[0]
    pipe = Pipeline(app, log_entries=True)
    step = _stepper(pipe, load_image(obama[1]))
    for _ in range(4):
        result = step()
    assert [f.name for f in result.faces] == ["Barack Obama"]
    other = App(home, engine=engine)
    try:
        other.store.remove_person(obama_id)
        lin = person_photos("face_recognition_examples", "Lin_Manuel_Miranda")
        new_id = enroll.enroll_files(other, "Lin-Manuel Miranda", lin[:1])[0]
    finally:
        other.close()
    assert new_id == obama_id      # the id came back: only the revision tells the change apart
    results = [step() for _ in range(6)]
    assert all(f.name != "Barack Obama" and f.decision != "granted" for r in results for f in r.faces)
    entries = AttendanceStore(app.store).entries()
    assert not [e for e in entries if e.person_id == new_id]
    assert [e.person_name for e in entries if e.decision == "granted"] == ["Barack Obama"]
