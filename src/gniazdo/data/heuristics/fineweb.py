"""FineWeb's own quality rules (Penedo et al. 2024; datatrove's ``FineWebQualityFilter``).

Defaults are FineWeb-2's Polish (``pol_Latn``) settings; ``null`` (or 0) turns a rule off. Over the
non-blank lines of a document, in this order:

* fewer than ``line_punct_thr`` (0.087) of lines end in sentence-final punctuation (``stop_chars``; default
  Unicode's sentence terminals) — ``line_punct_ratio`` (a document with none at all passes when
  ``line_punct_exclude_zero``);
* more than ``short_line_thr`` of lines have at most ``short_line_length`` (30) characters —
  ``short_line_ratio`` (off, as in FineWeb-2);
* characters in lines that repeat an earlier line, over all non-newline characters, above
  ``char_duplicates_ratio`` (0.1, FineWeb-2's value; FineWeb used 0.01) — ``char_dup_ratio``;
* newlines per word (punctuation tokens count as words) above ``new_line_ratio`` (0.158) — ``list_ratio``.

A document with no non-blank line is dropped as ``empty``.
"""

from __future__ import annotations

from operator import itemgetter

from pydantic import Field

from gniazdo.config import Config
from gniazdo.data.heuristics.text import TERMINAL_PUNCTUATION, duplicates
from gniazdo.data.tokenize_pl import words_of
from gniazdo.document import Document
from gniazdo.pipeline.step import Filter, register



class FineWebQualityParams(Config):
    line_punct_thr: float | None = Field(0.087, ge=0, le=1)
    line_punct_exclude_zero: bool = False
    stop_chars: list[str] | None = None  # None: Unicode sentence terminals, as datatrove
    short_line_thr: float | None = Field(None, ge=0)
    short_line_length: int = Field(30, ge=0)
    char_duplicates_ratio: float | None = Field(0.1, ge=0)
    new_line_ratio: float | None = Field(0.158, ge=0)


def fineweb_quality(text: str, p: FineWebQualityParams) -> str | None:
    """The reason ``text`` fails FineWeb's quality rules, or None."""
    lines = [line for line in text.split("\n") if line.strip()]
    if not lines:
        return "empty"
    if p.line_punct_thr:
        ratio = _punctuated_lines(lines, p.stop_chars) / len(lines)
        if ratio < p.line_punct_thr and not (ratio == 0 and p.line_punct_exclude_zero):
            return "line_punct_ratio"
    if p.short_line_thr:
        short = sum(1 for line in lines if len(line) <= p.short_line_length)
        if short / len(lines) > p.short_line_thr:
            return "short_line_ratio"
    newlines = text.count("\n")
    if p.char_duplicates_ratio and duplicates(lines)[1] / (len(text) - newlines) > p.char_duplicates_ratio:
        return "char_dup_ratio"
    if p.new_line_ratio and newlines / len(words_of(text)) > p.new_line_ratio:
        return "list_ratio"
    return None


def _punctuated_lines(lines: list[str], stop_chars: list[str] | None) -> int:
    """Lines ending in one of ``stop_chars`` (lines are not stripped: trailing spaces hide the punctuation)."""
    if stop_chars is None or all(len(s) == 1 for s in stop_chars):  # test the last character by set look-up
        stops = TERMINAL_PUNCTUATION if stop_chars is None else frozenset(stop_chars)
        return sum(map(stops.__contains__, map(itemgetter(-1), lines)))
    return sum(1 for line in lines if line.endswith(tuple(stop_chars)))


@register
class FineWebQualityFilter(Filter):
    """FineWeb's quality rules: line punctuation, short lines, duplicated lines, list-like documents."""

    name = "fineweb_quality"
    Params = FineWebQualityParams

    def keep(self, doc: Document) -> bool | str:
        return fineweb_quality(doc.text, self.params) or True
