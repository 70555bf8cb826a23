"""Heuristic quality filters for web text: Gopher quality, Gopher repetition and FineWeb quality.

The rules are those of the Gopher paper (Rae et al. 2021, MassiveText) and FineWeb (Penedo et al. 2024) as
datatrove implements them, re-implemented here without datatrove or spaCy, with FineWeb-2's Polish
(``pol_Latn``) thresholds as defaults. Each drop names the rule (datatrove's reason names), e.g.
``gopher_short_doc``, ``dup_line_frac``, ``top_2_gram``, ``duplicated_5_n_grams``, ``line_punct_ratio``.

Steps:

* ``gopher_repetition``, ``fineweb_quality``, ``gopher_quality`` — one rule set each (see
  :mod:`.gopher` and :mod:`.fineweb` for every threshold and its default);
* ``heuristics`` — all three in one step, in FineWeb-2's order (repetition → FineWeb → quality), with
  each set's parameters under its own key; a set given as ``null`` is skipped::

      - step: heuristics
        gopher_quality: {min_doc_words: 30}
        fineweb_quality: null

Words are FineWeb-2's Polish tokens (:mod:`gniazdo.data.tokenize_pl`, spaCy's Polish rules, shared with the
``metrics`` step) and are split once per document however many of these steps run in a row.
"""

from __future__ import annotations

from gniazdo.config import Config
from gniazdo.data.heuristics.fineweb import FineWebQualityFilter, FineWebQualityParams, fineweb_quality
from gniazdo.data.heuristics.gopher import (POLISH_STOP_WORDS, GopherQualityFilter, GopherQualityParams,
                                            GopherRepetitionFilter, GopherRepetitionParams, gopher_quality,
                                            gopher_repetition)
from gniazdo.data.tokenize_pl import split_words
from gniazdo.document import Document
from gniazdo.pipeline.step import Filter, register

__all__ = [
    "POLISH_STOP_WORDS", "FineWebQualityFilter", "FineWebQualityParams", "GopherQualityFilter",
    "GopherQualityParams", "GopherRepetitionFilter", "GopherRepetitionParams", "HeuristicsFilter",
    "HeuristicsParams", "fineweb_quality", "gopher_quality", "gopher_repetition", "split_words",
]


class HeuristicsParams(Config):
    gopher_repetition: GopherRepetitionParams | None = GopherRepetitionParams()
    fineweb_quality: FineWebQualityParams | None = FineWebQualityParams()
    gopher_quality: GopherQualityParams | None = GopherQualityParams()


@register
class HeuristicsFilter(Filter):
    """Gopher repetition, FineWeb quality and Gopher quality in one pass; the reason names the first rule failed."""

    name = "heuristics"
    Params = HeuristicsParams

    def keep(self, doc: Document) -> bool | str:
        p: HeuristicsParams = self.params
        text = doc.text
        reason = ((p.gopher_repetition and gopher_repetition(text, p.gopher_repetition))
                  or (p.fineweb_quality and fineweb_quality(text, p.fineweb_quality))
                  or (p.gopher_quality and gopher_quality(text, p.gopher_quality)))
        return reason or True
