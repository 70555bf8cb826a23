"""Clusters of near-duplicates from accepted pairs, and the one document kept from each cluster.

``find_clusters(pairs, n)`` joins documents linked by accepted pairs (transitively: a-b and b-c put a, b, c
together) and names each cluster by its smallest document index, so ids are stable whatever order the pairs
come in. It uses ``scipy.sparse.csgraph.connected_components`` when scipy is installed (C, linear time) and
otherwise a vectorised numpy union-find (hooking roots onto smaller roots plus pointer jumping, i.e. path
compression over whole arrays), which needs a few dozen passes over the pairs even for millions of them.

``choose_survivors(cluster_ids, scores)`` picks per cluster the member with the highest score, ties going to
the smallest index (first in corpus order); ``keep_scores(rule, lengths, metas)`` turns a keep rule —
``first``, ``longest``, ``quality`` (meta ``quality`` HIGH > MEDIUM > LOW) or ``meta:KEY`` (a numeric meta
field, higher wins) — into those scores, as ``exact_dedup``'s ``keep`` does.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Any, Mapping, Sequence

import numpy as np

from gniazdo.errors import UserError

try:  # scipy is optional (scikit-learn brings it); its C connected components beat any numpy loop
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components as _scipy_components
except ImportError:  # pragma: no cover - exercised by forcing the fallback in tests
    _scipy_components = None

_QUALITY_RANK = {"HIGH": 2.0, "MEDIUM": 1.0, "LOW": 0.0}
KEEP_RULES = ("first", "longest", "quality", "meta:KEY")


def _check_pairs(pairs: np.ndarray, n: int) -> np.ndarray:
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    if pairs.size and (pairs.min() < 0 or pairs.max() >= n):
        raise ValueError(f"pair indices must lie in [0, {n}), got [{pairs.min()}, {pairs.max()}]")
    return pairs


def _roots_scipy(pairs: np.ndarray, n: int) -> np.ndarray:
    """Component labels from scipy, renamed to each component's smallest index."""
    graph = coo_matrix((np.ones(len(pairs), dtype=np.int8), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, labels = _scipy_components(graph, directed=False)
    # np.unique's first occurrence of each label is the component's smallest index (indices ascend).
    _, first = np.unique(labels, return_index=True)
    return first[labels].astype(np.int64)


def _roots_numpy(pairs: np.ndarray, n: int) -> np.ndarray:
    """Union-find over whole arrays: every parent points at a smaller-or-equal index, so the final root of a
    component is its smallest index (that node can point nowhere lower inside the component)."""
    parent = np.arange(n, dtype=np.int64)
    a, b = pairs[:, 0], pairs[:, 1]
    while True:
        ra, rb = parent[a], parent[b]  # parent is a star forest here: these are roots
        differ = ra != rb
        if not differ.any():
            return parent
        lo, hi = np.minimum(ra[differ], rb[differ]), np.maximum(ra[differ], rb[differ])
        # Hook each root onto the smallest root it meets; roots hooked this pass form trees, not cycles.
        np.minimum.at(parent, hi, lo)
        while True:  # pointer jumping = path compression for every node at once
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand


def find_clusters(pairs: np.ndarray, n: int, use_scipy: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Cluster ``n`` documents linked by ``pairs`` ((m, 2) indices).

    Returns ``(cluster_ids, sizes)``: ``cluster_ids[i]`` is the smallest document index in i's cluster
    (a singleton is its own cluster); ``sizes[c]`` is the size of cluster ``c`` (length n, 0 where ``c`` is
    not a cluster id), so ``sizes[cluster_ids]`` gives each document's cluster size. ``use_scipy=None``
    uses scipy when installed; False forces the numpy union-find.
    """
    pairs = _check_pairs(pairs, n)
    scipy_ok = _scipy_components is not None and use_scipy is not False
    if use_scipy and _scipy_components is None:
        raise ValueError("use_scipy=True but scipy is not installed")
    if len(pairs) == 0:
        ids = np.arange(n, dtype=np.int64)
    else:
        ids = _roots_scipy(pairs, n) if scipy_ok else _roots_numpy(pairs, n)
    return ids, np.bincount(ids, minlength=n).astype(np.int64)


def cluster_size_histogram(sizes: np.ndarray) -> dict[int, int]:
    """``{cluster size: number of clusters}`` from ``find_clusters``'s sizes (zeros skipped), sizes ascending."""
    sizes = np.asarray(sizes, dtype=np.int64)
    values, counts = np.unique(sizes[sizes > 0], return_counts=True)
    return {int(v): int(c) for v, c in zip(values, counts)}


def choose_survivors(cluster_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """The index of the document kept from each document's cluster: highest score, ties → smallest index.

    NaN scores rank lowest. Works for any integer cluster labels, not only ``find_clusters``'s.
    """
    cluster_ids = np.asarray(cluster_ids)
    scores = np.asarray(scores, dtype=np.float64)
    if cluster_ids.shape != scores.shape or cluster_ids.ndim != 1:
        raise ValueError(f"cluster_ids {cluster_ids.shape} and scores {scores.shape} must be equal 1-d shapes")
    if cluster_ids.size == 0:
        return np.zeros(0, dtype=np.int64)
    key = -np.nan_to_num(scores, nan=-np.inf, posinf=np.inf, neginf=-np.inf)
    # Stable sort by (cluster, -score): equal scores keep corpus order, so the first row per cluster wins.
    order = np.lexsort((key, cluster_ids))
    sorted_ids = cluster_ids[order]
    starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
    labels, best = sorted_ids[starts], order[starts]
    return best[np.searchsorted(labels, cluster_ids)].astype(np.int64)


def _meta_number(meta: Mapping[str, Any] | None, key: str) -> float:
    value = (meta or {}).get(key)
    # bool is a Real; a flag is not a measure to rank by. Missing or non-numeric ranks lowest.
    if isinstance(value, Real) and not isinstance(value, bool) and not math.isnan(value):
        return float(value)
    return -math.inf


def keep_scores(
    rule: str, lengths: Sequence[int] | np.ndarray, metas: Sequence[Mapping[str, Any] | None] | None = None
) -> np.ndarray:
    """Scores for ``choose_survivors`` under a keep rule (see the module docstring), one per document.

    ``lengths`` are text lengths (it also fixes the number of documents); ``metas`` the documents' meta
    dicts, needed by ``quality`` and ``meta:KEY``. Unknown quality labels score -1, below LOW; a missing
    or non-numeric ``meta:KEY`` value scores -inf.
    """
    lengths = np.asarray(lengths, dtype=np.float64)
    n = len(lengths)
    if rule == "first":
        return np.zeros(n)
    if rule == "longest":
        return lengths.copy()
    if rule == "quality" or (rule.startswith("meta:") and rule[5:]):
        if metas is None or len(metas) != n:
            raise ValueError(f"keep rule {rule!r} needs one meta dict per document ({n})")
        if rule == "quality":
            return np.array([_QUALITY_RANK.get(str((m or {}).get("quality", "")).upper(), -1.0) for m in metas])
        return np.array([_meta_number(m, rule[5:]) for m in metas], dtype=np.float64)
    raise UserError(f"unknown keep rule {rule!r}; valid: {', '.join(KEEP_RULES)}")
