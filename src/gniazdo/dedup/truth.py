"""The sample corpus's duplicate ground truth as index pairs over any list of its documents."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from gniazdo.dedup.evaluate import closed_pairs


def truth_pairs(ids: list[str], ground_truth: str | Path) -> np.ndarray:
    """Pairs (i, j) of positions in ``ids`` that the ground truth says are copies (exact or edited) of one
    another, closed over the whole ground truth first (so two copies of one original count, even when the
    original itself is not among ``ids``)."""
    truth = [json.loads(line) for line in Path(ground_truth).read_text(encoding="utf-8").splitlines()]
    everyone = {t["id"]: k for k, t in enumerate(truth)}
    links = [(everyone[t["id"]], everyone[t["duplicate_of"] or t["near_duplicate_of"]])
             for t in truth if t.get("duplicate_of") or t.get("near_duplicate_of")]
    closed = closed_pairs(np.array(links, dtype=np.int64).reshape(-1, 2), len(truth))
    position = {everyone[i]: k for k, i in enumerate(ids) if i in everyone}
    pairs = sorted((min(position[a], position[b]), max(position[a], position[b]))
                   for a, b in closed if a in position and b in position)
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)
