"""A face that appears where an enrolled person's box was, right after a scene cut, must not
inherit that person's identity (real Hamilton clip: the cut at frame 211 shows the audience)."""

from __future__ import annotations

import pytest

from conftest import FACES, HAMILTON
from faceapp.capture.sources import VideoFileSource
from faceapp.service import enroll
from faceapp.service.pipeline import Pipeline


@pytest.mark.parametrize("step", [1, 3])
def test_no_identity_carried_across_a_cut(app, step):
    ex = FACES / "face_recognition_examples"
    enroll.enroll_files(app, "Lin-Manuel Miranda", [ex / "Lin_Manuel_Miranda" / "lin-manuel-miranda.png"])
    pipe = Pipeline(app)
    src = VideoFileSource(HAMILTON)
    src.open()
    named_before = named_after = 0
    try:
        while (frame := src.read()) is not None and frame.index < 235:
            if frame.index < 190 or frame.index % step:
                continue  # a slow recogniser sees every few frames only
            names = [f.name for f in pipe.process(frame).faces if f.known]
            if frame.index <= 210:
                named_before += "Lin-Manuel Miranda" in names
            elif frame.index >= 212:
                named_after += "Lin-Manuel Miranda" in names
    finally:
        src.close()
    assert named_before > 0          # he is recognised on stage before the cut
    assert named_after == 0          # and nobody in the audience gets his name after it
    assert pipe.scene_cuts >= 1
