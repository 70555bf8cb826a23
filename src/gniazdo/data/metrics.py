"""Per-document text metrics, with the names and meanings SpeakLeash stores in each document's ``meta``.

SpeakLeash's post-processor (speakleash/speakleash-postprocesor, ``postprocessor/analyzer.py``) runs spaCy
``pl_core_news_md`` on every document and stores the counts below; its quality classifier and its dashboards
read them. Tokens are spaCy's own (:mod:`gniazdo.data.tokenize_pl`, the Polish tokenizer shared with the
heuristic filters). spaCy's Polish *model* is on no package registry, so the part of speech, lemma and OOV
flag of each word come from Morfeusz 2 instead (:mod:`gniazdo.data.morph` documents the NKJP → UD mapping and
the one-class-per-form rule), sentences from rules (:mod:`gniazdo.data.metrics_tokens`), stop words from
spaCy's own Polish list (:mod:`gniazdo.data.stopwords_pl`).

Keys written (SpeakLeash's definitions; "word" = a token that is not punctuation, whitespace or a symbol):

* ``characters`` — len(text); ``sentences``; ``words``; ``punctuations`` (tokens made of Unicode punctuation);
  ``symbols`` (SYM tokens: "%", "+", "€", "°", emoji...); ``stopwords`` (any token in the stop list);
* ``nouns`` (common nouns, gerunds included; proper names are PROPN), ``verbs`` (lexical verbs; "być" is AUX),
  ``adjectives`` (participles included), ``adverbs``, ``pos_x`` (unknown/foreign words), ``pos_num``,
  ``oovs`` (words Morfeusz does not know) — all over non-punctuation, non-space tokens, stop words included;
* ``avg_word_length`` — characters of non-punctuation, non-space tokens / words;
  ``avg_sentence_length`` — tokens per sentence, punctuation and space tokens included;
* ``noun_ratio``, ``verb_ratio``, ``adj_ratio`` — per word; ``lexical_density`` — distinct lemmas / words;
* ``gunning_fog`` — textstat's Gunning fog index with its Polish settings (0 for a text without words);
* ``camel_case`` — words like "mBank", "iPhone" (lower, UPPER, lower; Polish letters included);
  ``capitalized_words`` — words that are all capitals (str.isupper: "PKO", and also a lone "W").

Faithfulness, on SpeakLeash's analyzer benchmark (2,048 news documents whose ``meta`` holds spaCy's counts;
total difference / median per-document difference): words -0.85% / 0.7%, punctuations -0.06% / 0%, stop
words 0.00% / 0% (equal in every document), sentences -0.35% / 5%, nouns -1.6% / 3.4%, verbs -0.2% / 2.9%
(per-document correlation of the noun share 0.91, of the verb share 0.97). The words SpeakLeash counted
more are its line-break tokens: its spaCy build did not mark them as space, so they count as words there
(counting them too, 97% of documents match to the word). ``symbols`` agrees least (spaCy's SYM is a tagger
decision: it also tags units like "Mb/s", and "+" only sometimes). Adjectives, adverbs, X, NUM, OOV and
lemmas have no reference there. That archive predates ``pos_x``: its analyzer counted parts of speech over
non-stop-words only, which ``compute_metrics(text, pos_stopwords=False)`` reproduces for comparison.

Ratios and averages are rounded to 4 places, as SpeakLeash rounds them. Fast path (the step runs on billions
of words): a document is tokenised once, shared with the heuristic filters when they ran just before; each
distinct token string is classified once per process into a small tally (which counts it adds to, its lemma,
its length), so a document is counted with C-level passes over its tokens; Gunning fog is computed per
whitespace-separated chunk and syllables per lower-case word, both cached.

Options: ``overwrite`` (default true): recompute every metric even when ``meta`` already has it; false keeps
values already present and only fills the missing ones.
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from functools import lru_cache
from operator import itemgetter
from typing import Any, Iterator

from gniazdo.config import Config
from gniazdo.data.metrics_tokens import (COUNT_KEYS, Tally, context_tally, dotted_words, initial_words,
                                         plain_tallies, sentences)
from gniazdo.data.tokenize_pl import Memo, tokens_of
from gniazdo.document import Document
from gniazdo.pipeline.step import Step, register

METRIC_KEYS = (
    "characters", "sentences", "words", "nouns", "verbs", "adjectives", "adverbs", "pos_x", "pos_num",
    "punctuations", "symbols", "stopwords", "oovs", "avg_word_length", "avg_sentence_length", "noun_ratio",
    "verb_ratio", "adj_ratio", "lexical_density", "gunning_fog", "camel_case", "capitalized_words",
)  # fmt: skip


# --- Gunning fog: textstat's, from textstat's own parts, per whitespace-separated chunk ----------------------
# textstat strips punctuation from the whole text and splits it on whitespace; stripping never crosses
# whitespace, so each chunk can be handled once per process instead of once per occurrence (textstat caches
# only 128 calls, so it re-hyphenates every word of every document: 5 ms per document).
_TEXTSTAT_SENTENCE = re.compile(r"\b[^.!?]+[.!?]*")  # textstat's count_sentences
# Three chunks that keep a character after punctuation stripping (textstat: count_words(sentence) > 2).
_WORD, _GAP = r"[^\w\s]*\w\S*", r"(?:\s+[^\w\s]+)*\s+"  # a chunk with a word character; the space after it
_THREE_WORDS = re.compile(rf"\s*(?:[^\w\s]+\s+)*{_WORD}{_GAP}{_WORD}{_GAP}[^\w\s]*\w")
_NOT_A_WORD, _EASY, _DIFFICULT = 0, 1, 2


def _fog_class(chunk: str) -> int:
    word = chunk if chunk.isalpha() else _strip_punctuation(chunk)
    if not word:
        return _NOT_A_WORD
    return _DIFFICULT if _DIFFICULT_WORDS[word.lower()] else _EASY


@lru_cache(maxsize=1)
def _punctuation_regexes() -> tuple[re.Pattern, re.Pattern]:
    from textstat.backend.utils.constants import RE_NONCONTRACTION_APOSTROPHE

    return re.compile(RE_NONCONTRACTION_APOSTROPHE), re.compile(r"[^\w\s\']")


def _strip_punctuation(chunk: str) -> str:
    """What textstat's ``list_words`` keeps of a chunk: its ``remove_punctuation``, with compiled regexes."""
    apostrophes, punctuation = _punctuation_regexes()
    return punctuation.sub("", apostrophes.sub("", chunk))


