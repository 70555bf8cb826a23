"""Polish morphology shared by the steps that need it (metrics: POS, lemmas, OOV; normalize: is this a word?).

SpeakLeash computes POS, lemmas and OOV with spaCy ``pl_core_news_md``, which no package registry ships. We use
Morfeusz 2 (``morfeusz2`` on PyPI ships its SGJP dictionary), the morphological analyser of the Polish
Academy of Sciences: it gives every reading of a word form (lemma + NKJP tag) and marks unknown forms as
``ign``. One analyser per process, created on first use (it loads a ~100 MB dictionary).

:func:`word_class` turns those readings into one UD part of speech per word form, without a tagger (spaCy's
model is trained on NKJP converted to UD; this mapping follows that conversion):

* NKJP tag → UD class: subst, depr, ger (gerunds, "korzystanie") → NOUN, or PROPN when SGJP labels the
  reading a proper name; fin, praet, impt, imps, inf, pcon, pant, winien, pred ("można") → VERB, but forms
  of "być" and "zostać" (copula, passive auxiliary), aglt and bedzie → AUX; adj, adja, adjc, adjp and the
  participles pact/ppas → ADJ; adv → ADV; num, numcol, dig, romandig → NUM; ppron12, ppron3, siebie → PRON;
  prep → ADP; conj → CCONJ; comp → SCONJ; qub/part → PART; interj → INTJ; interp → PUNCT; sym → SYM;
  brev (abbreviations: "zł", "mln", "proc.") → X; ign (unknown to Morfeusz) → X and OOV, or PROPN (still OOV)
  when capitalised. Pronouns SGJP files as nouns/adjectives ("to", "co", "który", "ten", "swój") → PRON/DET.
* One class per form, by a fixed rule: drop readings SGJP qualifies (archaic, rare, colloquial, domain) and
  vocative-only noun readings when others remain; a capitalised form keeps its proper-name readings
  mid-sentence and its common ones at the start of a sentence or line; a lower-case form is never a name;
  noun readings that are substantivised adjectives ("nowe", "pierwsza") give way to the adjective; a short
  word before a full stop takes its abbreviation reading ("ok." = około). Then the class with the most
  distinct lemmas wins; ties go by the priority ADP > PART > SCONJ > CCONJ > PRON > DET > AUX > NUM > VERB >
  NOUN > imperative/predicative/1st-2nd person VERB > ADJ > ADV (function readings first: "nie", "na", "lub").

On SpeakLeash's analyzer benchmark (2,048 documents it tagged with spaCy) this gives nouns -1.4% and verbs
-0.2% in total, 3.4% and 2.9% median difference per document (see :mod:`gniazdo.data.metrics`).
"""

from __future__ import annotations

from collections import Counter
from functools import lru_cache
from typing import NamedTuple, Sequence


@lru_cache(maxsize=1)
def analyser():
    import morfeusz2

    return morfeusz2.Morfeusz(expand_tags=False, separate_numbering=True)


Reading = tuple[int, str, str, tuple[str, ...], tuple[str, ...]]  # start node, lemma, tag, names, labels
_TAGS: dict[int, str] = {}  # Morfeusz's tag, name and labels ids → their strings (small tables)
_NAMES: dict[int, tuple[str, ...]] = {}
_LABELS: dict[int, tuple[str, ...]] = {}


def analyse(form: str) -> list[Reading]:
    """What ``analyser().analyse(form)`` says of each reading of ``form``, but orth and end node, in 60% of
    the time: morfeusz2's Python wrapper asks the C++ core for the tag, name and labels strings of every
    reading, which are ids into small tables, so here each id is resolved once. (Falls back to the wrapper
    if morfeusz2 ever stops exposing its core object.)"""
    core = getattr(analyser(), "_morfeusz_obj", None)
    if core is None:
        return [(start, lemma, tag, tuple(names), tuple(labels))
                for start, _, (_, lemma, tag, names, labels) in analyser().analyse(form)]
    out = []
    for interp in core.analyse(form):
        tag, name, labels = interp.tagId, interp.nameId, interp.labelsId
        if tag not in _TAGS:
            _TAGS[tag] = interp.getTag(core)
        if name not in _NAMES:
            _NAMES[name] = tuple(interp.getName(core))
        if labels not in _LABELS:
            _LABELS[labels] = tuple(interp.getLabels(core))
        out.append((interp.startNode, interp.lemma, _TAGS[tag], _NAMES[name], _LABELS[labels]))
    return out


