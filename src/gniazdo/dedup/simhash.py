"""SimHash expert: one 64-bit fingerprint per document, near-duplicates within a small Hamming distance.

Fingerprint (Charikar 2002; Manku et al. 2007): every word n-gram shingle has a 64-bit hash; each bit of
the fingerprint is the sign of the weighted vote of all shingles, a shingle voting +w where its hash has a
1 and −w where it has a 0 (w = the shingle's term frequency in the document). Documents whose weighted
shingle vectors have high cosine similarity agree on most bits.

Everything is vectorised with numpy: the shingle hashes of many documents are concatenated, their 64 bits
unpacked at once into an (m, 64) array, the weighted votes summed per document with ``np.add.reduceat``.

Candidates: the 64 bits are cut into ``bands`` contiguous ranges. Two fingerprints within Hamming distance k
differ in at most k bits, so with k + 1 bands at least one band holds none of those bits (pigeonhole) and
agrees exactly — banding with ``bands = k + 1`` (the default) finds **every** pair within distance k.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from pydantic import Field

from gniazdo.config import Config
from gniazdo.dedup.expert import Expert
from gniazdo.dedup.bits import mix64, popcount
from gniazdo.dedup.shingles import ShingleParams, shingle_counts

BITS = 64
# Shingles unpacked per step of the fingerprint computation: bounds the (m, 64) int32 work array to 16 MiB.
_CHUNK_SHINGLES = 1 << 16
# Band index goes into bits 58..63 of a band key; a band of ≥ 2 bands is at most 32 bits wide, so never clashes.
_BAND_SHIFT = np.uint64(58)


class SimHashParams(Config):
    """Word 3-grams by default, not the 5-grams of MinHash: one changed word alters n shingles, and a
    fingerprint reacts to the share of changed weight — with n = 3 an edited copy keeps more of its shingles,
    so its distance stays small while unrelated texts still sit near 32 bits apart.

    ``max_distance`` 3 (Manku et al.), measured on the sample corpus (265 documents, 25 true pairs): exact
    copies are at distance 0, edited copies (5-gram Jaccard 0.60–0.83) at 6–13 bits, all other pairs ≥ 16.
    k = 3 finds the 11 copies (precision 1.0, recall 0.44) with 4 bands of 16 bits — cheap, exact candidates.
    k = 12 would reach recall 0.88 at precision 1.0, but 13 bands of ~5 bits make about a third of all pairs
    candidates (buckets of n/32 documents): not a candidate generator at scale. To let SimHash *judge* such
    edits (voting on another expert's candidates), raise ``max_distance`` and keep ``bands`` at 4.
    """

    shingles: ShingleParams = ShingleParams(n=3)
    max_distance: int = Field(3, ge=0, le=BITS - 1)  # k: pairs at Hamming distance ≤ k are duplicates
    bands: int | None = Field(None, ge=1, le=BITS)  # None → max_distance + 1 (finds every pair ≤ k)

    @property
    def num_bands(self) -> int:
        return self.bands if self.bands is not None else self.max_distance + 1


def _unpack_bits(hashes: np.ndarray) -> np.ndarray:
    """(m,) uint64 → (m, 64) uint8 of 0/1, column j = bit j (little-endian view: same on every platform)."""
    as_bytes = hashes.astype("<u8", copy=False).view(np.uint8).reshape(-1, 8)
    return np.unpackbits(as_bytes, axis=1, bitorder="little")


def _pack_bits(bits: np.ndarray) -> np.ndarray:
    """(n, 64) bool → (n,) uint64, the inverse of ``_unpack_bits``."""
    packed = np.packbits(bits.astype(np.uint8), axis=1, bitorder="little")
    return np.ascontiguousarray(packed).view("<u8").ravel().astype(np.uint64)


def fingerprints(hashes: np.ndarray, weights: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """SimHash of documents whose shingles are ``hashes[offsets[i]:offsets[i+1]]`` with ``weights``.

    ``offsets`` has n + 1 entries; a document without shingles gets fingerprint 0.
    """
    n = len(offsets) - 1
    # Per document and bit, the weight of shingles voting 1 (S) and the total weight (W): the ±1 vote
    # Σ w·(2·bit − 1) = 2S − W is positive iff 2S > W. Summing w·bit in int32 is exact and ~2× faster than
    # summing ±w in int64 (smaller arrays, no subtraction pass).
    ones = np.zeros((n, BITS), dtype=np.int64)
    total = np.zeros(n, dtype=np.int64)
    sizes = np.diff(offsets)
    start = 0
    while start < n:
        # Take documents until the chunk holds _CHUNK_SHINGLES shingles (at least one document).
        end = max(start + 1, int(np.searchsorted(offsets, offsets[start] + _CHUNK_SHINGLES, side="right")) - 1)
        end = min(end, n)
        lo, hi = offsets[start], offsets[end]
        docs = np.flatnonzero(sizes[start:end]) + start  # reduceat needs non-empty segments
        if len(docs):
            w = weights[lo:hi].astype(np.int32)
            ones[docs] = np.add.reduceat(_unpack_bits(hashes[lo:hi]) * w[:, None], offsets[docs] - lo, axis=0)
            total[docs] = np.add.reduceat(w.astype(np.int64), offsets[docs] - lo)
        start = end
    fps = _pack_bits(2 * ones > total[:, None])
    fps[sizes == 0] = 0
    return fps


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamming distances of fingerprints a[k], b[k] (arrays of uint64, or (k, 1) signature rows)."""
    return popcount(np.bitwise_xor(np.asarray(a, np.uint64).reshape(-1), np.asarray(b, np.uint64).reshape(-1)))


def band_keys_of(fps: np.ndarray, bands: int) -> np.ndarray:
    """(n,) fingerprints → (n, bands) uint64 keys, band b = bits [64·b/bands, 64·(b+1)/bands)."""
    fps = np.asarray(fps, dtype=np.uint64).reshape(-1)
    edges = np.arange(bands + 1) * BITS // bands
    keys = np.empty((len(fps), bands), dtype=np.uint64)
    for b in range(bands):  # at most 64 bands, each vectorised over all documents
        width = int(edges[b + 1] - edges[b])
        mask = np.uint64((1 << width) - 1)
        value = (fps >> np.uint64(edges[b])) & mask
        # Band index in the top bits (band values of ≥ 2 bands are ≤ 32 bits): equal keys mean same band and value.
        keys[:, b] = mix64(value | (np.uint64(b) << _BAND_SHIFT))
    return keys


class SimHashExpert(Expert):
    """64-bit SimHash over tf-weighted word n-grams; duplicates within Hamming distance ``max_distance``."""

    name = "simhash"
    Params = SimHashParams

    def signatures(self, texts: Sequence[str]) -> np.ndarray:
        """(n, 1) uint64: one fingerprint per document."""
        p: SimHashParams = self.params
        per_doc = [shingle_counts(t, p.shingles) for t in texts]
        sizes = np.array([len(h) for h, _ in per_doc], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        if per_doc and offsets[-1]:
            hashes = np.concatenate([h for h, _ in per_doc])
            weights = np.concatenate([c for _, c in per_doc])
        else:
            hashes, weights = np.zeros(0, np.uint64), np.zeros(0, np.int64)
        return fingerprints(hashes, weights, offsets).reshape(-1, 1)

    def band_keys(self, sigs: np.ndarray) -> np.ndarray:
        return band_keys_of(sigs[:, 0] if sigs.ndim == 2 else sigs, self.params.num_bands)

    def similarity(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """1 − Hamming distance / 64."""
        return 1.0 - hamming(a, b) / BITS

    def is_duplicate(self, similarity: np.ndarray) -> np.ndarray:
        # Back from similarity to an integer distance (rounded: the similarity is a float of d/64).
        distance = np.rint((1.0 - np.asarray(similarity, dtype=np.float64)) * BITS)
        return distance <= self.params.max_distance
