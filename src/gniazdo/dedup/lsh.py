"""Locality-sensitive hashing over signature bands: choosing bands × rows, band keys, candidate pairs.

A signature of ``bands * rows`` columns is cut into ``bands`` bands of ``rows`` columns; two documents become a
candidate pair when all the columns of at least one band agree. For a per-column agreement probability ``s``
(the Jaccard similarity, for MinHash) the pair is a candidate with probability ``P(s) = 1 - (1 - s^r)^b``: an
S-curve whose steep part :func:`optimal_bands` places at the threshold.

Everything is vectorised with numpy: band keys are a multiply-xorshift mix of a band's columns (no per-row
Python hashing), and candidate pairs come from sorting each key column once.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from gniazdo.dedup.bits import mix64

# The golden-ratio constant: salts band indices and row positions (fixed, so keys are stable across runs).
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_GRID = 2001  # Simpson points per integral; odd, so Simpson's rule applies to the whole interval


def _simpson(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Simpson's rule along the last axis for an odd number of equally spaced points."""
    step = x[1] - x[0]
    return step / 3 * (y[..., 0] + y[..., -1] + 4 * y[..., 1:-1:2].sum(-1) + 2 * y[..., 2:-1:2].sum(-1))


@lru_cache(maxsize=256)
def optimal_bands(threshold: float, num_perm: int, fp_weight: float = 0.5,
                  fn_weight: float = 0.5) -> tuple[int, int]:
    """(bands, rows), ``bands * rows <= num_perm``, minimising the weighted false-positive and false-negative areas.

    False-positive area: ``∫_0^t P(s) ds`` (pairs below the threshold that become candidates); false-negative
    area: ``∫_t^1 1 - P(s) ds``. Both integrals are computed for every (b, r) at once with Simpson's rule on a
    fine grid (the curves are smooth polynomials, so this matches adaptive quadrature to ~1e-10). Ties go to
    the smallest b, then the smallest r, like datasketch's search order.
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    if num_perm < 1:
        raise ValueError(f"num_perm must be >= 1, got {num_perm}")
    b, r = _all_band_shapes(num_perm)
    s_fp = np.linspace(0.0, threshold, _GRID)
    s_fn = np.linspace(threshold, 1.0, _GRID)
    fp = _simpson(_candidate_probability(s_fp, b, r), s_fp)
    fn = _simpson(1.0 - _candidate_probability(s_fn, b, r), s_fn)
    best = int(np.argmin(fp_weight * fp + fn_weight * fn))  # argmin takes the first minimum: search order
    return int(b[best]), int(r[best])


def _all_band_shapes(num_perm: int) -> tuple[np.ndarray, np.ndarray]:
    """Every (b, r) with b * r <= num_perm, ordered by b then r."""
    shapes = [(b, r) for b in range(1, num_perm + 1) for r in range(1, num_perm // b + 1)]
    arr = np.array(shapes, dtype=np.float64)
    return arr[:, 0], arr[:, 1]


def _candidate_probability(s: np.ndarray, b: np.ndarray, r: np.ndarray) -> np.ndarray:
    """P(candidate | s) = 1 - (1 - s^r)^b for every (b, r) (rows) and s (columns)."""
    return 1.0 - (1.0 - s[None, :] ** r[:, None]) ** b[:, None]


def candidate_probability(s: float | np.ndarray, bands: int, rows: int) -> np.ndarray:
    """The S-curve of one (bands, rows) choice, for reports and tests."""
    s = np.asarray(s, dtype=np.float64)
    return 1.0 - (1.0 - s ** rows) ** bands


def band_hashes(sigs: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(n, bands) uint64 keys: band k's key hashes columns ``k*rows … (k+1)*rows - 1`` of each signature.

    The key starts from a per-band salt (so equal values in different bands give different keys) and folds
    in one column at a time through a bijective mix — a Python loop over ``rows`` only, each step a numpy
    operation on all documents and bands at once.
    """
    sigs = np.asarray(sigs)
    n, width = sigs.shape
    if bands < 1 or rows < 1 or bands * rows > width:
        raise ValueError(f"bands*rows = {bands}*{rows} does not fit signatures of width {width}")
    cols = sigs[:, : bands * rows].astype(np.uint64, copy=False).reshape(n, bands, rows)
    salt = mix64((np.arange(bands, dtype=np.uint64) + np.uint64(1)) * _GOLDEN)
    h = np.broadcast_to(salt, (n, bands)).copy()
    with np.errstate(over="ignore"):
        for k in range(rows):
            h = mix64(h ^ cols[:, :, k]) + _GOLDEN * np.uint64(k + 1)  # position matters: (x, y) ≠ (y, x)
    return h


def candidate_pairs(keys: np.ndarray, max_bucket: int = 1000) -> np.ndarray:
    """Unique sorted pairs (i, j), i < j, of documents sharing a key in some column: (m, 2) int64.

    Within a bucket (equal keys in one column) every pair is emitted — unless the bucket has more than
    ``max_bucket`` members: then it emits a star, each member paired with the bucket's first (lowest index)
    document, so the bucket costs ``size - 1`` pairs instead of ``size² / 2``. Huge buckets are usually one
    boilerplate text repeated many times; the star still links all its members into one cluster (union-find),
    it only skips scoring the pairs between the non-first members.
    """
    keys = np.asarray(keys)
    if keys.ndim != 2:
        raise ValueError(f"keys must be (n, bands), got shape {keys.shape}")
    if max_bucket < 2:
        raise ValueError(f"max_bucket must be >= 2, got {max_bucket}")
    n = keys.shape[0]
    parts = [_column_pairs(keys[:, c], max_bucket) for c in range(keys.shape[1])]
    codes = np.unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)
    # Pairs are encoded as i * n + j for a single np.unique; decoding keeps them sorted by (i, j).
    return np.stack([codes // max(n, 1), codes % max(n, 1)], axis=1).astype(np.int64)


def _column_pairs(col: np.ndarray, max_bucket: int) -> np.ndarray:
    """Pairs within equal-key buckets of one column, encoded as i * n + j (i < j)."""
    n = len(col)
    order = np.argsort(col, kind="stable")  # stable: in each bucket the first member is the lowest index
    sorted_keys = col[order]
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    sizes = np.diff(np.r_[starts, n])
    bucket_end = np.repeat(starts + sizes, sizes)
    pos = np.arange(n)
    # Each member pairs with every later member of its bucket; in a capped bucket only the first does.
    count = bucket_end - pos - 1
    capped = np.repeat(sizes > max_bucket, sizes)
    count[capped & (pos != np.repeat(starts, sizes))] = 0
    total = int(count.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    left = np.repeat(pos, count)
    offset = np.arange(total) - np.repeat(np.cumsum(count) - count, count)
    right = left + 1 + offset
    a, b = order[left].astype(np.int64), order[right].astype(np.int64)
    return np.minimum(a, b) * n + np.maximum(a, b)
