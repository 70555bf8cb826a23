"""The one record type of the data side of gniazdo."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Document:
    """A text with a stable id and free-form metadata.

    ``meta`` holds what the stages learn about the text (SpeakLeash's per-document metrics,
    ``quality``, ``language``, dedup clusters, ...). Steps annotate it in place; readers fill it from
    the source record's other fields.
    """

    id: str
    text: str
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class BadRecord:
    """A record a reader could not turn into a Document: where it was, why, and its raw content."""

    path: str
    line: int  # 1-based line / record number within the file (0 when the whole file is bad)
    reason: str
    raw: str = ""

    def describe(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.reason}"
