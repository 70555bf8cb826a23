"""Per-document text metrics, with the names and meanings SpeakLeash stores in each document's ``meta``.

SpeakLeash's post-processor (speakleash/speakleash-postprocesor, ``postprocessor/analyzer.py``) runs spaCy
``pl_core_news_md`` on every document and stores the counts below; its quality classifier and its dashboards
read them. spaCy's Polish *model* is on no package registry, so the part of speech, lemma and OOV flag of
each word come from Morfeusz 2 instead (:mod:`gniazdo.data.morph` documents the NKJP → UD mapping and the
one-class-per-form rule), tokens and sentences from rules (:mod:`gniazdo.data.metrics_tokens`), stop words
from spaCy's own Polish list (:mod:`gniazdo.data.stopwords_pl`).

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
total difference / median per-document difference): words -0.5% / 0.6%, punctuations -0.3% / 0%, stop words
-0.1% / 0%, sentences -0.4% / 5%, nouns -1.4% / 3.4%, verbs -0.2% / 2.9% (per-document correlation of the
noun share 0.90, of the verb share 0.97). ``symbols`` agrees least (spaCy's SYM is a tagger decision: it
also tags units like "Mb/s", and "+" only sometimes). Adjectives, adverbs, X, NUM, OOV and lemmas have no
reference there. That archive predates ``pos_x``: its analyzer counted parts of speech over non-stop-words
only, which ``compute_metrics(text, pos_stopwords=False)`` reproduces for comparison.

Ratios and averages are rounded to 4 places, as SpeakLeash rounds them. Fast path: one regex pass tokenises,
each distinct token string of a document is looked up once, and the analysis of a form is cached per process.

Options: ``overwrite`` (default true): recompute every metric even when ``meta`` already has it; false keeps
values already present and only fills the missing ones.
"""

from __future__ import annotations

import warnings
from collections import Counter
from functools import lru_cache
from typing import Any, Iterator

from gniazdo.config import Config
from gniazdo.data.metrics_tokens import TOKEN_RE, dotted_words, initial_words, sentences, token_info
from gniazdo.document import Document
from gniazdo.pipeline.step import Step, register

METRIC_KEYS = (
    "characters", "sentences", "words", "nouns", "verbs", "adjectives", "adverbs", "pos_x", "pos_num",
    "punctuations", "symbols", "stopwords", "oovs", "avg_word_length", "avg_sentence_length", "noun_ratio",
    "verb_ratio", "adj_ratio", "lexical_density", "gunning_fog", "camel_case", "capitalized_words",
)  # fmt: skip
_POS_KEYS = {"NOUN": "nouns", "VERB": "verbs", "ADJ": "adjectives", "ADV": "adverbs", "X": "pos_x", "NUM": "pos_num"}


@lru_cache(maxsize=1)
def _fog_threshold() -> int:
    from textstat.backend.utils import get_lang_cfg

    return int(get_lang_cfg("pl", "syllable_threshold"))


@lru_cache(maxsize=500_000)
def _difficult(word: str) -> bool:
    from textstat.backend.validations import is_difficult_word

    with warnings.catch_warnings():  # textstat warns that it has no Polish easy-word list (it uses English)
        warnings.simplefilter("ignore")
        return is_difficult_word(word, _fog_threshold(), "pl")


def gunning_fog(text: str) -> float:
    """``textstat.gunning_fog`` with ``set_lang("pl")``, from textstat's own parts but with a per-word cache:
    textstat caches only 128 words, so it re-hyphenates every word of every document (5 ms per document)."""
    from textstat.backend.metrics import words_per_sentence
    from textstat.backend.selections import list_words

    words = list_words(text)
    if not words:
        return 0.0
    difficult = sum(n for word, n in Counter(words).items() if _difficult(word))
    return 0.4 * (words_per_sentence(text) + 100 * difficult / len(words))


def _token_counts(text: str) -> tuple[Counter, int]:
    """Counts of (token, starts a sentence/line, followed by a full stop), and the number of sentences.

    Most tokens take (token, False, False); a capitalised first word and a short word before a full stop
    take their own key, because their reading can differ ("Koniec" at a start is a noun, not a surname).
    """
    tokens = TOKEN_RE.findall(text)
    plain = Counter(tokens)
    counts = Counter()
    for key, found in (((True, False), initial_words(tokens)), ((False, True), dotted_words(tokens))):
        for word, n in Counter(found).items():
            n = min(n, plain.get(word, 0))
            if n:
                counts[(word, *key)] += n
                plain[word] -= n
    for token, n in plain.items():
        if n > 0:
            counts[(token, False, False)] = n
    return counts, len(sentences(text))


def compute_metrics(text: str, pos_stopwords: bool = True) -> dict[str, Any]:
    """SpeakLeash's per-document metrics of ``text``.

    ``pos_stopwords=False`` reproduces SpeakLeash's earlier analyzer (used for the archives of 2023, e.g. the
    analyzer benchmark), which counted nouns/verbs/... and OOVs only over tokens that are not stop words.
    """
    counts, n_sentences = _token_counts(text)
    m = dict.fromkeys(METRIC_KEYS, 0)
    m["characters"] = len(text)
    m["sentences"] = n_sentences
    tokens = word_chars = 0
    lemmas = set()
    for (token, initial, dotted), n in counts.items():
        info = token_info(token, initial, dotted)
        tokens += n
        if info.stop:
            m["stopwords"] += n
        if info.space:
            continue
        if info.punct:
            m["punctuations"] += n
        if info.symbol:
            m["symbols"] += n
        if info.punct:
            continue
        lemmas.add(info.lemma)
        word_chars += len(token) * n
        if info.symbol:
            continue
        m["words"] += n
        m["camel_case"] += n * info.camel
        m["capitalized_words"] += n * info.caps
        if pos_stopwords or not info.stop:
            m["oovs"] += n * info.oov
            pos_key = _POS_KEYS.get(info.pos)
            if pos_key:
                m[pos_key] += n
    words = m["words"]
    if n_sentences:
        m["avg_sentence_length"] = round(tokens / n_sentences, 4)
    if words:
        m["avg_word_length"] = round(word_chars / words, 4)
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
