"""Data mixture: how much of each source, quality class and category goes into the training tokens.

A document's weight is the product of its source weight (``meta.source``, else the input file's stem), its
``meta.quality`` weight (HIGH / MEDIUM / LOW) and its ``meta.category`` weight; anything not listed weighs
``default``. Weight 0 drops the document, a weight below 1 keeps that fraction of documents, a weight above 1
repeats each document ``int(w)`` times plus once more for the fractional part. Which documents are kept or
repeated once more is decided by a hash of the document id and the seed, so a mixture is reproducible.

    source: {wiki: 2.0, forum: 0.5}
    quality: {HIGH: 1.0, MEDIUM: 0.7, LOW: 0}
    category: {}
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from gniazdo.config import Config, load_config


def unit_hash(seed: int, salt: str, key: str) -> float:
    """A deterministic number in [0, 1) for ``key`` (a document id), independent per ``salt`` and ``seed``."""
    digest = hashlib.blake2b(f"{seed}\x1f{salt}\x1f{key}".encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2**64


Weight = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class Mixture(Config):
    source: dict[str, Weight] = Field(default_factory=dict)
    quality: dict[str, Weight] = Field(default_factory=dict)
    category: dict[str, Weight] = Field(default_factory=dict)
    default: Weight = 1.0

    @classmethod
    def load(cls, path: str | Path, overrides: tuple[str, ...] = ()) -> "Mixture":
        return load_config(cls, path, overrides)

    def weight(self, source: str, meta: dict[str, Any]) -> float:
        w = self.source.get(source, self.default)
        for group in ("quality", "category"):
            value = meta.get(group)
            table: dict[str, float] = getattr(self, group)
            if table:
                w *= table.get(str(value), self.default) if value is not None else self.default
        return w

    def copies(self, doc_id: str, source: str, meta: dict[str, Any], seed: int = 0) -> int:
        """How many times the document goes into the training tokens (0 = dropped)."""
        return copies_for(self.weight(source, meta), doc_id, seed)


def copies_for(weight: float, doc_id: str, seed: int = 0) -> int:
    whole = int(weight)
    frac = weight - whole
    return whole + (1 if frac > 0 and unit_hash(seed, "mixture", doc_id) < frac else 0)
