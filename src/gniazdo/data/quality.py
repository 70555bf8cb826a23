"""SpeakLeash's HIGH / MEDIUM / LOW document quality rule, into ``meta.quality``.

Eight signals, computed from the metrics the ``metrics`` step writes into ``meta``:

| signal | LOW if | HIGH if | group |
|---|---|---|---|
| camel_case (count) | > 10 | < 3 | format |
| punctuations / words | > 0.4 or < 0.1 | > 0.1 and ≤ 0.35 | format |
| symbols / words | > 0.01 | == 0 | format |
| oovs / words | > 0.15 | < 0.05 | text |
| pos_x / words | > 0.07 | < 0.01 | text |
| lexical_density | > 0.8 or < 0.2 | > 0.4 and < 0.6 | readability |
| gunning_fog | > 14 | < 10 | readability |
| avg_sentence_length | > 35 or < 5 | > 10 and < 26 | readability |

LOW if any signal is LOW; otherwise HIGH if every signal of at least one whole group is HIGH; otherwise MEDIUM.
Zero words, a missing or non-numeric metric → LOW. Every threshold is a config field
(``signals.gunning_fog.low_above: 16``). As a filter it keeps everything unless ``drop`` lists grades.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field, field_validator

from gniazdo.config import Config
from gniazdo.document import Document
from gniazdo.errors import UserError
from gniazdo.pipeline.step import Filter, register

Grade = Literal["HIGH", "MEDIUM", "LOW"]


class Signal(Config):
    """One signal's bands. LOW: value > low_above or < low_below. HIGH: every given high_* bound holds."""

    group: Literal["format", "text", "readability"]
    low_above: float | None = None
    low_below: float | None = None
    high_above: float | None = None  # HIGH needs value > high_above
    high_below: float | None = None  # HIGH needs value < high_below
    high_at_most: float | None = None  # HIGH needs value <= high_at_most

    def grade(self, value: float) -> Grade:
        if (self.low_above is not None and value > self.low_above) or \
                (self.low_below is not None and value < self.low_below):
            return "LOW"
        if (self.high_above is None or value > self.high_above) and \
                (self.high_below is None or value < self.high_below) and \
                (self.high_at_most is None or value <= self.high_at_most):
            return "HIGH"
        return "MEDIUM"


def _default_signals() -> dict[str, Signal]:
    return {
        "camel_case": Signal(group="format", low_above=10, high_below=3),
        "punctuation_ratio": Signal(group="format", low_above=0.4, low_below=0.1, high_above=0.1, high_at_most=0.35),
        "symbol_ratio": Signal(group="format", low_above=0.01, high_at_most=0.0),
        "oov_ratio": Signal(group="text", low_above=0.15, high_below=0.05),
        "pos_x_ratio": Signal(group="text", low_above=0.07, high_below=0.01),
        "lexical_density": Signal(group="readability", low_above=0.8, low_below=0.2, high_above=0.4, high_below=0.6),
        "gunning_fog": Signal(group="readability", low_above=14, high_below=10),
        "avg_sentence_length": Signal(group="readability", low_above=35, low_below=5, high_above=10, high_below=26),
    }


# signal → (meta field, meta field it is divided by, or None for the value itself)
SIGNAL_SOURCES: dict[str, tuple[str, str | None]] = {
    "camel_case": ("camel_case", None),
    "punctuation_ratio": ("punctuations", "words"),
    "symbol_ratio": ("symbols", "words"),
    "oov_ratio": ("oovs", "words"),
    "pos_x_ratio": ("pos_x", "words"),
    "lexical_density": ("lexical_density", None),
    "gunning_fog": ("gunning_fog", None),
    "avg_sentence_length": ("avg_sentence_length", None),
}


class QualityParams(Config):
    signals: dict[str, Signal] = Field(default_factory=_default_signals)
    drop: list[Grade] = []  # grades to drop (reason quality_low / quality_medium); default: annotate only
    explain: bool = False  # also write meta.quality_signals = {signal: grade}

    @field_validator("signals", mode="before")
    @classmethod
    def _over_defaults(cls, value: Any) -> Any:
        """Given signals change only the fields they name (``signals.gunning_fog.low_above: 16`` keeps the
        other signals and bounds); ``signals.camel_case: null`` removes a signal."""
        if not isinstance(value, dict):
            return value
        merged: dict[str, Any] = {k: s.model_dump() for k, s in _default_signals().items()}
        for name, change in value.items():
            if change is None:
                merged.pop(name, None)
            elif isinstance(change, (dict, Signal)):
                change = change.model_dump(exclude_unset=True) if isinstance(change, Signal) else change
                merged[name] = {**merged.get(name, {}), **change}
            else:
                merged[name] = change
        return merged


def signal_values(meta: dict, signals: dict[str, Signal]) -> dict[str, float] | None:
    """The signals' values from a document's metrics; None when words are zero or a metric is unusable."""
    words = meta.get("words")
    if not isinstance(words, (int, float)) or words <= 0:
        return None
    values = {}
    for name in signals:
        field, divisor = SIGNAL_SOURCES[name]
        value = meta.get(field)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            return None
        values[name] = value / meta[divisor] if divisor else float(value)
    return values


def grade_document(meta: dict, signals: dict[str, Signal]) -> tuple[Grade, dict[str, Grade]]:
    values = signal_values(meta, signals)
    if values is None:
        return "LOW", {}
    grades = {name: signals[name].grade(v) for name, v in values.items()}
    if "LOW" in grades.values():
        return "LOW", grades
    groups: dict[str, list[Grade]] = {}
    for name, g in grades.items():
        groups.setdefault(signals[name].group, []).append(g)
    if any(all(g == "HIGH" for g in gs) for gs in groups.values()):
        return "HIGH", grades
    return "MEDIUM", grades


@register
class Quality(Filter):
    """SpeakLeash quality grade HIGH/MEDIUM/LOW into meta.quality (needs the metrics step before it)."""

    name = "quality"
    Params = QualityParams

    def __init__(self, params=None, **kwargs) -> None:
        super().__init__(params, **kwargs)
        unknown = set(self.params.signals) - set(SIGNAL_SOURCES)
        if unknown:
            raise UserError(f"quality: unknown signal(s) {', '.join(sorted(unknown))} "
                            f"(valid: {', '.join(SIGNAL_SOURCES)})")

    def keep(self, doc: Document) -> bool | str:
        if "words" not in doc.meta:
            raise UserError(f"quality: document {doc.id} has no metrics; put the 'metrics' step before 'quality'")
        grade, grades = grade_document(doc.meta, self.params.signals)
        doc.meta["quality"] = grade
        if self.params.explain:
            doc.meta["quality_signals"] = grades
        return f"quality_{grade.lower()}" if grade in self.params.drop else True
