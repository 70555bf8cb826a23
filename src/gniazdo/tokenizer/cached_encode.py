"""Encode documents with a HF tokenizer faster, with exactly its output: pre-tokens are cut in Python and each
distinct pre-token is encoded by the tokenizer once, then looked up.

Why: in ``tokenizers`` most of the time of a byte-level BPE goes into its Oniguruma pre-tokenizer and its
per-word work, redone for every occurrence of a word. Natural text repeats words (the shared Polish corpus: 2.5M
pre-tokens, 191k distinct), so cutting with the ``regex`` module and caching the token ids of each distinct
pre-token is 3x faster end to end (bench/tokenize.py). The model itself (BPE merges, Unigram) is still the
tokenizer's own, run on each new pre-token.

Only pipelines whose normalisation and pre-tokenisation we reproduce exactly are accepted: normalizer none or
NFC; pre-tokenizer a GPT-2 ``ByteLevel`` (its own regex) or gniazdo's ``Split(regex) + ByteLevel``. For anything
else :meth:`CachedEncoder.create` returns ``None`` and the caller uses ``encode_batch``. Documents containing an
added token's text (``<|im_start|>``...), which the tokenizer would cut out first, go to the tokenizer as they are.
"""

from __future__ import annotations

import copy
import json
import unicodedata
import warnings
from itertools import repeat
from typing import Any, Callable

import numpy as np

#: the pre-tokenizer regex of GPT-2's ByteLevel(use_regex=True)
GPT2_PATTERN = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"


def python_pattern(onig_pattern: str) -> str:
    """The same pattern for the ``regex`` module: Oniguruma's ``\\s`` is the Unicode White_Space property, while
    Python's also matches the separators U+001C..U+001F."""
    return onig_pattern.replace(r"\s", r"\p{White_Space}").replace(r"\S", r"\P{White_Space}")


def _spec_pattern(spec: dict[str, Any]) -> tuple[str, bool] | None:
    """(pre-tokenizer pattern, NFC?) when the tokenizer's pipeline is one we reproduce, else None."""
    norm = spec.get("normalizer")
    if norm is not None and norm.get("type") != "NFC":
        return None
    model = spec.get("model") or {}
    if model.get("dropout") not in (None, 0.0):
        return None  # BPE dropout is random: there is no one encoding to cache
    pre = spec.get("pre_tokenizer") or {}
    if pre.get("type") == "ByteLevel" and pre.get("use_regex", True) and not pre.get("add_prefix_space"):
        return GPT2_PATTERN, norm is not None
    steps = pre.get("pretokenizers") or []
    if (pre.get("type") == "Sequence" and len(steps) == 2 and steps[0].get("type") == "Split"
            and "Regex" in (steps[0].get("pattern") or {}) and steps[0].get("behavior") == "Isolated"
            and not steps[0].get("invert") and steps[1].get("type") == "ByteLevel"
            and not steps[1].get("use_regex", True) and not steps[1].get("add_prefix_space")):
        return steps[0]["pattern"]["Regex"], norm is not None
    return None


class _Grow:
    """A growable 1-D numpy array (amortised doubling)."""

    def __init__(self, dtype) -> None:
        self.data = np.empty(1024, dtype=dtype)
        self.n = 0

    def extend(self, values: np.ndarray) -> None:
        need = self.n + len(values)
        if need > len(self.data):
            self.data = np.resize(self.data, max(need, 2 * len(self.data)))
        self.data[self.n:need] = values
        self.n = need


