"""Exact deduplication by a 128-bit hash of the normalised text, global across all tasks of a run.

A :class:`GlobalFilter`: every document's hash is written in one pass, one process decides, the next pass
drops the copies (reason ``exact_dup``, into ``excluded/exact_dup/`` with ``meta.duplicate_of`` = the
survivor's id). The survivor of each group is chosen by ``keep``: ``first`` in corpus order, ``longest``
text, or best ``quality`` (``meta.quality`` HIGH > MEDIUM > LOW, then first); it gets ``meta.dup_count``.

Normalisation (default on) folds case and whitespace runs, so copies that differ only in those are exact
duplicates; the text that is kept is never changed.
"""

from __future__ import annotations

import re
from typing import Literal

import xxhash

from gniazdo.config import Config
from gniazdo.document import Document
from gniazdo.pipeline.step import GlobalFilter, register

_SPACE = re.compile(r"\s+")
_QUALITY_RANK = {"HIGH": 2.0, "MEDIUM": 1.0, "LOW": 0.0}


class ExactDedupParams(Config):
    normalize: bool = True
    keep: Literal["first", "longest", "quality"] = "first"


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
        if self.params.keep == "longest":
            return float(len(doc.text))
        if self.params.keep == "quality":
            return _QUALITY_RANK.get(str(doc.meta.get("quality", "")).upper(), -1.0)
        return 0.0

    def mark_survivor(self, doc: Document, duplicates: int) -> None:
        doc.meta["dup_count"] = duplicates

    def mark_duplicate(self, doc: Document, survivor_id: str) -> None:
        doc.meta["duplicate_of"] = survivor_id
