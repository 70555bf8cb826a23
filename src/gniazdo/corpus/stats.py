"""Manifest statistics: what SpeakLeash stores in ``<name>.manifest`` under ``stats``.

Rules (matching SpeakLeash manifests): ``documents`` counts documents; ``characters`` sums text lengths
(SpeakLeash's per-document ``length`` is the same number, so it is folded into ``characters``); every other
integer meta field is summed; float meta fields are ratios or averages, so their mean is stored;
a string ``quality`` field (HIGH/MEDIUM/LOW) gives ``stats.quality`` as fractions of documents.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from gniazdo.document import Document

_FOLDED_INTO_CHARACTERS = {"length", "characters"}


class ManifestStats:
    """Accumulates manifest stats document by document; mergeable across shards and tasks."""

    def __init__(self) -> None:
        self.documents = 0
        self.characters = 0
        self.sums: dict[str, int] = {}
        self.float_sums: dict[str, float] = {}
        self.float_counts: Counter[str] = Counter()
        self.quality: Counter[str] = Counter()

    def add(self, doc: Document) -> None:
        self.documents += 1
        self.characters += len(doc.text)
        for key, value in doc.meta.items():
            if key in _FOLDED_INTO_CHARACTERS or isinstance(value, bool):
                continue
            if isinstance(value, int):
                self.sums[key] = self.sums.get(key, 0) + value
            elif isinstance(value, float):
                self.float_sums[key] = self.float_sums.get(key, 0.0) + value
                self.float_counts[key] += 1
            elif key == "quality" and isinstance(value, str):
                self.quality[value] += 1

    def merge(self, other: "ManifestStats") -> None:
        self.documents += other.documents
        self.characters += other.characters
        for k, v in other.sums.items():
            self.sums[k] = self.sums.get(k, 0) + v
        for k, v in other.float_sums.items():
            self.float_sums[k] = self.float_sums.get(k, 0.0) + v
        self.float_counts.update(other.float_counts)
        self.quality.update(other.quality)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"documents": self.documents, "characters": self.characters}
        out.update(self.sums)
        for k, total in self.float_sums.items():
            out[k] = total / self.float_counts[k]
        if self.quality:
            n = sum(self.quality.values())
            out["quality"] = {q: self.quality[q] / n for q in sorted(self.quality)}
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ManifestStats":
        """Rebuild an accumulator from a manifest's stats (means become sums again), to merge shards."""
        s = cls()
        s.documents = int(d.get("documents", 0))
        s.characters = int(d.get("characters", 0))
        for k, v in d.items():
            if k in ("documents", "characters", "quality") or isinstance(v, bool):
                continue
            if isinstance(v, int):
                s.sums[k] = v
            elif isinstance(v, float):
                s.float_sums[k] = v * s.documents
                s.float_counts[k] = s.documents
        for q, frac in (d.get("quality") or {}).items():
            s.quality[q] = round(frac * s.documents)
        return s
