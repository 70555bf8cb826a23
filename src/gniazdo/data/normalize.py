"""The ``normalize`` step: repair a document's text before it is measured, filtered and deduplicated.

In order, each switchable in :class:`NormalizeParams` (all on by default):

1. ``mojibake`` — ftfy undoes UTF-8 read in the wrong code page (``Å¼``, ``ĹĽ`` → ``ż``), line by line, with a
   config that leaves correct Polish alone; a lone damaged word ftfy leaves (``ZarzÄ…d``) is re-decoded when
   Morfeusz knows the result (see :mod:`gniazdo.data.polish_repairs`).
2. ``polish_table`` — 8-bit Polish code page confusions (``¿`` ``³`` ``±`` ``¶`` ``œ`` ``š``, OSCAR's ``ŝ``
   for ``ż``) repaired word by word where Morfeusz confirms the repair, or where the whole document shows
   the pattern; and ``?`` standing for lost Polish letters, when a document shows that pattern.
3. ``nfc`` — Unicode NFC (decomposed ``z`` + combining dot → ``ż``).
4. ``control_chars`` — C0/C1 control characters (not tab, LF, CR), zero-width characters (U+200B..U+200D,
   U+2060, U+FEFF), direction marks (U+200E, U+200F) and soft hyphens (U+00AD) removed.
5. ``whitespace`` — CRLF/CR → LF, vertical tab / form feed / U+2028 → LF, U+2029 → blank line, tabs,
   no-break and other Unicode spaces → space, runs of spaces → one, trailing spaces stripped, 3+ newlines → 2,
   leading/trailing blank lines stripped.
6. ``hyphen_join`` — a word broken across lines is joined (``wy-\\nraz`` → ``wyraz``) only when the joined
   form is a known Polish word; a soft hyphen before a line break always joins. The hyphen stays when the
   second part starts with a capital (``Bielsko-\\nBiała``) or the parts look like a coordinate compound
   adjective (``biało-\\nczerwony``: the first part ends in ``-o``, the second is an adjective), because
   Morfeusz also knows ``białoczerwony``; the price is that ``jasno-\\nniebieski`` keeps its hyphen too.
7. ``boilerplate`` — lines matching :data:`~gniazdo.data.boilerplate.DEFAULT_PATTERNS` (or
   ``boilerplate_patterns``, plus ``extra_boilerplate_patterns``) and, with ``menu_lines``, menu rows.
8. ``repeated_lines`` — lines a source repeats in its documents (headers, footers), dropped once seen in
   ``repeated_min_docs`` (5) earlier documents of the same source; the first 5 keep them. The source is
   ``meta[source_key]`` when set, else the host of ``meta.url``, else ``meta.domain``, else ``meta.source``,
   else the input file (a task reads one file). Memory is bounded by ``repeated_table_size`` line hashes
   (LRU); lines shorter than ``repeated_min_chars`` (25) are never counted: a short line a source repeats is
   as often content (``Składniki:``, ``- 1 cebula``) as chrome, and the chrome ones are in the patterns. Counts live in one task (one file or
   byte range). A document made only of repeated lines is kept whole: it is a duplicate, exact_dedup's call.

In YAML: ``{step: normalize}``, or e.g. ``{step: normalize, hyphen_join: false, repeated_min_docs: 10,
extra_boilerplate_patterns: ["zobacz też na .*"]}``.

Each document gets ``meta.repairs``: how many repairs of each kind were made (zeros omitted; no key when
nothing was repaired). A document left empty is dropped with reason ``empty_after_normalize``.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Iterator
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from gniazdo.config import Config
from gniazdo.data import polish_repairs
from gniazdo.data.boilerplate import DEFAULT_PATTERNS, BoilerplateLines, RepeatedLines, compile_patterns
from gniazdo.data.morph import analyser, is_known_word
from gniazdo.document import Document
from gniazdo.pipeline.step import Step, register

_CONTROL = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f\u200b-\u200f\u2060\ufeff]")
_SOFT_HYPHEN = "\u00ad"
_LINE_BREAKS = re.compile("\r\n?|[\x0b\x0c\u2028]")
_ODD_BREAKS = ("\r", "\x0b", "\x0c", "\u2028", "\u2029")
_ODD_SPACE = re.compile("[\t\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]")
_SPACE_RUNS = re.compile(" {2,}")
_TRAILING = re.compile(" +(?=\n|$)")
_BLANK_RUNS = re.compile("\n{3,}")
_HYPHEN_BREAK = re.compile(r"(?<![\w-])([^\W\d_]+)(-|\u2010|\u00ad)[ \t]*\n[ \t]*([^\W\d_]+)")
_HYPHEN_AT_EOL = re.compile("[-\u2010\u00ad][ \t]*\n")  # a cheap test before the word-level regex

EMPTY = "empty_after_normalize"


class NormalizeParams(Config):
    mojibake: bool = True
    polish_table: bool = True
    nfc: bool = True
    control_chars: bool = True
    whitespace: bool = True
    hyphen_join: bool = True
    boilerplate: bool = True
    boilerplate_patterns: list[str] | None = None  # None: DEFAULT_PATTERNS
    extra_boilerplate_patterns: list[str] = Field(default_factory=list)
    menu_lines: bool = True
    repeated_lines: bool = True
    repeated_min_docs: int = Field(5, ge=1)
    repeated_min_chars: int = Field(25, ge=1)  # short repeated lines are content: "Składniki:", "- 1 cebula"
    repeated_table_size: int = Field(200_000, ge=1)  # ~150 bytes an entry: ~30 MB a worker
    source_key: str | None = None

    @field_validator("boilerplate_patterns", "extra_boilerplate_patterns")
    @classmethod
    def _compiles(cls, patterns: list[str] | None) -> list[str] | None:
        for p in patterns or []:
            try:
                compile_patterns([p])
            except re.error as e:
                raise ValueError(f"not a valid regular expression: {p!r} ({e})") from None
        return patterns


@register
class Normalize(Step):
    """Repair text (mojibake, Polish code pages, NFC, controls, whitespace, hyphenation, boilerplate lines)."""

    name = "normalize"
    Params = NormalizeParams

    def __init__(self, params=None, **kwargs) -> None:
        super().__init__(params, **kwargs)
        p: NormalizeParams = self.params
        patterns = [*(DEFAULT_PATTERNS if p.boilerplate_patterns is None else p.boilerplate_patterns),
                    *p.extra_boilerplate_patterns]
        self.boilerplate = BoilerplateLines(patterns, menus=p.menu_lines)
        self.repeated = RepeatedLines(p.repeated_min_docs, p.repeated_table_size, p.repeated_min_chars)

    def run(self, docs: Iterator[Document]) -> Iterator[Document]:
        for doc in docs:
            text, repairs = self.normalize(doc.text, self._source(doc))
            if not text:
                self.exclude(doc, EMPTY)
                continue
            doc.text = text
            if repairs:
                doc.meta["repairs"] = repairs
            yield doc

    def normalize(self, text: str, source: str = "") -> tuple[str, dict[str, int]]:
        """The repaired text and the repair counts (zeros omitted)."""
        p: NormalizeParams = self.params
        counts: dict[str, int] = {}

        def apply(kind: str, fn, *args) -> None:
            nonlocal text
            text, n = fn(text, *args)
            if n:
                counts[kind] = counts.get(kind, 0) + n

        if p.mojibake:
            apply("mojibake", polish_repairs.fix_mojibake)
        if p.polish_table:
            apply("polish_table", polish_repairs.repair_polish_table)
            apply("polish_table", polish_repairs.repair_question_marks)
        if p.nfc:
            apply("nfc", to_nfc)
        if p.control_chars:
            apply("control_chars", remove_controls)
        if p.whitespace:
            apply("whitespace", normalize_whitespace)
        if p.hyphen_join:
            apply("hyphen_join", join_hyphenated)
        if p.control_chars and _SOFT_HYPHEN in text:  # after hyphen_join, which reads soft hyphens at line ends
            apply("control_chars", lambda t: (t.replace(_SOFT_HYPHEN, ""), t.count(_SOFT_HYPHEN)))
        if p.boilerplate:
            apply("boilerplate_lines", self.boilerplate.remove)
        if p.repeated_lines:
            apply("repeated_lines", self.repeated.remove, source)
        if "boilerplate_lines" in counts or "repeated_lines" in counts:
            text = _BLANK_RUNS.sub("\n\n", text).strip("\n") if p.whitespace else text
        return (text if text.strip() else ""), counts

    def _source(self, doc: Document) -> str:
        meta, key = doc.meta, self.params.source_key
        if key is not None:
            return str(meta.get(key, ""))
        url = meta.get("url")
        if isinstance(url, str) and url:
            try:
                host = urlsplit(url).hostname
            except ValueError:
                host = None
            if host:
                return host
        return str(meta.get("domain") or meta.get("source") or "")


def to_nfc(text: str) -> tuple[str, int]:
    if text.isascii() or unicodedata.is_normalized("NFC", text):
        return text, 0
    fixed = unicodedata.normalize("NFC", text)
    return fixed, max(1, len(text) - len(fixed))


def remove_controls(text: str) -> tuple[str, int]:
    if text.isprintable() or not _CONTROL.search(text):  # isprintable (False at any \n) short-cuts one-liners
        return text, 0
    return _CONTROL.subn("", text)


def normalize_whitespace(text: str) -> tuple[str, int]:
    """See the module docstring (step 5); returns the text and the number of fixes.

    Each regex runs only when a plain substring test says it has work: most text needs none of them."""
    n = 0
    if any(c in text for c in _ODD_BREAKS):
        text, k = _LINE_BREAKS.subn("\n", text)
        n += k + text.count("\u2029")
        text = text.replace("\u2029", "\n\n")
    if "\t" in text or not text.isascii():
        text, k = _ODD_SPACE.subn(" ", text)
        n += k
    if "  " in text:
        text, k = _SPACE_RUNS.subn(" ", text)
        n += k
    if " \n" in text or text.endswith(" "):
        text, k = _TRAILING.subn("", text)
        n += k
    if "\n\n\n" in text:
        text, k = _BLANK_RUNS.subn("\n\n", text)
        n += k
    stripped = text.strip(" \n")
    return stripped, n + (stripped != text)


def join_hyphenated(text: str) -> tuple[str, int]:
    """``wy-\\nraz`` → ``wyraz`` when Morfeusz knows the joined word (see the module docstring, step 6)."""
    if "\n" not in text or not _HYPHEN_AT_EOL.search(text):
        return text, 0
    count = 0

    def join(m: re.Match) -> str:
        nonlocal count
        left, hyphen, right = m.groups()
        if hyphen != _SOFT_HYPHEN and not _joins(left, right):
            return m.group()
        count += 1
        return left + right

    return _HYPHEN_BREAK.sub(join, text), count


def _joins(left: str, right: str) -> bool:
    if right[0].isupper() and not right.isupper():
        return False  # Bielsko-Biała, Kędzierzyn-Koźle: names keep their hyphen
    if not is_known_word(left + right):
        return False
    return not (left[-1] in "oO" and is_known_word(left) and _is_adjective(right))


@lru_cache(maxsize=50_000)
def _is_adjective(word: str) -> bool:
    return any(interp[2][2].startswith("adj") for interp in analyser().analyse(word.lower()))
