"""Tokens, their classes and sentences for the ``metrics`` step.

Tokens are spaCy's Polish tokens (:mod:`gniazdo.data.tokenize_pl`, the tokenizer of the ``pl_core_news_md``
model behind SpeakLeash's metrics), space tokens included: they count in sentence lengths, not as words. Each
distinct token string is classified once (:func:`token_info`: space, punctuation, symbol, part of speech,
lemma, OOV, stop word, camelCase, ALL-CAPS) and reduced to a :class:`Tally`, what one occurrence of it adds to
the document's counts; a capitalised word at the start of a sentence or a line and a short word before a full
stop are classified in that context (see :func:`initial_words`, :func:`dotted_words`).

Sentences (spaCy's model finds them with its parser; we use rules): a sentence ends at a blank line, or after
``.`` ``!`` ``?`` ``…`` (plus closing quotes/brackets) followed by whitespace and a capital letter, a digit,
an opening quote or a dash. Lower-case after a dot ("2014 r. i", "m.in. w") does not end one, nor does a
single line break (on SpeakLeash's benchmark, splitting at every line break gives +13% sentences, these
rules -0.4%).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from itertools import chain, compress
from typing import NamedTuple

from gniazdo.data.morph import word_class
from gniazdo.data.stopwords_pl import STOP_WORDS
from gniazdo.data.tokenize_pl import Memo

_LOWER = "a-zà-öø-ÿąćęłńóśźżčďěňřšťůž"
_UPPER = "A-ZÀ-ÖØ-ÞĄĆĘŁŃÓŚŹŻČĎĚŇŘŠŤŮŽ"
_SENTENCE_END = re.compile(
    rf"""(?:\n[^\S\n]*\n\s*                                  # a blank line
          | (?<=[.!?…])["'”’»)\]]*\s+(?=[„"“«'(\[{_UPPER}\d–—-]))  # . ! ? …, a capital
    """,
    re.VERBOSE,
)
_SENTENCE_FINAL = frozenset((".", "!", "?", "…", "..."))
CAMEL_CASE_RE = re.compile(rf"[{_LOWER}]+[{_UPPER}]+[{_LOWER}]+[{_LOWER}{_UPPER}]*(?!\w)")
# Symbols: spaCy's Polish model tags "%" and true symbol characters SYM, but "|" (used as a separator in
# web text) PUNCT-like, so "|" stays out; "%" is also punctuation by Unicode, and is counted as both.
_SYMBOL_CATEGORIES = ("Sm", "Sc", "Sk", "So")
_NOT_SYMBOLS = frozenset("|")
_PERCENT = frozenset("%‰‱")


class TokenInfo(NamedTuple):
    space: bool
    punct: bool  # every character is Unicode punctuation (spaCy's is_punct)
    symbol: bool  # SYM
    pos: str  # UD class of a word token ("" for space, punctuation, symbols)
    lemma: str
    oov: bool
    stop: bool
    camel: bool
    caps: bool  # ALL-CAPS (str.isupper, as SpeakLeash counts it)


_POS_KEYS = {"NOUN": "nouns", "VERB": "verbs", "ADJ": "adjectives", "ADV": "adverbs", "X": "pos_x", "NUM": "pos_num"}


class Tally(NamedTuple):
    """What one occurrence of a token adds to a document's metrics."""

    counts: int  # the counts it adds one to (``words``, ``nouns``, ``stopwords``...), as an index in COUNT_KEYS
    counts_content_pos: int  # the same when POS and OOV are counted over non-stop-words only
    lemma: str | None  # for lexical density (None: space or punctuation)
    chars: int  # for the average word length (0: space or punctuation)


# The distinct tuples of count keys a token can add to: a few dozen, so that a document's tokens are counted
# by small integers (fast to hash) and each tuple's keys are added once per document.
COUNT_KEYS: list[tuple[str, ...]] = []
_COUNT_KEY_IDS: dict[tuple[str, ...], int] = {}


def _count_keys_id(keys: tuple[str, ...]) -> int:
    if keys not in _COUNT_KEY_IDS:
        _COUNT_KEY_IDS[keys] = len(COUNT_KEYS)
        COUNT_KEYS.append(keys)
    return _COUNT_KEY_IDS[keys]


def sentences(text: str) -> list[str]:
    """Non-empty sentences of ``text`` (see the module docstring for the rules)."""
    return [s for s in _SENTENCE_END.split(text) if s and not s.isspace()]


def _breaks_sentence_or_line(token: str) -> bool:
    return token in _SENTENCE_FINAL or "\n" in token


_BREAKS = Memo(_breaks_sentence_or_line)


def initial_words(tokens: list[str]) -> list[str]:
    """Capitalised tokens that start a sentence or a line: there a capital does not mark a name."""
    after_break = compress(tokens[1:], _BREAKS.map(tokens))  # C-level: Python sees the few candidates only
    return [b for b in chain(tokens[:1], after_break) if b[:1].isupper()]


def dotted_words(tokens: list[str]) -> list[str]:
    """Short alphabetic tokens directly followed by a full stop: maybe abbreviations ("proc.", "ok.", "r.")."""
    return [a for a in compress(tokens, map(".".__eq__, tokens[1:])) if len(a) <= 6 and a.isalpha()]


def _is_symbol(token: str) -> bool:
    if token in _PERCENT:
        return True
    return token not in _NOT_SYMBOLS and all(unicodedata.category(c) in _SYMBOL_CATEGORIES for c in token)


def token_info(token: str, initial: bool = False, dotted: bool = False) -> TokenInfo:
    """Everything the metrics need about one token string (callers cache it: see :func:`plain_tallies`)."""
    stop = token.lower() in STOP_WORDS
    if token.isspace():
        return TokenInfo(True, False, False, "", token, False, False, False, False)
    letters = token.isalpha()  # most tokens: neither punctuation nor a symbol
    punct = not letters and all(unicodedata.category(c).startswith("P") for c in token)
    if not letters and _is_symbol(token):
        return TokenInfo(False, punct, True, "SYM", token, False, stop, False, False)
    if punct:
        return TokenInfo(False, True, False, "PUNCT", token, False, stop, False, False)
    wc = word_class(token, initial and token[:1].isupper(), dotted)
    return TokenInfo(
        False, False, False, wc.pos, wc.lemma, wc.oov, stop, CAMEL_CASE_RE.match(token) is not None, token.isupper()
    )


def _count_keys(info: TokenInfo, content_pos: bool) -> tuple[str, ...]:
    """The metrics one occurrence adds to, by SpeakLeash's definitions (see :mod:`gniazdo.data.metrics`)."""
    flags = {"stopwords": info.stop, "punctuations": info.punct, "symbols": info.symbol}
    if not (info.punct or info.symbol or info.space):
        counts_pos = not (content_pos and info.stop)
        flags |= {"words": True, "camel_case": info.camel, "capitalized_words": info.caps,
                  "oovs": counts_pos and info.oov, _POS_KEYS.get(info.pos, ""): counts_pos}
    return tuple(key for key, on in flags.items() if key and on)


def _tally(token: str, initial: bool = False, dotted: bool = False) -> Tally:
    info = token_info(token, initial, dotted)
    counted = not (info.space or info.punct)  # symbols have lemmas and characters, though they are not words
    return Tally(_count_keys_id(_count_keys(info, False)), _count_keys_id(_count_keys(info, True)),
                 info.lemma if counted else None, len(token) if counted else 0)


plain_tallies = Memo(_tally, max_size=1 << 19)  # token → Tally, out of context: nearly every token
context_tally = lru_cache(maxsize=1 << 16)(_tally)  # (token, initial, dotted): the few context-dependent ones
