"""Gopher's quality and repetition rules (Rae et al. 2021, MassiveText; datatrove's Gopher filters).

Defaults are FineWeb-2's Polish (``pol_Latn``) settings; a threshold set to ``null`` (or 0, as in datatrove)
turns its rule off. Words are FineWeb-2's Polish tokens (:mod:`gniazdo.data.tokenize_pl`),
punctuation tokens included, so the fractions match FineWeb-2's.

``gopher_quality`` drops, in this order, with these reasons:

* fewer than ``min_doc_words`` (50) / more than ``max_doc_words`` (100 000) words, not counting
  punctuation-only tokens — ``gopher_short_doc`` / ``gopher_long_doc``;
* mean length of those words outside ``min_avg_word_length``..``max_avg_word_length`` (3..12) —
  ``gopher_below_avg_threshold`` / ``gopher_above_avg_threshold``;
* ``#`` or ellipses per token above ``max_symbol_word_ratio`` (0.1) — ``gopher_too_many_hashes`` /
  ``gopher_too_many_ellipsis``;
* more than ``max_bullet_lines_ratio`` (0.9) of lines starting with ``•``/``-``, or more than
  ``max_ellipsis_lines_ratio`` (0.3) ending with an ellipsis — ``gopher_too_many_bullets`` /
  ``gopher_too_many_end_ellipsis``;
* fewer than ``min_alpha_words_ratio`` (0.726) of tokens containing a letter — ``gopher_below_alpha_threshold``;
* fewer than ``min_stop_words`` (2) distinct stop words (case-sensitive) — ``gopher_enough_stop_words``.

``gopher_repetition`` drops for repeated content, as fractions of the document's characters:
duplicated paragraphs and lines (``dup_para_frac``, ``dup_para_char_frac``, ``dup_line_frac`` 0.32,
``dup_line_char_frac``; FineWeb-2 keeps only the line-count rule), the most frequent 2/3/4-gram
(``top_n_grams`` 0.222/0.198/0.176 → ``top_N_gram``) and duplicated 5..10-grams (``dup_n_grams``
0.172 … 0.111 → ``duplicated_N_n_grams``). N-gram thresholds are ``[[n, fraction], ...]`` as in FineWeb-2's
configs.

Two deliberate differences from datatrove: n-grams are compared as word sequences (datatrove glues a
duplicate n-gram's words without a separator, so ``". ..."`` and ``"... ."`` count as the same), and a
document with no tokens at all is ``gopher_short_doc`` (datatrove divides by zero). Neither changed a
decision on the 2,502 documents of the shared Polish web sample.
"""

from __future__ import annotations

import re
from collections import Counter
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from itertools import compress, islice
from operator import add, itemgetter, not_

from pydantic import Field

from gniazdo.config import Config
from gniazdo.data.heuristics.text import SYMBOL, TOKEN_KINDS, WORD, duplicates
from gniazdo.data.tokenize_pl import words_of
from gniazdo.document import Document
from gniazdo.pipeline.step import Filter, register

POLISH_STOP_WORDS = ["w", "i", "na", "z", "do", "się", "roku", "od", "a", "jest", "przez", "po", "jako", "oraz",
                     "o", "został", "był", "nie"]


class GopherQualityParams(Config):
    min_doc_words: int | None = Field(50, ge=0)
    max_doc_words: int | None = Field(100_000, ge=0)
    min_avg_word_length: float | None = Field(3, ge=0)
    max_avg_word_length: float | None = Field(12, ge=0)
    max_symbol_word_ratio: float | None = Field(0.1, ge=0)
    max_bullet_lines_ratio: float | None = Field(0.9, ge=0)
    max_ellipsis_lines_ratio: float | None = Field(0.3, ge=0)
    min_alpha_words_ratio: float | None = Field(0.726, ge=0, le=1)
    min_stop_words: int | None = Field(2, ge=0)
    stop_words: list[str] = Field(default_factory=lambda: list(POLISH_STOP_WORDS))


NGramThresholds = list[tuple[int, float]]


