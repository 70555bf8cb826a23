"""E2, cosine similarity of TF-IDF vectors, estimated with random-hyperplane LSH.

Features are the document's word n-grams (unigrams and bigrams by default, the shingle hashes of
:mod:`gniazdo.dedup.shingles`), weighted ``(1 + log tf) · idf`` with idf fitted on the corpus (smoothed as in
scikit-learn: ``ln((1 + N) / (1 + df)) + 1``). No vector is ever stored: each document becomes ``bits``
signs of random projections (Charikar's random hyperplanes; the ±1 hyperplane entries come from hashing the
feature with a per-64-bit-word seed, so no projection matrix exists either — it is SimHash over TF-IDF
weights, reusing :func:`gniazdo.dedup.simhash.fingerprints`). Two documents agree on each bit with
probability ``1 − θ/π`` where θ is the angle between their vectors, so ``cos(π · hamming / bits)`` estimates
their cosine (standard error ~0.03 at 256 bits near cosine 0.9).

Candidates: the bits are banded (``bands`` × ``rows`` chosen by :func:`gniazdo.dedup.lsh.optimal_bands` for the
bit-agreement probability at the threshold); never all pairs. A pair is a duplicate when the estimated
cosine ≥ ``threshold``.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from pydantic import Field, field_validator

from gniazdo.config import Config
from gniazdo.dedup.expert import Expert
from gniazdo.dedup.shingles import ShingleParams, shingle_counts
from gniazdo.dedup.bits import mix64, popcount
from gniazdo.dedup.simhash import fingerprints

_SEEDS = np.array([0x243F6A8885A308D3, 0x13198A2E03707344, 0xA4093822299F31D0, 0x082EFA98EC4E6C89,
                   0x452821E638D01377, 0xBE5466CF34E90C6C, 0xC0AC29B7C97C50DD, 0x3F84D5B5B5470917],
                  dtype=np.uint64)
_WEIGHT_SCALE = 1000  # fingerprints() sums integer weights; 1e-3 resolution is far below the LSH noise


class CosineParams(Config):
    ngrams: list[int] = Field(default_factory=lambda: [1, 2])  # word n-gram sizes used as features
    bits: int = Field(256, ge=64, le=64 * len(_SEEDS))
    threshold: float = Field(0.8, gt=0, lt=1)
    bands: int | None = None
    rows: int | None = None
    # Bit agreement at cosine 0.8 is only ~0.8, so the S-curve is shallow: weight missed pairs over extra
    # candidates (candidates are checked by the estimate anyway).
    fn_weight: float = Field(0.9, gt=0, lt=1)
    fold_diacritics: bool = False

    @field_validator("bits")
    @classmethod
    def _whole_words(cls, bits: int) -> int:
        if bits % 64:
            raise ValueError("bits must be a multiple of 64")
        return bits


class CosineExpert(Expert):
    name = "cosine"
    Params = CosineParams

    def __init__(self, params: Config | None = None, **kwargs) -> None:
        super().__init__(params, **kwargs)
        self._df_hashes = np.zeros(0, dtype=np.uint64)
        self._idf = np.zeros(0)
        self._default_idf = 1.0
        self._fitted = False

    def _features(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        p: CosineParams = self.params
        parts = [shingle_counts(text, ShingleParams(n=n, fold_diacritics=p.fold_diacritics)) for n in p.ngrams]
        hashes = np.concatenate([h for h, _ in parts])
        counts = np.concatenate([c for _, c in parts])
        unique, inverse = np.unique(hashes, return_inverse=True)
        return unique, np.bincount(inverse, weights=counts)

    def fit(self, texts: Sequence[str]) -> "CosineExpert":
        """Document frequencies of every feature over ``texts`` → idf."""
        n = len(texts)
        features = [self._features(t)[0] for t in texts]
        all_hashes = np.concatenate(features) if features else np.zeros(0, np.uint64)
        self._df_hashes, df = np.unique(all_hashes, return_counts=True)
        self._idf = np.log((1 + n) / (1 + df)) + 1.0
        self._default_idf = math.log(1 + n) + 1.0  # a feature never seen in the fitted corpus
        self._fitted = True
        return self

    def state(self) -> dict[str, np.ndarray]:
        """The fitted idf, so an index can sign later corpora in the same vector space."""
        return {"df_hashes": self._df_hashes, "idf": self._idf, "default_idf": np.array([self._default_idf])}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        self._df_hashes, self._idf = state["df_hashes"], state["idf"]
        self._default_idf = float(state["default_idf"][0])
        self._fitted = True

    def _weights(self, hashes: np.ndarray, counts: np.ndarray) -> np.ndarray:
        pos = np.searchsorted(self._df_hashes, hashes)
        pos = np.minimum(pos, max(len(self._df_hashes) - 1, 0))
        known = (len(self._df_hashes) > 0) & (self._df_hashes[pos] == hashes) if len(self._df_hashes) else \
            np.zeros(len(hashes), dtype=bool)
        idf = np.where(known, self._idf[pos] if len(self._idf) else 0.0, self._default_idf)
        return np.rint((1.0 + np.log(counts)) * idf * _WEIGHT_SCALE).astype(np.int64)

    def signatures(self, texts: Sequence[str]) -> np.ndarray:
        """(n, bits / 64) uint64: the signs of ``bits`` random projections of each TF-IDF vector."""
        if not self._fitted:
            self.fit(texts)
        per_doc = [self._features(t) for t in texts]
        sizes = np.array([len(h) for h, _ in per_doc], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        hashes = np.concatenate([h for h, _ in per_doc]) if per_doc else np.zeros(0, np.uint64)
        weights = np.concatenate([self._weights(h, c) for h, c in per_doc]) if per_doc else np.zeros(0, np.int64)
        words = self.params.bits // 64
        return np.stack([fingerprints(mix64(hashes ^ _SEEDS[k]), weights, offsets) for k in range(words)],
                        axis=1) if len(texts) else np.zeros((0, words), np.uint64)

    def _bands_rows(self) -> tuple[int, int]:
        from gniazdo.dedup.lsh import optimal_bands

        p: CosineParams = self.params
        if p.bands and p.rows:
            return p.bands, p.rows
        agreement = 1.0 - math.acos(p.threshold) / math.pi  # per-bit agreement probability at the threshold
        return optimal_bands(agreement, p.bits, fp_weight=1.0 - p.fn_weight, fn_weight=p.fn_weight)

    def band_keys(self, sigs: np.ndarray) -> np.ndarray:
        from gniazdo.dedup.lsh import band_hashes

        bands, rows = self._bands_rows()
        bits = np.unpackbits(np.ascontiguousarray(sigs, dtype="<u8").view(np.uint8), axis=1, bitorder="little")
        return band_hashes(bits[:, : bands * rows].astype(np.uint64), bands, rows)

    def similarity(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Estimated cosine: cos(π · hamming / bits), clipped to [0, 1]."""
        a = np.asarray(a, np.uint64).reshape(len(a), -1)
        b = np.asarray(b, np.uint64).reshape(len(b), -1)
        distance = popcount(a ^ b).sum(axis=1)
        return np.clip(np.cos(np.pi * distance / self.params.bits), 0.0, 1.0)

    def is_duplicate(self, similarity: np.ndarray) -> np.ndarray:
        return np.asarray(similarity) >= self.params.threshold
