"""Clusters from accepted pairs (scipy and the numpy union-find), survivors, keep rules, size histograms."""

import numpy as np
import pytest

from gniazdo.dedup import clusters as cl
from gniazdo.dedup.clusters import choose_survivors, cluster_size_histogram, find_clusters, keep_scores
from gniazdo.errors import UserError

BACKENDS = [False] + ([True] if cl._scipy_components is not None else [])


def _reference(pairs, n):
    """A plain Python union-find: smallest index of each component."""
    parent = list(range(n))

    def root(x):
        while parent[x] != x:
            x = parent[x]
        return x

    for a, b in pairs:
        ra, rb = root(int(a)), root(int(b))
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return np.array([root(i) for i in range(n)])


@pytest.mark.parametrize("use_scipy", BACKENDS)
def test_known_components(use_scipy):
    # {0, 3, 5}, {1, 4}, {2}, {6, 7, 8} — pairs in no particular order, one repeated, one reversed.
    pairs = np.array([[5, 3], [3, 0], [4, 1], [7, 8], [6, 8], [0, 5], [3, 5]])
    ids, sizes = find_clusters(pairs, 9, use_scipy=use_scipy)
    assert ids.tolist() == [0, 1, 2, 0, 1, 0, 6, 6, 6]
    assert sizes.tolist() == [3, 2, 1, 0, 0, 0, 3, 0, 0]
    assert sizes[ids].tolist() == [3, 2, 1, 3, 2, 3, 3, 3, 3]
    assert cluster_size_histogram(sizes) == {1: 1, 2: 1, 3: 2}


@pytest.mark.parametrize("use_scipy", BACKENDS)
def test_chain_joins_into_one_cluster(use_scipy):
    n = 1000
    rng = np.random.default_rng(0)
    pairs = np.stack([np.arange(1, n), np.arange(n - 1)], axis=1)[rng.permutation(n - 1)]  # i+1 — i, shuffled
    ids, sizes = find_clusters(pairs, n, use_scipy=use_scipy)
    assert (ids == 0).all()
    assert sizes[0] == n and sizes[1:].sum() == 0
    assert cluster_size_histogram(sizes) == {n: 1}


@pytest.mark.parametrize("use_scipy", BACKENDS)
def test_singletons_and_no_pairs(use_scipy):
    ids, sizes = find_clusters(np.zeros((0, 2), dtype=np.int64), 4, use_scipy=use_scipy)
    assert ids.tolist() == [0, 1, 2, 3] and sizes.tolist() == [1, 1, 1, 1]
    assert cluster_size_histogram(sizes) == {1: 4}
    ids, sizes = find_clusters(np.array([[2, 2]]), 3, use_scipy=use_scipy)  # a self-pair changes nothing
    assert ids.tolist() == [0, 1, 2]
    ids, _ = find_clusters(np.zeros((0, 2)), 0, use_scipy=use_scipy)
    assert ids.shape == (0,)


def test_pairs_out_of_range():
    with pytest.raises(ValueError, match="lie in"):
        find_clusters(np.array([[0, 5]]), 5)


@pytest.mark.parametrize("use_scipy", BACKENDS)
def test_random_small_graphs_match_reference(use_scipy):
    rng = np.random.default_rng(1)
    for _ in range(30):
        n = int(rng.integers(1, 60))
        pairs = rng.integers(0, n, size=(int(rng.integers(0, 80)), 2))
        ids, sizes = find_clusters(pairs, n, use_scipy=use_scipy)
        assert ids.tolist() == _reference(pairs, n).tolist()
        assert sizes.sum() == n


def test_million_random_pairs():
    n, m = 2_000_000, 1_000_000
    rng = np.random.default_rng(2)
    pairs = rng.integers(0, n, size=(m, 2))
    ids_np, sizes_np = find_clusters(pairs, n, use_scipy=False)
    if cl._scipy_components is not None:
        ids_sp, sizes_sp = find_clusters(pairs, n, use_scipy=True)
        assert np.array_equal(ids_np, ids_sp)
        assert np.array_equal(sizes_np, sizes_sp)
    roots = np.unique(ids_np)
    assert (ids_np[roots] == roots).all() and (ids_np <= np.arange(n)).all()  # ids are smallest members
    assert int((sizes_np > 0).sum()) == len(roots)
    # Every pair ends inside one cluster.
    assert (ids_np[pairs[:, 0]] == ids_np[pairs[:, 1]]).all()
    hist = cluster_size_histogram(sizes_np)
    assert sum(s * c for s, c in hist.items()) == n and sum(hist.values()) == len(roots)


def test_survivor_highest_score_ties_first():
    ids = np.array([0, 1, 0, 1, 4, 0])
    scores = np.array([1.0, 5.0, 3.0, 5.0, 0.0, 3.0])
    # cluster 0: docs 0, 2, 5 — 2 and 5 tie at 3 → 2; cluster 1: 1 and 3 tie → 1; 4 alone.
    assert choose_survivors(ids, scores).tolist() == [2, 1, 2, 1, 4, 2]
    assert choose_survivors(ids, np.zeros(6)).tolist() == [0, 1, 0, 1, 4, 0]  # first in corpus order
    assert choose_survivors(np.array([7, 7]), np.array([np.nan, -1.0])).tolist() == [1, 1]  # NaN is lowest
    assert choose_survivors(np.array([], dtype=int), np.array([])).shape == (0,)


def test_keep_rules():
    lengths = [10, 30, 20, 30]
    metas = [{"quality": "LOW", "n": 3}, {"quality": "medium"}, {"quality": "HIGH", "n": 2.5}, {"n": "x"}]
    assert keep_scores("first", lengths).tolist() == [0, 0, 0, 0]
    assert keep_scores("longest", lengths).tolist() == [10, 30, 20, 30]
    assert keep_scores("quality", lengths, metas).tolist() == [0, 1, 2, -1]
    assert keep_scores("meta:n", lengths, metas).tolist() == [3, -np.inf, 2.5, -np.inf]
    assert keep_scores("meta:n", lengths, [{"n": True}, None, {}, {"n": -4}]).tolist() == [-np.inf] * 3 + [-4]


def test_keep_rules_pick_survivors_end_to_end():
    ids, _ = find_clusters(np.array([[0, 1], [1, 2], [1, 3]]), 4)
    lengths = [10, 30, 20, 30]
    metas = [{"quality": "LOW", "n": 3}, {"quality": "MEDIUM"}, {"quality": "HIGH", "n": 2.5}, {"n": "x"}]
    assert choose_survivors(ids, keep_scores("first", lengths)).tolist() == [0] * 4
    assert choose_survivors(ids, keep_scores("longest", lengths)).tolist() == [1] * 4  # 1 and 3 tie → 1
    assert choose_survivors(ids, keep_scores("quality", lengths, metas)).tolist() == [2] * 4
    assert choose_survivors(ids, keep_scores("meta:n", lengths, metas)).tolist() == [0] * 4


def test_keep_rule_errors():
    with pytest.raises(UserError, match="unknown keep rule 'best'.*meta:KEY"):
        keep_scores("best", [1])
    with pytest.raises(UserError):
        keep_scores("meta:", [1], [{}])
    with pytest.raises(ValueError, match="meta dict"):
        keep_scores("quality", [1, 2])