class GopherRepetitionParams(Config):
    dup_line_frac: float | None = Field(0.32, ge=0)
    dup_para_frac: float | None = Field(None, ge=0)
    dup_line_char_frac: float | None = Field(None, ge=0)
    dup_para_char_frac: float | None = Field(None, ge=0)
    top_n_grams: NGramThresholds = [(2, 0.222), (3, 0.198), (4, 0.176)]
    dup_n_grams: NGramThresholds = [(5, 0.172), (6, 0.16), (7, 0.148), (8, 0.136), (9, 0.123), (10, 0.111)]


def gopher_quality(text: str, p: GopherQualityParams) -> str | None:
    """The reason ``text`` fails Gopher's quality rules, or None."""
    words = words_of(text)
    n_tokens = len(words)
    kinds = list(TOKEN_KINDS.map(words))
    n_symbols = kinds.count(SYMBOL)
    n_words = n_tokens - n_symbols  # Gopher counts words, not punctuation tokens
    if (p.min_doc_words and n_words < p.min_doc_words) or not n_tokens:
        return "gopher_short_doc"
    if p.max_doc_words and n_words > p.max_doc_words:
        return "gopher_long_doc"
    if n_words:  # datatrove's mean of no words is NaN, which fails neither bound
        symbol_chars = sum(map(len, compress(words, map(not_, kinds)))) if n_symbols else 0
        avg = (sum(map(len, words)) - symbol_chars) / n_words
        if p.min_avg_word_length and avg < p.min_avg_word_length:
            return "gopher_below_avg_threshold"
        if p.max_avg_word_length and avg > p.max_avg_word_length:
            return "gopher_above_avg_threshold"
    if p.max_symbol_word_ratio:
        if text.count("#") / n_tokens > p.max_symbol_word_ratio:
            return "gopher_too_many_hashes"
        if (text.count("...") + text.count("…")) / n_tokens > p.max_symbol_word_ratio:
            return "gopher_too_many_ellipsis"
    reason = _line_shape(text.splitlines(), p)
    if reason:
        return reason
    if p.min_alpha_words_ratio and kinds.count(WORD) / n_tokens < p.min_alpha_words_ratio:
        return "gopher_below_alpha_threshold"
    if p.min_stop_words and len(set(p.stop_words).intersection(words)) < p.min_stop_words:
        return "gopher_enough_stop_words"
    return None


def _line_shape(lines: list[str], p: GopherQualityParams) -> str | None:
    if p.max_bullet_lines_ratio:
        bullets = sum(1 for line in lines if line.lstrip().startswith(("•", "-")))
        if bullets / len(lines) > p.max_bullet_lines_ratio:
            return "gopher_too_many_bullets"
    if p.max_ellipsis_lines_ratio:
        ellipses = sum(1 for line in lines if line.rstrip().endswith(("...", "…")))
        if ellipses / len(lines) > p.max_ellipsis_lines_ratio:
            return "gopher_too_many_end_ellipsis"
    return None


_PARAGRAPH_BREAK = re.compile(r"\n{2,}")
_LINE_BREAKS = re.compile(r"\n+")


def gopher_repetition(text: str, p: GopherRepetitionParams) -> str | None:
    """The reason ``text`` fails Gopher's repetition rules, or None."""
    if not text:
        return "empty"
    if p.dup_para_frac or p.dup_para_char_frac:
        paragraphs = _PARAGRAPH_BREAK.split(text.strip())
        dups, chars = duplicates(paragraphs)
        if p.dup_para_frac and dups / len(paragraphs) > p.dup_para_frac:
            return "dup_para_frac"
        if p.dup_para_char_frac and chars / len(text) > p.dup_para_char_frac:
            return "dup_para_char_frac"
    if p.dup_line_frac or p.dup_line_char_frac:
        lines = _LINE_BREAKS.split(text)
        dups, chars = duplicates(lines)
        if p.dup_line_frac and dups / len(lines) > p.dup_line_frac:
            return "dup_line_frac"
        if p.dup_line_char_frac and chars / len(text) > p.dup_line_char_frac:
            return "dup_line_char_frac"
    repeats = _Repeats(words_of(text))
    for n, frac in p.top_n_grams:
        if len(repeats.words) >= n and repeats.top_chars(n) / len(text) > frac:
            return f"top_{n}_gram"
    for n, frac in p.dup_n_grams:
        if _greedy_repeats(repeats.repeated(n), n) / len(text) > frac:
            return f"duplicated_{n}_n_grams"
    return None


