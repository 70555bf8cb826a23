"""MinHash-LSH expert: 64-bit MinHash signatures of word shingles, banded into LSH keys.

Hashing: permutation ``i`` maps a shingle hash ``x`` to ``mix(x XOR seed_i)``, where ``mix`` is a
multiply-xorshift-multiply (wrapping uint64 arithmetic, a bijection, so distinct shingles never tie) and the
seeds are derived from ``params.seed``. All permutations of all shingles of a batch of documents are one
numpy matrix; the per-document minimum is ``np.minimum.reduceat`` over the concatenated shingle array. Work is
chunked so a matrix stays around ``_CHUNK`` elements whatever the document sizes.

A document with no shingles (no words at all) gets the all-``2^64-1`` signature: it agrees with a non-empty
document in practically no position, and two empty documents get similarity 1 — the same as the exact
Jaccard of two empty sets (:func:`gniazdo.dedup.shingles.jaccard`), i.e. empty texts are duplicates of each
other and of nothing else.

With ``verify: true``, :func:`find_duplicates` rescores each LSH candidate with the exact Jaccard of the two
shingle sets, which removes estimation false positives at the cost of shingling the candidates again.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from pydantic import Field, model_validator

from gniazdo.config import Config
from gniazdo.dedup.expert import Expert
from gniazdo.dedup.lsh import band_hashes, candidate_pairs, optimal_bands
from gniazdo.dedup.shingles import ShingleParams, jaccard, shingle_hashes

_M1 = np.uint64(0xBF58476D1CE4E5B9)  # splitmix64's multiplier: turns seeds into odd multipliers
_EMPTY = np.iinfo(np.uint64).max
_CHUNK = 1 << 17  # elements of one (shingles × permutations) matrix: 1 MiB stays in cache, 2x faster than 16


class MinHashParams(Config):
    num_perm: int = Field(128, ge=1)
    threshold: float = Field(0.8, gt=0.0, lt=1.0)  # estimated Jaccard at or above which a pair is a duplicate
    bands: int | None = Field(None, ge=1)  # both None: chosen by optimal_bands(threshold, num_perm)
    rows: int | None = Field(None, ge=1)
    # Weight of missed pairs against extra candidates when choosing bands × rows: dedup would rather check a
    # few more candidates (each is scored by the estimate anyway) than miss a copy. 0.6 → 16×8 at 0.7/128.
    fn_weight: float = Field(0.6, gt=0.0, lt=1.0)
    shingles: ShingleParams = ShingleParams()
    seed: int = Field(1, ge=0)
    verify: bool = False  # rescore candidates with the exact Jaccard of their shingles

    @model_validator(mode="after")
    def _bands_fit(self) -> "MinHashParams":
        if self.bands is not None and self.rows is not None and self.bands * self.rows > self.num_perm:
            raise ValueError(f"bands*rows = {self.bands * self.rows} exceeds num_perm = {self.num_perm}")
        for name in ("bands", "rows"):
            value = getattr(self, name)
            if value is not None and value > self.num_perm:
                raise ValueError(f"{name} = {value} exceeds num_perm = {self.num_perm}")
        return self

    def band_shape(self) -> tuple[int, int]:
        """(bands, rows): as given, the missing one filled to use num_perm, or both optimal."""
        if self.bands is None and self.rows is None:
            return optimal_bands(self.threshold, self.num_perm, 1.0 - self.fn_weight, self.fn_weight)
        if self.rows is None:
            return self.bands, self.num_perm // self.bands
        if self.bands is None:
            return self.num_perm // self.rows, self.rows
        return self.bands, self.rows


def permutation_seeds(num_perm: int, seed: int) -> np.ndarray:
    """``num_perm`` distinct 64-bit seeds derived from ``seed`` (numpy's PCG64: stable across versions)."""
    rng = np.random.Generator(np.random.PCG64(seed))
    return rng.integers(0, np.iinfo(np.uint64).max, size=num_perm, dtype=np.uint64, endpoint=True)


def _multipliers(seeds: np.ndarray) -> np.ndarray:
    """One odd 64-bit multiplier per permutation, derived from its seed."""
    with np.errstate(over="ignore"):
        return (seeds * _M1) | np.uint64(1)


def _permute(x: np.ndarray, seeds: np.ndarray, multipliers: np.ndarray) -> np.ndarray:
    """(len(x), len(seeds)) hashes ``(x XOR seed_i) · a_i mod 2^64`` with odd ``a_i``.

    Each is a bijection of the (already well mixed) shingle hashes; the minimum is decided by the high bits,
    and the high bits of a product depend on every bit of its input (multiplicative hashing). Two operations
    per element instead of splitmix's five; on the dedup benchmark the Jaccard estimates are as good (RMSE
    0.027 vs 0.028 on 400 true pairs, no bias) and the signatures ~15% faster.
    """
    h = x[:, None] ^ seeds[None, :]
    with np.errstate(over="ignore"):
        h *= multipliers[None, :]
    return h


def minhash_signatures(shingle_sets: Sequence[np.ndarray], seeds: np.ndarray) -> np.ndarray:
    """(len(shingle_sets), len(seeds)) uint64 MinHash signatures; empty sets get all ``2^64-1``."""
    num_perm = len(seeds)
    out = np.full((len(shingle_sets), num_perm), _EMPTY, dtype=np.uint64)
    lengths = np.fromiter((len(s) for s in shingle_sets), dtype=np.int64, count=len(shingle_sets))
    docs = np.flatnonzero(lengths)
    for batch in _batches(lengths[docs], _CHUNK // num_perm):
        idx = docs[batch]
        x = np.concatenate([shingle_sets[i] for i in idx]).astype(np.uint64, copy=False)
        starts = np.r_[0, np.cumsum(lengths[idx])[:-1]]
        out[idx] = _batch_minimum(x, starts, seeds)
    return out


def _batches(lengths: np.ndarray, rows: int) -> list[slice]:
    """Consecutive slices of documents with about ``rows`` shingles each (a bigger document goes alone)."""
    bounds = [0]
    ends = np.cumsum(lengths)
    while bounds[-1] < len(lengths):
        done = ends[bounds[-1] - 1] if bounds[-1] else 0
        nxt = int(np.searchsorted(ends, done + rows, side="right"))
        bounds.append(max(nxt, bounds[-1] + 1))
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


def _batch_minimum(x: np.ndarray, starts: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """Per-document minima of every permutation; permutations go in blocks so a matrix stays ~_CHUNK."""
    block = max(1, min(len(seeds), _CHUNK // max(len(x), 1)))
    multipliers = _multipliers(seeds)
    parts = [np.minimum.reduceat(_permute(x, seeds[p: p + block], multipliers[p: p + block]), starts, axis=0)
             for p in range(0, len(seeds), block)]
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)


class MinHashExpert(Expert):
    """MinHash-LSH: similarity = share of equal signature positions (an unbiased Jaccard estimate)."""

    name = "minhash"
    Params = MinHashParams

    def __init__(self, params: MinHashParams | None = None, **kwargs) -> None:
        super().__init__(params, **kwargs)
        self.seeds = permutation_seeds(self.params.num_perm, self.params.seed)

    def shingles(self, texts: Sequence[str]) -> list[np.ndarray]:
        return [shingle_hashes(t, self.params.shingles) for t in texts]

    def signatures(self, texts: Sequence[str]) -> np.ndarray:
        return minhash_signatures(self.shingles(texts), self.seeds)

    def band_keys(self, sigs: np.ndarray) -> np.ndarray:
        bands, rows = self.params.band_shape()
        return band_hashes(sigs, bands, rows)

    def similarity(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        a, b = np.atleast_2d(a), np.atleast_2d(b)
        return (a == b).mean(axis=1)

    def is_duplicate(self, similarity: np.ndarray) -> np.ndarray:
        return np.asarray(similarity) >= self.params.threshold

    def exact_similarity(self, texts: Sequence[str], pairs: np.ndarray) -> np.ndarray:
        """Exact Jaccard of the shingle sets of each pair; only the documents in ``pairs`` are shingled."""
        needed = np.unique(pairs)
        sets = dict(zip(needed.tolist(), self.shingles([texts[i] for i in needed])))
        return np.array([jaccard(sets[i], sets[j]) for i, j in pairs.tolist()], dtype=np.float64)


def find_duplicates(expert: Expert, texts: Sequence[str], max_bucket: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (m, 2) judged duplicate by ``expert`` and their similarities (m,).

    signatures → band keys → candidate pairs → similarity of each candidate → the expert's verdict. An
    expert whose params say ``verify: true`` and that offers ``exact_similarity(texts, pairs)`` has its
    candidates rescored exactly before the verdict.
    """
    sigs = expert.signatures(texts)
    pairs = candidate_pairs(expert.band_keys(sigs), max_bucket=max_bucket)
    if len(pairs) == 0:
        return pairs, np.zeros(0, dtype=np.float64)
    if getattr(expert.params, "verify", False) and hasattr(expert, "exact_similarity"):
        sims = expert.exact_similarity(texts, pairs)
    else:
        sims = expert.similarity(sigs[pairs[:, 0]], sigs[pairs[:, 1]])
    keep = expert.is_duplicate(sims)
    return pairs[keep], sims[keep]
