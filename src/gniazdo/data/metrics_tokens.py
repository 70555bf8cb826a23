"""Tokens and sentences for the ``metrics`` step: spaCy's Polish tokenisation rules as one regex, rule-based sentences.

Tokens follow spaCy's Polish tokenizer (the one behind SpeakLeash's metrics) closely enough that word,
punctuation and stop-word counts agree with SpeakLeash's to a fraction of a percent: whitespace separates,
every punctuation/symbol character is its own token (an ellipsis ``...`` is one), hyphens always split
("biało-czerwony" = 3 tokens, as spaCy's Polish infix rules do; "2014 r." = 3 tokens too), a dot stays inside a
token only before a lower-case letter ("onet.pl"), and ``,`` ``:`` ``/`` only between digits ("1,30", "12:30").
URLs and e-mail addresses are one token each. Whitespace other than one plain space is a token of its own, like
spaCy's space tokens (they count in sentence lengths, not as words).

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
from itertools import pairwise
from typing import NamedTuple

from gniazdo.data.morph import word_class
from gniazdo.data.stopwords_pl import STOP_WORDS

_LOWER = "a-zà-öø-ÿąćęłńóśźżčďěňřšťůž"
_UPPER = "A-ZÀ-ÖØ-ÞĄĆĘŁŃÓŚŹŻČĎĚŇŘŠŤŮŽ"
TOKEN_RE = re.compile(
    rf"""
      \s{{2,}} | [^\S ]                                   # space token: any whitespace but one plain space
    | (?:https?://|www\.)[^\s<>"]*[^\s<>".,;:!?)\]'”]     # URL, one token as spaCy's url_match makes it
    | [\w.+-]+@[\w-]+(?:\.[\w-]+)+                        # e-mail address
    | \.{{2,}}                                            # ellipsis
    | [^\W_]+(?:(?:['’]|\.(?=[{_LOWER}])|(?<=\d)[,:/](?=\d))[^\W_]+)*   # word or number
    | \S                                                  # any other character: punctuation, symbol
    """,
    re.VERBOSE,
)
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


def sentences(text: str) -> list[str]:
    """Non-empty sentences of ``text`` (see the module docstring for the rules)."""
    return [s for s in _SENTENCE_END.split(text) if s and not s.isspace()]


def initial_words(tokens: list[str]) -> list[str]:
    """Capitalised tokens that start a sentence or a line: there a capital does not mark a name."""
    out = [tokens[0]] if tokens and tokens[0][:1].isupper() else []
    out += [b for a, b in pairwise(tokens) if b[:1].isupper() and (a in _SENTENCE_FINAL or "\n" in a)]
    return out


def dotted_words(tokens: list[str]) -> list[str]:
    """Short alphabetic tokens directly followed by a full stop: maybe abbreviations ("proc.", "ok.", "r.")."""
    return [a for a, b in pairwise(tokens) if b == "." and len(a) <= 6 and a.isalpha()]


def _is_symbol(token: str) -> bool:
    if token in _PERCENT:
        return True
    return token not in _NOT_SYMBOLS and all(unicodedata.category(c) in _SYMBOL_CATEGORIES for c in token)


@lru_cache(maxsize=500_000)  # Zipf: the 500k most recent forms cover nearly every token
def token_info(token: str, initial: bool = False, dotted: bool = False) -> TokenInfo:
    """Everything the metrics need about one token string; cached, so each distinct form is analysed once."""
    stop = token.lower() in STOP_WORDS
    if token.isspace():
        return TokenInfo(True, False, False, "", token, False, False, False, False)
    punct = all(unicodedata.category(c).startswith("P") for c in token)
    if _is_symbol(token):
        return TokenInfo(False, punct, True, "SYM", token, False, stop, False, False)
    if punct:
        return TokenInfo(False, True, False, "PUNCT", token, False, stop, False, False)
    wc = word_class(token, initial and token[:1].isupper(), dotted)
    return TokenInfo(
        False, False, False, wc.pos, wc.lemma, wc.oov, stop, CAMEL_CASE_RE.match(token) is not None, token.isupper()
    )