@lru_cache(maxsize=500_000)
def is_known_word(word: str) -> bool:
    """True when Morfeusz knows ``word`` (case-insensitively) as a Polish word form."""
    for candidate in {word, word.lower()}:
        if any(reading[2] != "ign" for reading in analyse(candidate)):
            return True
    return False


class WordClass(NamedTuple):
    pos: str  # UD part of speech: NOUN, PROPN, VERB, AUX, ADJ, DET, ADV, NUM, PRON, ADP, ..., X
    lemma: str
    oov: bool  # Morfeusz does not know the form (its only reading is ``ign``)


_TAG_POS = {
    **dict.fromkeys(("subst", "depr", "ger"), "NOUN"),
    **dict.fromkeys(("fin", "praet", "impt", "imps", "inf", "pcon", "pant", "winien", "pred"), "VERB"),
    **dict.fromkeys(("aglt", "bedzie"), "AUX"),
    **dict.fromkeys(("adj", "adja", "adjc", "adjp", "pact", "ppas"), "ADJ"),
    "adv": "ADV",
    **dict.fromkeys(("num", "numcol", "dig", "romandig"), "NUM"),
    **dict.fromkeys(("ppron12", "ppron3", "siebie"), "PRON"),
    "prep": "ADP",
    "conj": "CCONJ",
    "comp": "SCONJ",
    **dict.fromkeys(("qub", "part"), "PART"),
    "interj": "INTJ",
    "interp": "PUNCT",
    "sym": "SYM",
    "brev": "X",  # abbreviations ("zł", "mln", "proc.", "m.in."): spaCy's model does not tag them NOUN
}
# SGJP files these pronouns under subst/adj; UD (and spaCy) tag them PRON/DET.
_PRON_LEMMAS = frozenset("to co kto nic nikt coś ktoś cokolwiek ktokolwiek niczego".split())
_DET_LEMMAS = frozenset(
    """ten tamten ów taki owaki który jaki czyj każdy wszystek wszelki żaden jakiś któryś czyjś jakikolwiek
    którykolwiek niektóry niejaki swój mój twój nasz wasz tenże takiż sam""".split()
)
# "być" is the copula/auxiliary, "zostać" mostly the passive auxiliary ("została wybrana"): UD tags both AUX.
_AUX_LEMMAS = frozenset(("być", "zostać"))
# Tie-break: function classes first (a form with a function reading is mostly used as such), then content.
# VERB_WEAK: an imperative, predicative or 1st/2nd-person reading, which loses to a noun ("kraj", "brak",
# "nazwę"); other verb readings win over nouns ("dzieje", "mogli", "miały").
_PRIORITY = {
    pos: i
    for i, pos in enumerate(
        "ADP PART SCONJ CCONJ PRON DET AUX NUM VERB NOUN VERB_WEAK ADJ ADV INTJ PROPN SYM PUNCT X".split()
    )
}


class _Reading(NamedTuple):
    pos: str
    lemma: str
    proper: bool
    rare: bool
    vocative: bool
    abbrev: bool
    weak: bool  # a verb reading that loses to a noun: imperative, predicative, 1st/2nd person


def _bare_lemma(lemma: str) -> str:
    """SGJP lemmas carry a homonym/qualifier suffix ("zamek:Sm3~a", "Polska:Sf~i"): drop it."""
    head = lemma.split(":", 1)[0]
    return head or lemma


