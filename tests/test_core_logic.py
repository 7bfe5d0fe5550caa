"""Pure-logic unit tests of core (synthetic vectors are fine here: no claim about recognition quality)."""

from __future__ import annotations

import numpy as np
import pytest

from faceapp.core.align import ARCFACE_TEMPLATE, similarity_transform
from faceapp.core.image import to_bgr8
from faceapp.core.errors import ImageError
from faceapp.core.matcher import Aggregate, Gallery, decide
from faceapp.core.scale import cosine_distance, l2_from_distance, l2_normalize
from faceapp.core.settings import Settings


def _unit(rng, n, d=16):
    return l2_normalize(rng.normal(size=(n, d)))


def test_min_aggregation_picks_nearest_template_per_person():
    rng = np.random.default_rng(0)
    emb = _unit(rng, 6)
    gal = Gallery.build([2, 1, 2, 1, 3, 3], emb, {1: "a", 2: "b", 3: "c"})
    q = emb[3]  # belongs to person 1
    pd = gal.person_distances(q[None])
    assert pd.shape == (1, 3)
    assert list(gal.person_ids) == [1, 2, 3]
    expected = [min(cosine_distance(q[None], emb[[1, 3]])[0]), min(cosine_distance(q[None], emb[[0, 2]])[0]),
                min(cosine_distance(q[None], emb[[4, 5]])[0])]
    np.testing.assert_allclose(pd[0], expected, atol=1e-5)
    m = gal.identify(q[None], threshold=0.1)[0]
    assert m.known and m.person_id == 1 and m.name == "a" and m.distance == pytest.approx(0, abs=1e-5)
    assert m.margin > 0 and m.second_person_id in (2, 3)


@pytest.mark.parametrize("agg", list(Aggregate))
def test_every_aggregation_ranks_the_owner_first(agg):
    rng = np.random.default_rng(1)
    centres = _unit(rng, 4, 32)
    emb = l2_normalize(np.repeat(centres, 3, axis=0) + 0.05 * rng.normal(size=(12, 32)))
    gal = Gallery.build(np.repeat([10, 20, 30, 40], 3), emb, {10: "a", 20: "b", 30: "c", 40: "d"})
    probe = l2_normalize(centres[2] + 0.05 * rng.normal(size=32))
    m = gal.identify(probe[None], threshold=0.5, aggregate=agg)[0]
    assert m.person_id == 30


def test_threshold_decides_unknown_and_empty_gallery():
    rng = np.random.default_rng(2)
    emb = _unit(rng, 2)
    gal = Gallery.build([1, 2], emb, {1: "a", 2: "b"})
    far = l2_normalize(-emb[0] - emb[1])
    m = gal.identify(far[None], threshold=0.3)[0]
    assert not m.known and m.person_id is None and m.name is None and m.distance > 0.3
    empty = Gallery.empty(16).identify(far[None], threshold=1.0)[0]
    assert not empty.known and empty.distance == float("inf")


def test_exclusive_never_gives_one_person_to_two_faces():
    pd = np.array([[0.2, 0.9], [0.3, 0.4]])
    ms = decide(pd, np.array([7, 8]), {7: "x", 8: "y"}, threshold=0.5, exclusive=True)
    assert [m.person_id for m in ms] == [7, 8]
    ms = decide(pd, np.array([7, 8]), {7: "x", 8: "y"}, threshold=0.5, exclusive=False)
    assert [m.person_id for m in ms] == [7, 7]
    pd = np.array([[0.2, 0.9], [0.25, 0.95]])
    ms = decide(pd, np.array([7, 8]), {7: "x", 8: "y"}, threshold=0.5, exclusive=True)
    assert ms[0].person_id == 7 and not ms[1].known


def test_scale_relations():
    assert l2_from_distance(0.5) == pytest.approx(1.0)
    a = l2_normalize(np.array([[1.0, 0.0]]))
    assert cosine_distance(a, a)[0, 0] == pytest.approx(0.0)


def test_similarity_transform_recovers_a_known_similarity():
    ang, s, t = np.radians(12), 1.7, np.array([5.0, -3.0])
    r = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    src = ARCFACE_TEMPLATE
    dst = (s * (r @ src.T)).T + t
    m = similarity_transform(src, dst)
    np.testing.assert_allclose(m[:, :2], s * r, atol=1e-4)
    np.testing.assert_allclose(m[:, 2], t, atol=1e-3)


def test_to_bgr8_handles_gray_rgba_16bit_float():
    assert to_bgr8(np.zeros((4, 5), np.uint8)).shape == (4, 5, 3)
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 3] = 0
    assert (to_bgr8(rgba) == 255).all()  # transparent -> white
    assert to_bgr8(np.full((2, 2, 3), 65535, np.uint16)).max() == 255
    assert to_bgr8(np.ones((2, 2, 3), np.float32)).max() == 255
    with pytest.raises(ImageError):
        to_bgr8(np.zeros((2, 2, 7), np.uint8))
    with pytest.raises(ImageError):
        to_bgr8(np.zeros((0, 3, 3), np.uint8))


def test_settings_roundtrip_and_bad_values():
    s = Settings().with_threshold("w600k_mbf", 0.55)
    back = Settings.from_dict(s.to_dict())
    assert back == s and back.threshold_for("w600k_mbf") == 0.55
    bad = Settings.from_dict({"threads": "many", "camera": 3, "unknown_key": 1, "cooldown_seconds": "30"})
    assert bad.threads == Settings().threads and bad.camera == Settings().camera and bad.cooldown_seconds == 30.0
    assert Settings().with_threshold("x", 9).threshold_for("x") == 2.0
