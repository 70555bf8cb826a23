"""Per-step statistics: documents in/out, dropped by reason, characters, seconds. Mergeable across tasks."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterator

from gniazdo.document import Document


@dataclass
class StepStats:
    name: str
    docs_in: int = 0
    docs_out: int = 0
    chars_in: int = 0
    chars_out: int = 0
    dropped: Counter = field(default_factory=Counter)
    chars_dropped: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "docs_in": self.docs_in, "docs_out": self.docs_out,
                "chars_in": self.chars_in, "chars_out": self.chars_out,
                "dropped": dict(sorted(self.dropped.items())), "chars_dropped": self.chars_dropped, "seconds": round(self.seconds, 4)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "StepStats":
        return cls(d["name"], d["docs_in"], d["docs_out"], d["chars_in"], d["chars_out"],
                   Counter(d.get("dropped", {})), d.get("chars_dropped", 0),
                   d.get("seconds", 0.0))

    def merge(self, other: "StepStats") -> None:
        self.docs_in += other.docs_in
        self.docs_out += other.docs_out
        self.chars_in += other.chars_in
        self.chars_out += other.chars_out
        self.dropped.update(other.dropped)
        self.chars_dropped += other.chars_dropped
        self.seconds += other.seconds


class Meter:
    """Wraps a document stream, counting what passes and the time spent producing it.

    In a chain of generators the time of ``next()`` on step k includes every step before it, so a step's
    own time is its meter's total minus the previous meter's total (see :func:`own_seconds`).
    """

    def __init__(self, stats: StepStats, upstream: "Meter | None" = None) -> None:
        self.stats = stats
        self.upstream = upstream
        self.total = 0.0

    def wrap(self, docs: Iterator[Document]) -> Iterator[Document]:
        it = iter(docs)
        clock = time.perf_counter
        while True:
            t0 = clock()
            try:
                doc = next(it)
            except StopIteration:
                self.total += clock() - t0
                self._finish()
                return
            self.total += clock() - t0
            self.stats.docs_out += 1
            self.stats.chars_out += len(doc.text)
            yield doc

    def _finish(self) -> None:
        up = self.upstream
        if up is not None:
            self.stats.docs_in = up.stats.docs_out
            self.stats.chars_in = up.stats.chars_out
        self.stats.seconds = self.total - (up.total if up else 0.0)


def merge_stats(per_task: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Sum step stats of many tasks (same steps in the same order) into one list."""
    merged: list[StepStats] = []
    for task in per_task:
        for i, d in enumerate(task):
            if i == len(merged):
                merged.append(StepStats(d["name"]))
            merged[i].merge(StepStats.from_dict(d))
    return [s.to_dict() for s in merged]