def _is_difficult(word: str) -> bool:
    """textstat's ``is_difficult_word(word, 4, "pl")`` for a lower-case word: not one of its easy words (it
    has English ones only) and at least 4 syllables by its hyphenation dictionary."""
    easy_words, threshold = _fog_settings()
    _, _, left, right = _hyphenation()
    if len(word) < left + right + threshold - 2 or word in easy_words:  # too short for enough hyphen points
        return False
    stripped = _strip_punctuation(word)  # textstat's count_syllables strips the lower-cased word again
    return bool(stripped) and _hyphenation_points(stripped) + 1 >= threshold


@lru_cache(maxsize=1)
def _hyphenation() -> tuple[dict[str, tuple[int, tuple[int, ...]]], frozenset[str], int, int]:
    """textstat's Polish Pyphen dictionary: its patterns, every prefix of a pattern, its left/right margins."""
    from textstat.backend.utils import get_pyphen

    pyphen = get_pyphen("pl")
    patterns = pyphen.hd.patterns
    prefixes = frozenset(key[:i] for key in patterns for i in range(1, len(key) + 1))
    return patterns, prefixes, pyphen.left, pyphen.right


def _hyphenation_points(word: str) -> int:
    """``len(Pyphen(lang="pl").positions(word))`` by pyphen's own algorithm over its own patterns, except that
    the scan from each letter stops as soon as no pattern begins with what it has read (pyphen reads on up to
    the longest pattern, 15 letters): 2.5x faster, and hyphenation is most of the cost of Gunning fog."""
    patterns, prefixes, left, right = _hyphenation()
    pointed = f".{word.lower()}."
    end = len(pointed)
    points = [0] * (end + 1)
    for i in range(end - 1):
        for j in range(i + 1, end + 1):
            piece = pointed[i:j]
            if piece not in prefixes:
                break
            if piece in patterns:
                offset, values = patterns[piece]
                where = slice(i + offset, i + offset + len(values))
                points[where] = map(max, values, points[where])
    return sum(value % 2 for value in points[left + 1:len(word) - right + 2])


_FOG_CLASSES = Memo(_fog_class)  # chunk → not a word / easy / difficult
_DIFFICULT_WORDS = Memo(_is_difficult)  # lower-case word → difficult: syllables counted once per word


