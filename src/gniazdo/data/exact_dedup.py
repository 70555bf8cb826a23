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

import numpy as np
import xxhash
from pydantic import field_validator

from gniazdo.config import Config
from gniazdo.dedup.clusters import keep_scores
from gniazdo.document import Document
from gniazdo.errors import UserError
from gniazdo.pipeline.step import GlobalFilter, register

_SPACE = re.compile(r"\s+")


class ExactDedupParams(Config):
    normalize: bool = True
    keep: str = "first"  # first | longest | quality | meta:KEY (as near_dedup and gniazdo dedup)

    @field_validator("keep")
    @classmethod
    def _known_rule(cls, rule: str) -> str:
        try:
            keep_scores(rule, np.zeros(0), [])  # an unknown rule fails here, before any work starts
        except UserError as e:
            raise ValueError(str(e)) from None  # so the config error names the key
        return rule


@register
class ExactDedup(GlobalFilter):
    """Drop exact copies (xxh3-128 of the case- and whitespace-folded text); one survivor per group."""

    name = "exact_dedup"
    reason = "exact_dup"
    Params = ExactDedupParams

    def key(self, doc: Document) -> bytes:
        text = doc.text
        if self.params.normalize:
            text = _SPACE.sub(" ", text).strip().lower()
        return xxhash.xxh3_128_digest(text.encode("utf-8"))

    def score(self, doc: Document) -> float:
        return float(keep_scores(self.params.keep, np.array([len(doc.text)]), [doc.meta])[0])

    def mark_survivor(self, doc: Document, duplicates: int) -> None:
        doc.meta["dup_count"] = duplicates

    def mark_duplicate(self, doc: Document, survivor_id: str) -> None:
        doc.meta["duplicate_of"] = survivor_id