@lru_cache(maxsize=4096)  # SGJP has about 1,000 distinct tags
def _tag_facts(tag: str) -> tuple[str, bool, bool, bool]:
    """UD class by the tag alone; vocative-only noun; abbreviation; weak verb (see :class:`_Reading`)."""
    parts = tag.split(":")
    vocative = parts[0] in ("subst", "depr") and len(parts) > 2 and parts[2] == "voc"
    weak = parts[0] in ("impt", "pred") or (parts[0] == "fin" and len(parts) > 2 and parts[2] != "ter")
    return _TAG_POS.get(parts[0], "X"), vocative, parts[0] == "brev", weak


def _reading_pos(pos: str, lemma: str) -> str:
    if pos == "VERB" and lemma in _AUX_LEMMAS:
        return "AUX"
    if pos == "NOUN" and lemma in _PRON_LEMMAS:
        return "PRON"
    if pos == "ADJ" and lemma in _DET_LEMMAS:
        return "DET"
    return pos


@lru_cache(maxsize=1 << 16)  # a form comes back in other contexts (sentence start, before a full stop)
def _readings(form: str) -> tuple[_Reading, ...]:
    """The readings of the form's first segment (Morfeusz splits off agglutinates: "zrobiłem" = zrobił+em)."""
    out = []
    for start, lemma, tag, names, quals in analyse(form):
        if start != 0 or tag == "ign":
            continue
        bare = _bare_lemma(lemma)
        tag_pos, vocative, abbrev, weak = _tag_facts(tag)
        pos = _reading_pos(tag_pos, bare)
        proper = bool(names) and "nazwa_pospolita" not in names
        if proper and pos == "NOUN":
            pos = "PROPN"
        rare = bool(quals)  # SGJP qualifies marked readings: archaic, rare, colloquial, domain ("zool.")
        out.append(_Reading(pos, bare, proper, rare, vocative, abbrev, weak))
    return tuple(out)


def _choose(readings: Sequence[_Reading], capitalised: bool, initial: bool) -> _Reading:
    if len(readings) == 1:  # every rule below keeps a lone reading
        return readings[0]
    pool = [r for r in readings if not r.rare] or readings
    pool = [r for r in pool if not r.vocative] or pool
    if capitalised:
        # Mid-sentence capitals mark names; at a sentence start the common word is the likelier reading.
        keep = [r for r in pool if r.proper != initial]
        pool = keep or pool
    else:
        pool = [r for r in pool if not r.proper] or pool
    adjective_stems = {r.lemma[:-1] for r in pool if r.pos == "ADJ"}
    if adjective_stems:  # SGJP also files "nowe", "pierwsza" as nouns (substantivised adjectives)
        pool = [r for r in pool if r.pos != "NOUN" or r.lemma[:-1] not in adjective_stems]
    lemmas_per_pos = Counter(pos for pos, _ in {(r.pos, r.lemma) for r in pool})

    def rank(r: _Reading) -> tuple[int, int]:
        cls = "VERB_WEAK" if r.pos == "VERB" and r.weak else r.pos
        return -lemmas_per_pos[r.pos], _PRIORITY.get(cls, 99)

    return min(pool, key=rank)


def word_class(form: str, initial: bool = False, dotted: bool = False) -> WordClass:
    """UD class, lemma and OOV flag of a word form.

    ``initial``: the form starts a sentence or a line; ``dotted``: a full stop follows it in the text, so an
    abbreviation reading wins ("ok." is "około", not a form of "oko"; "proc." is "procent"). Not cached here:
    callers cache it per token (the metrics step does); a form's Morfeusz readings are cached per form.
    """
    capitalised = form[:1].isupper()
    readings = _readings(form)
    if not readings and not form.islower():
        readings = _readings(form.lower())
    if not capitalised:  # "and" only matches the name "Anda": a lower-case form is not a name
        readings = [r for r in readings if not r.proper]
    if dotted or not readings:  # "r", "np", "tys": abbreviations Morfeusz knows with their dot ("r." = rok)
        abbreviations = [r for r in _readings(form + ".") if r.abbrev]
        readings = abbreviations or readings
    if not readings:
        return WordClass("PROPN" if capitalised else "X", form, True)
    chosen = _choose(readings, capitalised, initial)
    return WordClass(chosen.pos, chosen.lemma, False)
