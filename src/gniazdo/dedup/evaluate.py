"""Scoring near-duplicate detection against a ground truth, as pairs within clusters.

Both the predicted and the true pairs are closed transitively (a~b and b~c make a~c: documents in one
cluster are all duplicates of each other), then compared as sets of pairs: precision = correct predicted
pairs / predicted pairs, recall = correct predicted pairs / true pairs. Closing both sides scores a method by
the clusters it produces, which is what deduplication keeps or removes.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

from gniazdo.dedup.clusters import find_clusters


def closed_pairs(pairs: np.ndarray, n: int) -> set[tuple[int, int]]:
    ids, _ = find_clusters(np.asarray(pairs, dtype=np.int64).reshape(-1, 2), n)
    groups: dict[int, list[int]] = {}
    for doc, cluster in enumerate(ids.tolist()):
        groups.setdefault(cluster, []).append(doc)
    return {pair for members in groups.values() if len(members) > 1 for pair in combinations(members, 2)}


def pair_scores(predicted: np.ndarray, truth: np.ndarray, n: int) -> dict[str, float]:
    pred, true = closed_pairs(predicted, n), closed_pairs(truth, n)
    hit = len(pred & true)
    precision = hit / len(pred) if pred else 1.0
    recall = hit / len(true) if true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "predicted": len(pred), "true": len(true)}
