"""Text → word n-gram shingles as 64-bit hashes, vectorised.

Normalisation before shingling: lowercase, every run of non-word characters (punctuation, symbols,
whitespace) folded to one space. Polish diacritics are **kept** by default: ``ż``/``z``, ``ł``/``l`` distinguish
different words (``łaska``/``laska``, ``żona``/``zona``), and mojibake repair belongs to the ``normalize``
step, not to dedup; ``fold_diacritics: true`` maps them to ASCII for corpora where whole sources lost them.

Hashing: each word once with xxh3-64, then the n-gram hash is a polynomial combination of its word hashes
computed for all positions at once with numpy (uint64 arithmetic wraps mod 2^64), instead of hashing every
joined n-gram string in Python.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import numpy as np
import xxhash
from pydantic import Field

from gniazdo.config import Config

_NON_WORD = re.compile(r"[\W_]+")
# Odd 64-bit multipliers for the positions of an n-gram (fixed: signatures must be stable across runs).
_MULTIPLIERS = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0x27D4EB2F165667C5,
                         0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53, 0x85EBCA77C2B2AE63, 0xD6E8FEB86659FD93,
                         0xA0761D6478BD642F, 0xE7037ED1A0B428DB, 0x8EBC6AF09C88C6E3, 0x589965CC75374CC3],
                        dtype=np.uint64)


class ShingleParams(Config):
    n: int = Field(5, ge=1, le=len(_MULTIPLIERS))  # words per shingle
    fold_diacritics: bool = False


def normalize(text: str, fold_diacritics: bool = False) -> str:
    text = _NON_WORD.sub(" ", text.lower()).strip()
    if fold_diacritics:
        text = unicodedata.normalize("NFKD", text.replace("ł", "l"))
        text = "".join(c for c in text if not unicodedata.combining(c))
    return text


@lru_cache(maxsize=1 << 18)
def _word_hash(word: str) -> int:
    return xxhash.xxh3_64_intdigest(word.encode("utf-8"))


def word_hashes(text: str, fold_diacritics: bool = False) -> np.ndarray:
    words = normalize(text, fold_diacritics).split()
    return np.fromiter((_word_hash(w) for w in words), dtype=np.uint64, count=len(words))


def ngram_hashes(text: str, params: ShingleParams | None = None) -> np.ndarray:
    """The hash of every word n-gram in order, repeats included (a text shorter than n words is one n-gram)."""
    p = params or ShingleParams()
    words = word_hashes(text, p.fold_diacritics)
    n = min(p.n, len(words))
    if n == 0:
        return np.zeros(0, dtype=np.uint64)
    count = len(words) - n + 1
    h = np.zeros(count, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k in range(n):  # one step per position in the n-gram, vectorised over all n-grams
            h += words[k: k + count] * _MULTIPLIERS[k]
        h ^= h >> np.uint64(29)  # mix the high bits down so that low-bit bands are as good as high ones
    return h


def shingle_hashes(text: str, params: ShingleParams | None = None) -> np.ndarray:
    """Unique 64-bit hashes of the text's word n-grams, sorted."""
    return np.unique(ngram_hashes(text, params))


def shingle_counts(text: str, params: ShingleParams | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Unique shingle hashes (as :func:`shingle_hashes`) and how often each occurs in the text."""
    return np.unique(ngram_hashes(text, params), return_counts=True)


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Exact Jaccard similarity of two shingle sets (unique sorted arrays)."""
    if len(a) == 0 and len(b) == 0:
        return 1.0
    inter = len(np.intersect1d(a, b, assume_unique=True))
    return inter / (len(a) + len(b) - inter)
