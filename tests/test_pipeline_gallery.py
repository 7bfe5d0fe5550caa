"""The pipeline reloads the gallery once per change: an enrollment made in this process is not
picked up a second time by the periodic check meant for other processes, which still works."""

from __future__ import annotations

import itertools
import time
from types import SimpleNamespace

from conftest import person_photos
from faceapp.capture.images import load_image
from faceapp.capture.sources import Frame
from faceapp.service import enroll
from faceapp.service import pipeline as pipeline_mod
from faceapp.service.app import App
from faceapp.service.pipeline import REFRESH_SECONDS, Pipeline


def test_gallery_is_reloaded_once_per_change_from_this_or_another_process(app, home, engine, monkeypatch):
    obama = person_photos("face_recognition_examples", "Barack_Obama")
    enroll.enroll_files(app, "Barack Obama", obama[:1])
    # A clock of our own decides when the periodic check is due.
    clock = [1000.0]
    monkeypatch.setattr(pipeline_mod, "time", SimpleNamespace(monotonic=lambda: clock[0],
                                                              perf_counter=time.perf_counter))
    # Galleries the pipeline got (kept alive so their ids stay distinct); enrollment checks load
    # their own from the store, so the store's loads are not what we count.
    seen: list = []
    gallery = app.gallery
    monkeypatch.setattr(app, "gallery", lambda: seen.append(gallery()) or seen[-1])

    def loads() -> int:
        return len({id(g) for g in seen})

    pipe = Pipeline(app)
    clears: list[str] = []
    clear = pipe.tracker.clear_votes
    monkeypatch.setattr(pipe.tracker, "clear_votes", lambda: clears.append("clear") or clear())
    image = load_image(obama[1])
    index = itertools.count()

    def step(seconds: float) -> None:
        clock[0] += seconds
        pipe.process(Frame(image, next(index), clock[0], None))

    step(0.0)
    assert loads() == 1

    enroll.enroll_files(app, "Joe Biden", person_photos("face_recognition_examples", "Joe_Biden")[:1])
    step(REFRESH_SECONDS / 4)         # the in-process change is picked up at once
    step(REFRESH_SECONDS * 1.5)       # the periodic check is due: nothing new to load
    step(REFRESH_SECONDS * 1.5)
    assert (loads(), len(clears)) == (2, 1)

    other = App(home, engine=engine)  # another process: this app's cache is not invalidated
    try:
        enroll.enroll_files(other, "Alex Lacamoire",
                            person_photos("face_recognition_examples", "Alex_Lacamoire")[:1])
    finally:
        other.close()
    step(REFRESH_SECONDS / 4)
    assert loads() == 2            # not noticed before the check is due
    step(REFRESH_SECONDS * 1.5)
    step(REFRESH_SECONDS * 1.5)
    assert (loads(), len(clears)) == (3, 2)
    assert "Alex Lacamoire" in app.gallery().names.values()