@lru_cache(maxsize=1)
def _fog_settings() -> tuple[set[str], int]:
    """textstat's easy words and syllable threshold for Polish."""
    from textstat.backend.utils import get_lang_cfg, get_lang_easy_words

    with warnings.catch_warnings():  # textstat warns that it has no Polish easy-word list (it uses English)
        warnings.simplefilter("ignore")
        return get_lang_easy_words("pl"), int(get_lang_cfg("pl", "syllable_threshold"))


def _textstat_sentences(text: str) -> int:
    """textstat's ``count_sentences``: pieces ending in . ! ?, not counting those of two words or fewer."""
    long_pieces = sum(map(bool, map(_THREE_WORDS.match, _TEXTSTAT_SENTENCE.findall(text))))
    return max(1, long_pieces) if text else 0


def gunning_fog(text: str) -> float:
    """``textstat.gunning_fog`` with ``set_lang("pl")`` (0 for a text without words), the same float."""
    classes = Counter(_FOG_CLASSES.map(text.split()))
    words = classes[_EASY] + classes[_DIFFICULT]
    if not words:
        return 0.0
    return 0.4 * (words / _textstat_sentences(text) + 100 * classes[_DIFFICULT] / words)


# --- token counts ----------------------------------------------------------------------------------------------
def _tallies(tokens: list[str]) -> tuple[list[Tally], list[tuple[str, int, Tally]], list[str]]:
    """Each token's tally out of context; the occurrences that take a contextual reading instead (form, how
    many, tally); the forms that occur out of context at all.

    A capitalised first word and a short word before a full stop take their own reading ("Koniec" at a start
    is a noun, not a surname; "ok." is "około"): as many of a form's occurrences as are found in that context
    move from its plain tally to the contextual one.
    """
    plain = Counter(tokens)
    in_context: list[tuple[str, int, Tally]] = []
    for initial, found in ((True, initial_words(tokens)), (False, dotted_words(tokens))):
        for word, n in Counter(found).items():
            n = min(n, plain[word])
            if n:
                in_context.append((word, n, context_tally(word, initial, not initial)))
                plain[word] -= n
    forms = [t for t, n in plain.items() if n > 0] if in_context else list(plain)
    return list(plain_tallies.map(tokens)), in_context, forms


def compute_metrics(text: str, pos_stopwords: bool = True) -> dict[str, Any]:
    """SpeakLeash's per-document metrics of ``text``.

    ``pos_stopwords=False`` reproduces SpeakLeash's earlier analyzer (used for the archives of 2023, e.g. the
    analyzer benchmark), which counted nouns/verbs/... and OOVs only over tokens that are not stop words.
    """
    tokens = tokens_of(text)
    tallies, in_context, forms = _tallies(tokens)
    field = 0 if pos_stopwords else 1
    per_keys = Counter(map(itemgetter(field), tallies))  # token counts by the tuple of counts they add to
    for word, n, tally in in_context:
        per_keys[plain_tallies[word][field]] -= n
        per_keys[tally[field]] += n
    n_sentences = len(sentences(text))
    m = dict.fromkeys(METRIC_KEYS, 0)
    m["characters"] = len(text)
    m["sentences"] = n_sentences
    for keys_id, n in per_keys.items():
        for key in COUNT_KEYS[keys_id]:
            m[key] += n
    words = m["words"]
    if n_sentences:
        m["avg_sentence_length"] = round(len(tokens) / n_sentences, 4)
    if words:
        lemmas = set(map(itemgetter(2), map(plain_tallies.__getitem__, forms)))
        lemmas.update(tally.lemma for _, _, tally in in_context)
        lemmas.discard(None)
        m["avg_word_length"] = round(sum(map(itemgetter(3), tallies)) / words, 4)  # context changes no length
        m["noun_ratio"] = round(m["nouns"] / words, 4)
        m["verb_ratio"] = round(m["verbs"] / words, 4)
        m["adj_ratio"] = round(m["adjectives"] / words, 4)
        m["lexical_density"] = round(len(lemmas) / words, 4)
        m["gunning_fog"] = round(gunning_fog(text), 4)
    return m


class MetricsParams(Config):
    overwrite: bool = True


@register
class Metrics(Step):
    """Annotate ``meta`` with SpeakLeash's per-document metrics (see the module docstring)."""

    name = "metrics"
    Params = MetricsParams

    def run(self, docs: Iterator[Document]) -> Iterator[Document]:
        overwrite = self.params.overwrite
        for doc in docs:
            if overwrite:
                doc.meta.update(compute_metrics(doc.text))
            elif any(k not in doc.meta for k in METRIC_KEYS):
                for key, value in compute_metrics(doc.text).items():
                    doc.meta.setdefault(key, value)
            yield doc
