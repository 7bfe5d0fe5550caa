"""Decisions at their edges, with the real model: a distance exactly at the threshold is known
(README: "known when its distance is at most the threshold"), and a door station that restarts
keeps the cooldowns of the people it has just logged (two real `faceapp watch` processes)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import HAMILTON, REPO, person_photos
from faceapp.capture.images import load_image
from faceapp.capture.sources import VideoFileSource
from faceapp.core.tracking import Observation, frame_observations
from faceapp.service.enroll import enroll_files
from faceapp.service.recognize import identify_file, verify_files
from faceapp.store.attendance import AttendanceStore, EntryQuery

LIN = "Lin Manuel Miranda"


@pytest.fixture
def obama(app):
    """Barack Obama enrolled from two photos; a third photo of him as the probe, with its distance."""
    photos = person_photos("face_recognition_examples", "Barack_Obama")
    enroll_files(app, "Barack Obama", photos[:2])
    probe = photos[2]
    emb = app.engine.analyze_photo(load_image(probe))[0].embedding
    match = app.gallery().identify(emb[None], threshold=2.0)[0]
    assert match.known and 0.0 < match.distance < 1.0
    return probe, emb, match.distance


def test_a_distance_equal_to_the_threshold_is_known_by_the_matcher(app, obama):
    _, emb, d = obama
    gallery = app.gallery()
    at = gallery.identify(emb[None], threshold=d)[0]
    assert at.known and at.name == "Barack Obama" and at.distance == d
    below = gallery.identify(emb[None], threshold=float(np.nextafter(d, -math.inf)))[0]
    assert not below.known and below.person_id is None


def test_a_distance_equal_to_the_threshold_is_known_everywhere_the_user_sees_it(app, obama):
    probe, _, d = obama
    app.set_threshold(d)  # the slider's value is stored as it is: exactly this distance
    assert app.threshold == d
    faces = identify_file(app, probe)
    assert faces[0].match.known and faces[0].match.name == "Barack Obama"
    photos = person_photos("face_recognition_examples", "Barack_Obama")
    pair = verify_files(app, photos[0], photos[0])  # distance 0 <= any threshold
    assert pair.same
    app.set_threshold(float(np.nextafter(d, -math.inf)))
    assert not identify_file(app, probe)[0].match.known


def test_the_trackers_vote_counts_a_distance_equal_to_the_threshold(app, obama):
    _, emb, d = obama
    gallery = app.gallery()
    pid = gallery.person_ids[0]
    assert Observation(int(pid), d, margin=0.5).vote(threshold=d, min_margin=0.1) == pid
    assert Observation(int(pid), d, margin=0.5).vote(threshold=float(np.nextafter(d, -math.inf)),
                                                      min_margin=0.1) is None
    pd = gallery.person_distances(emb[None])
    obs = frame_observations(pd, gallery.person_ids, threshold=float(pd[0, 0]))
    assert obs[0].candidate_id == pid and obs[0].vote(float(pd[0, 0]), 0.0) == pid


# -- a station restart keeps its cooldowns -----------------------------------------------------------
def _lin_clip(dest: Path) -> Path:
    """Frames 85-124 of the Hamilton clip (Lin-Manuel Miranda close up) as a short video file."""
    src = VideoFileSource(HAMILTON)
    src.open()
    writer = None
    try:
        while (frame := src.read()) is not None and frame.index < 125:
            if frame.index < 85:
                continue
            if writer is None:
                h, w = frame.image.shape[:2]
                writer = cv2.VideoWriter(str(dest), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (w, h))
            writer.write(frame.image)
    finally:
        src.close()
        if writer is not None:
            writer.release()
    assert dest.stat().st_size > 10_000
    return dest


def _watch_process(home: Path, clip: Path) -> list[dict]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    run = subprocess.run([sys.executable, "-m", "faceapp", "--home", str(home), "watch", str(clip), "--json"],
                         capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr
    return [json.loads(line) for line in run.stdout.splitlines() if line.strip()]


@pytest.mark.slow
def test_a_restarted_station_does_not_log_the_same_person_again(app, home, tmp_path):
    enroll_files(app, LIN, person_photos("face_recognition_examples", "Lin_Manuel_Miranda"))
    assert app.settings.cooldown_seconds >= 30
    clip = _lin_clip(tmp_path / "lin.mp4")
    first = _watch_process(home, clip)
    assert [(e["person"], e["decision"]) for e in first] == [(LIN, "granted")]
    second = _watch_process(home, clip)  # a new process: only the entry log remembers the first run
    assert [e for e in second if e["person"] == LIN] == []
    logged = AttendanceStore(app.store).entries(EntryQuery())
    assert [(r.person_name, r.decision) for r in logged] == [(LIN, "granted")]
