"""Pure-logic tests of faceapp.core.metrics (hand-made distance matrices: no claim about faces)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from faceapp.core import metrics
from faceapp.core.scale import l2_normalize
from faceapp.core.types import BBox


def _scores(mated, rank1, nonmated) -> metrics.SearchScores:
    return metrics.SearchScores(np.asarray(mated, float), np.asarray(rank1, bool), np.asarray(nonmated, float))


def test_search_scores_split_mated_and_nonmated_searches():
    pd = np.array([
        [0.2, 0.9, 0.8],   # person 0, found first
        [0.5, 0.4, 0.9],   # person 0, but person 1 is nearer: not rank 1
        [0.9, 0.9, 0.3],   # person 2, found first
        [0.7, 0.6, 0.95],  # a stranger: best 0.6
        [0.3, 0.3, 0.9],   # person 1, tied with person 0: a tie is not rank 1
    ])
    s = metrics.search_scores(pd, np.array([0, 0, 2, -1, 1]))
    np.testing.assert_allclose(s.mated_distance, [0.2, 0.5, 0.3, 0.3])
    assert s.mated_rank1.tolist() == [True, False, True, False]
    np.testing.assert_allclose(s.nonmated_distance, [0.6])
    assert metrics.rank1_accuracy(s) == pytest.approx(0.5)


def test_search_scores_with_one_person_and_with_an_empty_gallery():
    s = metrics.search_scores(np.array([[0.4], [0.8]]), np.array([0, -1]))
    assert s.mated_rank1.tolist() == [True]
    s = metrics.search_scores(np.zeros((2, 0)), np.array([-1, -1]))
    assert s.n_mated == 0 and np.isinf(s.nonmated_distance).all()
    assert math.isnan(metrics.rank1_accuracy(s))
    with pytest.raises(ValueError):
        metrics.search_scores(np.zeros((1, 0)), np.array([0]))
    with pytest.raises(ValueError):
        metrics.search_scores(np.zeros((2, 2)), np.array([0]))


def test_fnir_counts_wrong_rank_and_distance_over_threshold():
    s = _scores([0.2, 0.5, 0.3, 0.6], [True, False, True, True], [0.55, 0.7])
    assert metrics.fnir_at(s, 0.4) == pytest.approx(0.5)   # 0.5 wrong rank, 0.6 too far
    assert metrics.fnir_at(s, 1.0) == pytest.approx(0.25)  # the wrong rank never becomes a hit
    assert metrics.fpir_at(s, 0.55) == pytest.approx(0.5)  # accepts distance == threshold
    assert metrics.fpir_at(s, 0.549) == 0.0


def test_threshold_at_rate_accepts_at_most_the_allowed_fraction():
    imp = np.linspace(0.5, 1.0, 200)  # 200 strangers
    t = metrics.threshold_at_rate(imp, 0.01)   # 2 may be accepted
    assert np.sum(imp <= t) == 2
    assert t < imp[2] and t >= imp[1]
    assert np.sum(imp <= metrics.threshold_at_rate(imp, 0.0)) == 0
    assert metrics.threshold_at_rate(imp, 1.0) == pytest.approx(1.0)
    assert math.isnan(metrics.threshold_at_rate(np.zeros(0), 0.01))
    # Ties: never accept more than allowed even if several share the boundary value.
    tied = np.array([0.3, 0.5, 0.5, 0.5, 0.9])
    assert np.sum(tied <= metrics.threshold_at_rate(tied, 0.4)) <= 2


def test_fnir_at_fpir_on_separable_and_overlapping_classes():
    rng = np.random.default_rng(0)
    gen = rng.uniform(0.1, 0.5, 300)
    imp = rng.uniform(0.6, 1.0, 500)
    s = _scores(gen, np.ones(300, bool), imp)
    fnir, t = metrics.fnir_at_fpir(s, 0.01)
    assert fnir == 0.0 and metrics.fpir_at(s, t) <= 0.01
    eer, t_eer = metrics.equal_error_rate(s)
    assert eer == 0.0 and 0.5 <= t_eer <= 0.6   # halfway through the gap, not at its edge
    overlap = _scores(np.r_[gen, [0.7, 0.8, 0.9]], np.ones(303, bool), np.r_[imp, [0.2, 0.3]])
    fnir, t = metrics.fnir_at_fpir(overlap, 0.01)
    assert metrics.fpir_at(overlap, t) <= 0.01
    assert fnir == pytest.approx(metrics.fnir_at(overlap, t))
    eer, t_eer = metrics.equal_error_rate(overlap)
    assert 0 < eer < 0.02
    assert max(metrics.fnir_at(overlap, t_eer), metrics.fpir_at(overlap, t_eer)) == pytest.approx(eer)


def test_error_curve_is_monotone_from_reject_all_to_accept_all():
    rng = np.random.default_rng(1)
    s = _scores(rng.uniform(0.2, 0.7, 50), rng.uniform(size=50) > 0.1, rng.uniform(0.5, 1.0, 80))
    c = metrics.error_curve(s)
    assert c.fpir[0] == 0.0 and c.fnir[0] == 1.0
    assert c.fpir[-1] == 1.0 and c.fnir[-1] == pytest.approx(1 - s.mated_rank1.mean())
    assert np.all(np.diff(c.fpir) >= 0) and np.all(np.diff(c.fnir) <= 0)
    for i in (3, 20, 60):
        assert c.fnir[i] == pytest.approx(metrics.fnir_at(s, c.thresholds[i]))
        assert c.fpir[i] == pytest.approx(metrics.fpir_at(s, c.thresholds[i]))


def test_rates_are_nan_without_samples():
    s = _scores([], [], [0.5])
    assert math.isnan(metrics.fnir_at(s, 0.5)) and math.isnan(metrics.equal_error_rate(s)[0])
    s = _scores([0.2], [True], [])
    assert math.isnan(metrics.fpir_at(s, 0.5)) and math.isnan(metrics.fnir_at_fpir(s, 0.01)[0])


def test_concat_pools_batches():
    a = _scores([0.1], [True], [0.9])
    b = _scores([0.2, 0.3], [True, False], [])
    c = metrics.SearchScores.concat([a, b])
    assert c.n_mated == 3 and c.n_nonmated == 1
    assert metrics.SearchScores.concat([]).n_mated == 0


def test_histogram_clips_into_the_range_and_drops_non_finite():
    counts, edges = metrics.histogram(np.array([-0.5, 0.05, 0.5, 3.0, np.inf, np.nan]), bins=10, lo=0.0, hi=1.0)
    assert counts.sum() == 4 and counts[0] == 2 and counts[-1] == 1
    assert edges[0] == 0.0 and edges[-1] == 1.0


def test_rule_of_three():
    assert metrics.min_samples_for_rate(0.01) == 300
    assert metrics.min_samples_for_rate(0.05) == 60
    assert metrics.min_samples_for_rate(0.0) > 10**12


def test_gallery_pair_distances_by_kind():
    rng = np.random.default_rng(2)
    centres = l2_normalize(rng.normal(size=(4, 64)))
    labels = np.repeat([10, 20, 30, 40], [3, 3, 2, 1])
    emb = l2_normalize(centres[np.searchsorted([10, 20, 30, 40], labels)] + 0.1 * rng.normal(size=(9, 64)))
    p = metrics.gallery_pair_distances(emb, labels)
    assert p.genuine.size == 3 + 3 + 1
    assert p.impostor.size == 36 - 7
    assert p.nearest_other.size == 9 and not p.sampled
    assert p.n_people == 4 and p.n_templates == 9
    assert p.genuine.max() < p.impostor.min()
    d = 1 - emb @ emb.T
    assert p.nearest_other[0] == pytest.approx(d[0, 3:].min(), abs=1e-5)
    frr, far = metrics.accept_rates(p.genuine, p.impostor, float(p.genuine.max()))
    assert frr == 0.0 and far == 0.0


def test_gallery_pair_distances_samples_large_galleries():
    rng = np.random.default_rng(3)
    emb = l2_normalize(rng.normal(size=(600, 32)))
    labels = np.arange(600) // 3
    p = metrics.gallery_pair_distances(emb, labels, max_rows=100)
    assert p.sampled and p.genuine.size == 200 * 3
    assert p.nearest_other.size == 100
    assert metrics.gallery_pair_distances(emb[:1], labels[:1]).nearest_other.size == 0
    with pytest.raises(ValueError):
        metrics.gallery_pair_distances(emb, labels[:5])


def test_pair_by_iou_is_one_to_one_and_greedy():
    a = [BBox(0, 0, 10, 10), BBox(20, 0, 30, 10), BBox(100, 100, 110, 110)]
    b = [BBox(21, 0, 31, 10), BBox(1, 0, 11, 10), BBox(2, 0, 12, 10)]
    assert metrics.pair_by_iou(a, b) == [(0, 1), (1, 0), (2, None)]
    assert metrics.pair_by_iou(a, []) == [(0, None), (1, None), (2, None)]
    assert metrics.pair_by_iou([], b) == []
