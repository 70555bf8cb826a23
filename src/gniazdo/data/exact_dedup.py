"""Exact deduplication by a 128-bit hash of the normalised text, global across all tasks of a run.

A :class:`GlobalFilter`: every document's hash is written in one pass, one process decides, the next pass
drops the copies (reason ``exact_dup``, into ``excluded/exact_dup/`` with ``meta.duplicate_of`` = the
survivor's id). The survivor of each group is chosen by ``keep``: ``first`` in corpus order, ``longest``
text, best ``quality`` (``meta.quality`` HIGH > MEDIUM > LOW, then first) or the highest numeric
``meta:KEY`` (the rules of :func:`gniazdo.dedup.clusters.keep_scores`); it gets ``meta.dup_count``.

Normalisation (default on) folds case and whitespace runs, so copies that differ only in those are exact
duplicates; the text that is kept is never changed.
"""

from __future__ import annotations

import re

import xxhash

from gniazdo.data.survivors import KeepRuleParams, SurvivorFilter
from gniazdo.document import Document
from gniazdo.pipeline.step import register

_SPACE = re.compile(r"\s+")


class ExactDedupParams(KeepRuleParams):
    normalize: bool = True


@register
class ExactDedup(SurvivorFilter):
    """Drop exact copies (xxh3-128 of the case- and whitespace-folded text); one survivor per group."""

    name = "exact_dedup"
    reason = "exact_dup"
    Params = ExactDedupParams

    def key(self, doc: Document) -> bytes:
        text = doc.text
        if self.params.normalize:
            text = _SPACE.sub(" ", text).strip().lower()
        return xxhash.xxh3_128_digest(text.encode("utf-8"))

    def mark_survivor(self, doc: Document, duplicates: int) -> None:
        doc.meta["dup_count"] = duplicates

