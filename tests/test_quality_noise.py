"""The enrollment blur gate is not fooled by sensor noise (logic issue #17 item 7): real photos,
blurred and noised, through the real detector, alignment and quality gate."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from conftest import person_photos
from faceapp.capture.images import load_image
from faceapp.core.scale import cosine_distance
from faceapp.service import enroll

PEOPLE = ("Ariel_Sharon", "Arnold_Schwarzenegger", "Colin_Powell", "Donald_Rumsfeld", "George_W_Bush",
          "Gerhard_Schroeder", "Hugo_Chavez", "Jacques_Chirac", "Tony_Blair", "Vladimir_Putin")


@pytest.fixture(scope="module")
def photos(engine):
    """12 real photos the gate accepts (the first two of each person that pass), with their shots."""
    out = []
    for person in PEOPLE:
        for p in person_photos("lfw_krasserm", person):
            img = load_image(p)
            shot = enroll.check_image(engine, img, p.name)
            if shot.quality.ok and sum(1 for _, s in out if s.source.startswith(person)) < 2:
                out.append((img, shot))
        if len(out) >= 12:
            break
    assert len(out) == 12
    return out


def noisy(img: np.ndarray, rng, sigma: float = 3.0) -> np.ndarray:
    return np.clip(img.astype(np.float32) + rng.normal(0, sigma, img.shape), 0, 255).astype(np.uint8)


def test_blurred_photos_are_refused_with_or_without_noise_and_sharp_ones_pass_noised(engine, photos):
    rng = np.random.default_rng(7)
    for img, sharp in photos:
        assert enroll.check_image(engine, noisy(img, rng), "noisy").quality.ok   # noise alone is no blur
        blurred = cv2.GaussianBlur(img, (0, 0), 0.06 * sharp.quality.face_px)
        for kind, picture in (("blurred", blurred), ("blurred + noise", noisy(blurred, rng))):
            shot = enroll.check_image(engine, picture, kind)
            assert any("blurred" in r for r in shot.quality.reasons), \
                (sharp.source, kind, shot.quality.sharpness)
            # Why it matters: these would be poor templates.
            assert float(cosine_distance(sharp.face.embedding[None], shot.face.embedding[None])[0, 0]) > 0.2
