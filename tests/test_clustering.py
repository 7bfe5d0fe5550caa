"""Grouping logic (core.clustering) on synthetic embeddings: pure logic, no models."""

from __future__ import annotations

import numpy as np
import pytest

from faceapp.core.clustering import average_linkage, bcubed, cluster, incremental_average, threshold_components


def people(n_people: int, per_person: int, spread: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Unit embeddings around random centres; ``spread`` sets the same-person distance."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_people, 64))
    rows = np.repeat(centres, per_person, axis=0) + spread * rng.normal(size=(n_people * per_person, 64))
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return rows.astype(np.float32), np.repeat(np.arange(n_people), per_person)


def test_bcubed_by_hand():
    truth = np.array([0, 0, 0, 1, 1])
    assert bcubed(truth, np.array([5, 5, 5, 7, 7])) == (1.0, 1.0, 1.0)
    p, r, f = bcubed(truth, np.array([1, 1, 1, 1, 1]))      # one group for everybody
    assert p == pytest.approx((3 * 3 / 5 + 2 * 2 / 5) / 5) and r == 1.0
    p, r, f = bcubed(truth, np.arange(5))                   # everybody alone
    assert p == 1.0 and r == pytest.approx((3 * 1 / 3 + 2 * 1 / 2) / 5)
    assert f == pytest.approx(2 * p * r / (p + r))
    with pytest.raises(ValueError):
        bcubed(truth, np.zeros(4))


def test_separated_people_are_found_by_every_method():
    emb, truth = people(8, 6, spread=0.3)
    for method in ("components", "average", "incremental_average"):
        labels = cluster(emb, 0.5, method)
        assert bcubed(truth, labels)[2] == 1.0, method
        assert np.unique(labels).size == 8


def test_components_do_not_depend_on_arrival_order_and_link_chains():
    emb, _ = people(5, 8, spread=0.35, seed=3)
    order = np.random.default_rng(1).permutation(len(emb))
    a = threshold_components(emb, 0.6)
    b = threshold_components(emb[order], 0.6)
    # Same partition whatever the order (labels are renumbered by first appearance).
    assert sorted(map(sorted, _groups(a))) == sorted(map(sorted, _groups(b[np.argsort(order)])))
    # A chain of faces each within the threshold of the next is one group for components, not for average.
    chain = np.array([[np.cos(t), np.sin(t)] for t in np.linspace(0, 2.0, 9)], np.float32)
    assert np.unique(threshold_components(chain, 0.05)).size == 1
    assert np.unique(average_linkage(chain, 0.05)).size > 1
    # Blocks smaller than the data give the same answer.
    assert (threshold_components(emb, 0.6, block=7) == a).all()


def test_nothing_within_the_threshold_stays_apart():
    emb, _ = people(6, 1, spread=0.0)
    for fn in (threshold_components, average_linkage, incremental_average):
        assert np.unique(fn(emb, 0.3)).size == 6
    assert threshold_components(np.zeros((0, 8), np.float32), 0.5).size == 0
    with pytest.raises(ValueError, match="unknown clustering method"):
        cluster(emb, 0.5, "kmeans")


def _groups(labels: np.ndarray) -> list[list[int]]:
    return [list(np.flatnonzero(labels == v)) for v in np.unique(labels)]
