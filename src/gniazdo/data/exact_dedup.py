"""Exact deduplication by a 64-bit hash of the text: the first copy in corpus order survives.

A :class:`GlobalFilter`, so it is exact across workers and tasks: every document's hash is written in one
pass, one process decides, and the next pass drops the later copies (reason ``exact_duplicate``).
"""

from __future__ import annotations

import re

import xxhash

from gniazdo.config import Config
from gniazdo.document import Document
from gniazdo.pipeline.step import GlobalFilter, register

_SPACE = re.compile(r"\s+")


class ExactDedupParams(Config):
    # Fold whitespace runs and case before hashing, so copies that differ only in those count as exact.
    normalize: bool = False


@register
class ExactDedup(GlobalFilter):
    """Drop exact copies of a text (64-bit xxh3 hash); the first copy in corpus order survives."""

    name = "exact_dedup"
    reason = "exact_duplicate"
    Params = ExactDedupParams

    def key(self, doc: Document) -> int:
        text = doc.text
        if self.params.normalize:
            text = _SPACE.sub(" ", text).strip().lower()
        return xxhash.xxh3_64_intdigest(text.encode("utf-8"))
