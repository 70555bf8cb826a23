"""Polish morphology shared by the steps that need it (metrics: POS, lemmas, OOV; normalize: is this a word?).

SpeakLeash computes POS, lemmas and OOV with spaCy ``pl_core_news_md``, which no package registry ships. We use
Morfeusz 2 (``morfeusz2`` on PyPI ships its SGJP dictionary), the morphological analyser of the Polish
Academy of Sciences: it gives every reading of a word form (lemma + NKJP tag) and marks unknown forms as
``ign``. One analyser per process, created on first use (it loads a ~100 MB dictionary).
"""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def analyser():
    import morfeusz2

    return morfeusz2.Morfeusz(expand_tags=False, separate_numbering=True)


@lru_cache(maxsize=500_000)
def is_known_word(word: str) -> bool:
    """True when Morfeusz knows ``word`` (case-insensitively) as a Polish word form."""
    for candidate in {word, word.lower()}:
        if any(interp[2][2] != "ign" for interp in analyser().analyse(candidate)):
            return True
    return False