Repeated = tuple[list[int], list[tuple[str, ...]]]  # positions and n-grams, in document order


class _Repeats:
    """Where the n-grams that occur more than once start, for each n asked.

    An n-gram can repeat only where its first m < n words repeat, so after one full count (the smallest n)
    each larger n extends just the m-grams that repeated. Everything runs in C-level map/compress passes.
    """

    def __init__(self, words: list[str]) -> None:
        self.words = words
        self._repeated: dict[int, Repeated] = {}

    def repeated(self, n: int) -> Repeated:
        """The positions and n-grams of every n-gram occurring twice or more."""
        if n not in self._repeated:
            known = [m for m in self._repeated if m < n]
            if known:
                grams_at = self._extend(max(known), n)
            else:
                grams_at = (range(len(self.words) - n + 1), list(_ngrams(self.words, n)))
            self._repeated[n] = _keep_repeated(*grams_at)
        return self._repeated[n]

    def _extend(self, m: int, n: int) -> tuple[list[int], list[tuple[str, ...]]]:
        positions, grams = self._repeated[m]
        end = bisect_right(positions, len(self.words) - n)  # n-grams must fit in the document
        positions, grams = positions[:end], grams[:end]
        tails = zip(*(map(self.words[k:].__getitem__, positions) for k in range(m, n)))
        return positions, list(map(add, grams, tails))

    def top_chars(self, n: int) -> int:
        """Characters of the most frequent n-gram (words joined by spaces) times its count; ties: the first."""
        grams = self.repeated(n)[1]
        if grams:
            gram, count = max(Counter(grams).items(), key=itemgetter(1))
        else:  # every n-gram occurs once: the first one wins the tie
            gram, count = self.words[:n], 1
        return (sum(map(len, gram)) + n - 1) * count


def _ngrams(words: list[str], n: int) -> Iterator[tuple[str, ...]]:
    return zip(*(islice(words, i, None) for i in range(n)))


def _keep_repeated(positions: Sequence[int], grams: list[tuple[str, ...]]) -> Repeated:
    counts = Counter(grams)
    if len(counts) == len(grams):
        return [], []
    twice = list(map((1).__lt__, map(counts.__getitem__, grams)))
    return list(compress(positions, twice)), list(compress(grams, twice))


def _greedy_repeats(repeated: Repeated, n: int) -> int:
    """Characters of the n-grams that repeat an earlier one, scanning left to right and jumping past each
    repeat (Gopher's duplicate n-gram character fraction, as datatrove counts it). Positions whose n-gram
    occurs once never add anything, so only the repeated ones are visited.
    """
    seen: set[tuple[str, ...]] = set()
    next_free, chars = 0, 0
    for i, gram in zip(*repeated):
        if i < next_free:  # inside a repeat already counted: skipped, as datatrove's scan jumps over it
            continue
        if gram in seen:
            chars += sum(map(len, gram))
            next_free = i + n
        else:
            seen.add(gram)
            next_free = i + 1
    return chars


@register
class GopherQualityFilter(Filter):
    """Gopher's quality rules; the reason names the first rule a document fails (see the module docstring)."""

    name = "gopher_quality"
    Params = GopherQualityParams

    def keep(self, doc: Document) -> bool | str:
        return gopher_quality(doc.text, self.params) or True


@register
class GopherRepetitionFilter(Filter):
    """Gopher's repetition rules: duplicated lines/paragraphs, frequent and duplicated n-grams."""

    name = "gopher_repetition"
    Params = GopherRepetitionParams

    def keep(self, doc: Document) -> bool | str:
        return gopher_repetition(doc.text, self.params) or True