class CachedEncoder:
    """``encode(text)`` equals ``tokenizer.encode(text, add_special_tokens=False).ids`` as a numpy array."""

    def __init__(self, tokenizer, pattern: str, nfc: bool, max_pieces: int = 4_000_000) -> None:
        import regex
        from tokenizers import pre_tokenizers

        self._tokenizer = tokenizer
        # the same model with no normaliser and a bare byte mapping: it encodes pre-tokens we cut ourselves
        self._bare = copy.deepcopy(tokenizer)
        self._bare.normalizer = None
        self._bare.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
        self._bare.post_processor = None
        self._split = regex.compile(python_pattern(pattern))
        self._nfc = nfc
        self._added = [t.content for t in tokenizer.get_added_tokens_decoder().values() if t.content]
        self._max_pieces = max_pieces
        self._reset()

    @classmethod
    def create(cls, tokenizer, **kw) -> CachedEncoder | None:
        """The cached encoder of ``tokenizer``, or None when its pipeline is not one we reproduce."""
        found = _spec_pattern(json.loads(tokenizer.to_str()))
        return cls(tokenizer, *found, **kw) if found is not None else None

    def _reset(self) -> None:
        self._index: dict[str, int] = {}
        self._start, self._length, self._ids = _Grow(np.int64), _Grow(np.int64), _Grow(np.int64)

    def _learn(self, pieces: list[str]) -> None:
        """Encode new distinct pre-tokens (in a few chunks the tokenizer runs on its threads) and append their
        ids to the table."""
        size = max(512, -(-len(pieces) // 4))
        chunks = [pieces[i:i + size] for i in range(0, len(pieces), size)]
        encs = self._bare.encode_batch(chunks, is_pretokenized=True, add_special_tokens=False)
        word_ids = np.concatenate([np.asarray(e.word_ids, dtype=np.int64) + k * size for k, e in enumerate(encs)])
        lengths = np.bincount(word_ids, minlength=len(pieces))
        starts = self._ids.n + np.cumsum(lengths) - lengths
        first = len(self._index)
        for k, p in enumerate(pieces):
            self._index[p] = first + k
        self._start.extend(starts)
        self._length.extend(lengths)
        self._ids.extend(np.concatenate([np.asarray(e.ids, dtype=np.int64) for e in encs]))

    def encode(self, text: str) -> np.ndarray:
        if any(a in text for a in self._added):
            return np.asarray(self._tokenizer.encode(text, add_special_tokens=False).ids, dtype=np.int64)
        if self._nfc:
            text = unicodedata.normalize("NFC", text)
        pieces = self._split.findall(text)
        if len(self._index) + len(pieces) > self._max_pieces:
            self._reset()  # bounds memory on corpora with an endless tail of distinct pre-tokens
        idx = np.fromiter(map(self._index.get, pieces, repeat(-1)), dtype=np.int64, count=len(pieces))
        missing = np.flatnonzero(idx < 0)
        if len(missing):
            self._learn(list(dict.fromkeys(pieces[i] for i in missing)))
            idx[missing] = [self._index[pieces[i]] for i in missing]
        lengths = self._length.data[idx]
        # token j of the document is table entry start[piece] + (j - first token of that piece)
        ends = np.cumsum(lengths)
        offsets = np.repeat(self._start.data[idx] - (ends - lengths), lengths) + np.arange(ends[-1] if len(ends) else 0)
        return self._ids.data[offsets]

    def encode_batch(self, texts: list[str]) -> list[np.ndarray]:
        return [self.encode(t) for t in texts]


def batch_encoder(tokenizer, check: int = 16, check_chars: int = 4000) -> Callable[[list[str]], list[np.ndarray]]:
    """A function encoding a list of texts like ``tokenizer.encode_batch(texts, add_special_tokens=False)`` (ids
    as numpy arrays): the cached encoder when the tokenizer's pipeline allows, else the tokenizer. The cached one
    is checked against the tokenizer on the first ``check`` texts (their first ``check_chars`` characters); a
    mismatch switches to the tokenizer, with a warning."""

    def plain(texts: list[str]) -> list[np.ndarray]:
        return [np.asarray(e.ids, dtype=np.int64) for e in tokenizer.encode_batch_fast(texts, add_special_tokens=False)]

    cached = CachedEncoder.create(tokenizer)
    if cached is None:
        return plain
    state = {"left": check, "use": cached.encode_batch}

    def encode(texts: list[str]) -> list[np.ndarray]:
        if state["left"] > 0 and state["use"] is not plain:
            sample = [t[:check_chars] for t in texts[:state["left"]]]
            state["left"] -= len(sample)
            if any(not np.array_equal(a, b) for a, b in zip(cached.encode_batch(sample), plain(sample))):
                warnings.warn("cached pre-tokenisation differs from the tokenizer's; using the tokenizer")
                state["use"] = plain
        return state["use"](texts)

    return encode
