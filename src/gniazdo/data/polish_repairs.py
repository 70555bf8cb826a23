"""Encoding repairs for Polish text: ftfy for UTF-8 mojibake, then a Polish table for 8-bit code page confusions.

Two kinds of damage meet in Polish web text:

* **UTF-8 read as an 8-bit code page** (``Å¼`` / ``ĹĽ`` for ``ż``, ``Ä…`` for ``ą``, even twice over). ftfy
  undoes these exactly; :data:`FTFY_CONFIG` turns off what would touch correct Polish (``uncurl_quotes``
  would turn „…” into "…") and what :mod:`gniazdo.data.normalize` does itself, so each repair is counted once.
  ftfy wants more evidence than one damaged word in a line (``ZarzÄ…d informuje``): such a word is re-decoded
  on its own and kept when Morfeusz knows the result.
* **8-bit Polish text read in the wrong 8-bit code page**: ISO-8859-2 shown as CP1252 (``¿`` ``³`` ``±`` ``¶``
  ``¼``), CP1250 shown as CP1252 (``¿`` ``³`` ``¹`` ``œ`` ``Ÿ``), CP1250 shown as ISO-8859-2 (``š`` for ``ą``,
  C1 controls for ``ś``/``ź``), ISO-8859-2 shown as CP1250 (``±`` ``¶`` ``Ľ``), and the ``ŝ`` for ``ż`` of PDF
  extractions common in OSCAR (``niŝ``, ``moŝna``). No decoder can undo these: the bytes are gone, only the
  glyphs remain, and the same glyph means different letters in different schemes (``Ľ`` is ``Ą`` or ``ź``).

The table is applied word by word, and only where it makes sense: a word holding a suspect glyph that
Morfeusz does not know is replaced by a scheme's repair that Morfeusz knows. When one scheme repairs at
least :data:`MIN_CONSISTENT` words of a document, the document is taken as written in it (or in one of the
schemes with more than half its votes), and its remaining unknown words (names, rare words Morfeusz lacks)
are repaired where those schemes agree. Correct Polish never holds these glyphs inside an unknown word that
becomes a known word, so it is left alone.

A third, rarer kind: every non-ASCII letter became ``?`` (``Ka?dy``, ``si?``). When a document has at
least :data:`MIN_CONSISTENT` words with a ``?`` between letters, each ``?`` inside a word (or right after
one and followed by lower-case text, so not ending a question) is filled with the one Polish letter that
makes a known word; when several letters would (``wycieczk?``: ``-ą`` or ``-ę``), the word is left as is.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from functools import lru_cache

import ftfy
import ftfy.bad_codecs  # noqa: F401  (registers the sloppy-windows-* codecs)

from gniazdo.data.morph import is_known_word

FTFY_CONFIG = ftfy.TextFixerConfig(
    uncurl_quotes=False,  # „cytat” is correct Polish typography, not damage
    fix_line_breaks=False,  # normalize's whitespace step does (and counts) this
    remove_control_chars=False,  # normalize's control-character step does (and counts) this
    normalization=None,  # normalize's NFC step does (and counts) this
    explain=False,
)

# What can start something ftfy repairs in Polish text: UTF-8 lead bytes as Latin-1 / CP1252 / CP1250 glyphs
# (Â Ã Ä Å Ă Ĺ; Î Ï Ð Ñ Đ Ń for Greek and Cyrillic; â ã for 3-byte sequences: „ ” – … and Japanese), C1
# controls, U+FFFD, ligatures, full-width forms, surrogates, terminal escapes and HTML entities. The leads of
# Chinese (ä-ï) are left out: é í ä are common in names and Chinese mojibake is not this corpus's concern.
# Text without any of them skips ftfy (most of a corpus: ftfy costs ~1 ms a document).
_FTFY_TRIGGER = re.compile("[\x1b\x80-\x9f\u00c2-\u00c5\u00ce-\u00d1\u00e2\u00e3\u0102\u0139\u0110\u0143"
                           "\ufffd\ufb00-\ufb06\uff00-\uffef\ud800-\udfff&]")  # one class: a fast scan
_HTML_ENTITY = re.compile(r"&#?\w+;")


def _needs_ftfy(text: str) -> bool:
    pos = 0
    while m := _FTFY_TRIGGER.search(text, pos):
        if m.group() != "&" or _HTML_ENTITY.match(text, m.start()):
            return True
        pos = m.end()  # a plain ampersand (B&B, M&M): ftfy only unescapes entities
    return False

POLISH_LETTERS = "ąćęłńóśźżĄĆĘŁŃÓŚŹŻ"
MIN_CONSISTENT = 3  # words a scheme must repair before it is trusted for the whole document


def _shown(data: bytes, encoding: str) -> list[str]:
    """How bytes look when decoded as ``encoding`` (CP1252 as browsers do: its undefined bytes stay C1
    controls). A C1 control is listed twice: as itself (text that ftfy did not touch) and as the CP1252
    glyph that ftfy's ``fix_c1_controls`` turns it into (``\\x9c`` → ``œ``)."""
    glyph = data.decode("latin-1" if encoding == "cp1252" else encoding)
    shown = [glyph]
    if "\x80" <= glyph <= "\x9f":
        try:
            shown.append(data.decode("cp1252"))
        except UnicodeDecodeError:
            pass
    return shown


def _scheme(written_in: str, read_as: str) -> dict[str, str]:
    """Glyph → Polish letter for Polish text written in ``written_in`` but decoded as ``read_as``."""
    table = {}
    for letter in POLISH_LETTERS:
        for glyph in _shown(letter.encode(written_in), read_as):
            if glyph != letter:
                table[glyph] = letter
    return table


SCHEMES: dict[str, dict[str, str]] = {
    "iso8859_2_as_cp1252": _scheme("iso-8859-2", "cp1252"),
    "cp1250_as_cp1252": _scheme("cp1250", "cp1252"),
    "cp1250_as_iso8859_2": _scheme("cp1250", "iso-8859-2"),
    "iso8859_2_as_cp1250": _scheme("iso-8859-2", "cp1250"),
    # PDF text layers of Polish documents (OSCAR: niŝ, moŝna, naleŝy); their fonts write ``Ŝ`` for ``ż`` too
    # (``DzierŜoniów``): the case of the repair follows the word's (see _recase).
    "s_hat": {"ŝ": "ż", "Ŝ": "ż"},
}
_TRANSLATE = {name: str.maketrans(table) for name, table in SCHEMES.items()}
_SUSPECT = "".join(sorted({g for table in SCHEMES.values() for g in table}))
# Glyphs that are letters of languages whose names and words fill Polish text (Czech/Slovak š Ľ, French ê,
# Spanish ñ, Danish æ): a word whose only suspect glyphs are these is repaired only when another word of the
# document was repaired too (``Barszcz /boršč/`` must not become ``/borą``).
_WEAK = frozenset("šĽêñæÊÑÆ")
# Strays to drop rather than map: a C1 leftover next to the letter it stood for (``przeszłoś\x9cci``), and
# ``¬`` used as a soft hyphen by some typesetting (``opano¬wali``, ``&not;`` in HTML).
_STRAYS = str.maketrans("", "", "".join(sorted({g for g in _SUSPECT if "\x80" <= g <= "\x9f"} | set("œŒŸ¬"))))
_SUSPECT_CLASS = "[" + re.escape(_SUSPECT) + "]"
_HAS_SUSPECT = re.compile(_SUSPECT_CLASS)
_SUSPECT_SET = frozenset(_SUSPECT)
# A word holding a suspect glyph: letters and suspect glyphs (³ ¹ ¼ are digits to Python, ± ¶ are not letters).
_WORD_RUN = re.compile(rf"(?:[^\W\d_]|{_SUSPECT_CLASS})*")
_LETTER = re.compile(rf"(?!{_SUSPECT_CLASS})[^\W\d_]")


# ftfy misreads some mixed-encoding lines as UTF-8 of a far-away script (``choć \x9crodkowa`` → ``cho㠜rodkowa``).
# A word's fix is kept only when every character it brings in belongs to a script a Polish text can hold.
_IMPLAUSIBLE = re.compile("[^\x00-\u024f\u0370-\u052f\u1e00-\u1eff\u2000-\u2bff]")
_SPACES_KEPT = re.compile(r"(\s+)")


def fix_mojibake(text: str) -> tuple[str, int]:
    """ftfy's repairs, line by line, keeping only plausible ones, then :func:`repair_utf8_words`; returns the
    text and how many words changed."""
    if not _needs_ftfy(text):
        return text, 0
    lines = text.split("\n")
    changed = 0
    for i, line in enumerate(lines):
        if not _needs_ftfy(line):
            continue
        fixed = _plausible_fix(line, ftfy.fix_text(line, FTFY_CONFIG))
        if fixed != line:
            changed += _changed_words(line, fixed)
            lines[i] = fixed
    if changed:
        text = "\n".join(lines)
    text, words = repair_utf8_words(text)
    return text, changed + words


# ftfy wants evidence before it re-decodes a line: one damaged word among correct ones (``ZarzÄ…d informuje``,
# or next to a correct ``ż`` that no 8-bit code page can encode) is left alone. Here the evidence is the word:
# its UTF-8 lead/continuation glyph pairs re-decoded as UTF-8 must make a word Morfeusz knows.
_UTF8_CODECS = ("sloppy-windows-1252", "sloppy-windows-1250", "iso-8859-2")


def _glyphs(byte_values: range) -> str:
    return "".join(sorted({bytes([b]).decode(c) for b in byte_values for c in _UTF8_CODECS}))


_LEADS = re.escape(_glyphs(range(0xC3, 0xC6)))  # lead bytes of ą ć ę ł ń ó ś ź ż: Ã Ä Å Ă Ĺ
_CONTINUATIONS = re.escape(_glyphs(range(0x80, 0xC0)))
_UTF8_PAIR = re.compile(f"[{_LEADS}][{_CONTINUATIONS}]")
_UTF8_WORD_TAIL = re.compile(rf"(?:[{_LEADS}][{_CONTINUATIONS}]|[^\W\d_])*")


@lru_cache(maxsize=50_000)
def _utf8_decoded(word: str) -> str | None:
    for codec in _UTF8_CODECS:
        try:
            decoded = word.encode(codec).decode("utf-8")
        except UnicodeError:
            continue
        if decoded != word and is_known_word(decoded):
            return decoded
    return None


def repair_utf8_words(text: str) -> tuple[str, int]:
    """Re-decode single words whose Polish letters show as two glyphs (``ZarzÄ…d`` → ``Zarząd``)."""
    if not _UTF8_PAIR.search(text):
        return text, 0
    parts, pos, count = [], 0, 0
    for m in _UTF8_PAIR.finditer(text):
        if m.start() < pos:
            continue
        start = m.start()
        while start > pos and text[start - 1].isalpha():
            start -= 1
        end = _UTF8_WORD_TAIL.match(text, m.start()).end()
        decoded = _utf8_decoded(text[start:end])
        if decoded is not None:
            parts += [text[pos:start], decoded]
            pos, count = end, count + 1
    parts.append(text[pos:])
    return "".join(parts), count


def _plausible_fix(line: str, fixed: str) -> str:
    """``fixed``, less the words where it brought in characters of a far-away script (those keep the ``line``'s
    spelling); the whole ``line`` when the words do not pair up."""
    if fixed == line or not (set(_IMPLAUSIBLE.findall(fixed)) - set(line)):
        return fixed
    before, after = _SPACES_KEPT.split(line), _SPACES_KEPT.split(fixed)
    if len(before) != len(after):
        return line
    return "".join(a if set(_IMPLAUSIBLE.findall(b)) - set(a) else b for a, b in zip(before, after))


def _changed_words(before: str, after: str) -> int:
    if before == after:
        return 0
    a, b = before.split(), after.split()
    if len(a) != len(b):
        return max(1, abs(len(a) - len(b)))
    return max(1, sum(x != y for x, y in zip(a, b)))


def _recase(word: str, repaired: str, scheme: str) -> str:
    """``s_hat`` maps ``Ŝ`` to ``ż`` (those fonts use it mid-word and after commas: ``, Ŝe``); a word in capitals
    gets ``Ż`` (a sentence-initial one too, see repair_polish_table)."""
    if scheme == "s_hat" and "Ŝ" in word and len(word) > 1 and word.replace("Ŝ", "").isupper():
        return repaired.upper()
    return repaired


def _translate(word: str, scheme: str) -> str:
    return _recase(word, word.translate(_TRANSLATE[scheme]), scheme)


@lru_cache(maxsize=100_000)
def _candidates(word: str) -> tuple[tuple[str, str], ...]:
    """(scheme, repaired word) for every scheme whose repair of ``word`` Morfeusz knows, else the word without
    its stray glyphs (scheme ``drop_stray``) when Morfeusz knows that."""
    if is_known_word(word) or not _LETTER.search(word):
        return ()
    found = []
    for name in _TRANSLATE:
        repaired = _translate(word, name)
        if repaired != word and is_known_word(repaired):
            found.append((name, repaired))
    if not found:
        dropped = word.translate(_STRAYS)
        if dropped != word and dropped and is_known_word(dropped):
            found.append(("drop_stray", dropped))
    return tuple(found)


def _document_schemes(votes: Counter) -> list[str]:
    """The schemes the whole document may be written in, best first: the leader must have repaired
    MIN_CONSISTENT words; any other with more than half its votes contends (schemes share glyphs: ``£`` is
    ``Ł`` in both ISO-8859-2 and CP1250 read as CP1252)."""
    ranked = [kv for kv in votes.most_common() if kv[0] != "drop_stray"]
    if not ranked or ranked[0][1] < MIN_CONSISTENT:
        return []
    return [name for name, n in ranked if n * 2 > ranked[0][1]]


def _agreed(word: str, schemes: list[str]) -> str | None:
    """The repair of an unknown word when every contending scheme that maps all its glyphs agrees on it."""
    if not schemes or not _LETTER.search(word) or is_known_word(word):
        return None
    glyphs = {g for g in word if g in _SUSPECT_SET}
    repairs = {_translate(word, name) for name in schemes if glyphs <= SCHEMES[name].keys()}
    return repairs.pop() if len(repairs) == 1 else None


def _suspect_words(text: str) -> list[tuple[int, int]]:
    """Spans of the words holding a suspect glyph, found from the glyphs (rare) rather than from every word."""
    spans: list[tuple[int, int]] = []
    for m in _HAS_SUSPECT.finditer(text):
        i = m.start()
        if spans and i < spans[-1][1]:
            continue
        start = i
        while start and (text[start - 1].isalpha() or text[start - 1] in _SUSPECT_SET):
            start -= 1
        spans.append((start, _WORD_RUN.match(text, i).end()))
    return spans


def repair_polish_table(text: str) -> tuple[str, int]:
    """Apply the code page table word by word (see the module docstring); returns the text and the repairs."""
    if not _HAS_SUSPECT.search(text):
        return text, 0
    spans = _suspect_words(text)
    words = Counter(text[a:b] for a, b in spans)
    options = {word: dict(found) for word in words if (found := _candidates(word))}
    if not options:
        return text, 0
    votes: Counter = Counter()
    for word, found in options.items():
        for name in found:
            votes[name] += words[word]
    schemes = _document_schemes(votes)
    corroborated = len(options) > 1
    fixes = {}
    for word in words:
        found = options.get(word)
        if found:
            if corroborated or not _WEAK.issuperset(g for g in word if g in _SUSPECT_SET):
                fixes[word] = max(found.items(), key=lambda kv: votes[kv[0]])[1]
        elif (repaired := _agreed(word, schemes)) is not None:
            fixes[word] = repaired
    if not fixes:
        return text, 0
    parts, pos, count = [], 0, 0
    for a, b in spans:
        word = text[a:b]
        if word not in fixes:
            continue
        repaired = fixes[word]
        if word[0] == "Ŝ" and repaired[0] == "ż" and _sentence_start(text, a):
            repaired = "Ż" + repaired[1:]
        parts += [text[pos:a], repaired]
        pos, count = b, count + 1
    parts.append(text[pos:])
    return "".join(parts), count


_SENTENCE_END = re.compile(r"(?:[.!?…][ \t]+|\n[ \t]*)$")


def _sentence_start(text: str, start: int) -> bool:
    return start == 0 or bool(_SENTENCE_END.search(text[max(0, start - 4):start]))


# ``?`` standing for a lost letter. A word with a ``?`` inside (or starting it) is a candidate; a trailing ``?``
# is filled only when lower-case text follows (``si? w sobot?``): a real question mark ends a sentence.
_QMARK_WORD = re.compile(r"(?<![\w?])[^\W\d_?]*(?:\?[^\W\d_?]*)+")
_QMARK_INSIDE = re.compile(r"\?(?=[^\W\d_])(?<![\d_?]\?)")  # starts with the literal: a fast scan
_LOWER_FOLLOWS = re.compile(r"[,.;:]?[ \t]+[a-ząćęłńóśźż]")
_MAX_QMARKS = 3  # 9 ** 3 candidates at most per word


@lru_cache(maxsize=20_000)
def _fill_qmarks(word: str, capital: bool) -> str | None:
    """The one filling of the ``?`` in ``word`` with Polish letters that Morfeusz knows, else None."""
    n = word.count("?")
    if not n or n > _MAX_QMARKS or not _LETTER.search(word):
        return None
    upper = word.replace("?", "").isupper()
    letters = POLISH_LETTERS[9:] if upper else POLISH_LETTERS[:9]
    parts = word.split("?")
    known = set()
    for fill in itertools.product(letters, repeat=n):
        if capital:
            fill = (fill[0].upper(), *fill[1:])
        candidate = "".join(p + c for p, c in zip(parts, (*fill, "")))
        if is_known_word(candidate):
            known.add(candidate)
            if len(known) > 1:
                return None
    return known.pop() if known else None


def repair_question_marks(text: str) -> tuple[str, int]:
    """Fill ``?`` that stand for lost Polish letters, when the document shows the pattern consistently."""
    if text.count("?") < MIN_CONSISTENT:
        return text, 0
    if next(itertools.islice(_QMARK_INSIDE.finditer(text), MIN_CONSISTENT - 1, None), None) is None:
        return text, 0  # fewer than MIN_CONSISTENT words with a ? inside
    count = 0

    def fill(m: re.Match) -> str:
        nonlocal count
        word, tail = m.group(), ""
        if word.endswith("?") and not _LOWER_FOLLOWS.match(text, m.end()):
            stripped = word.rstrip("?")
            word, tail = stripped, word[len(stripped):]
        capital = word.startswith("?") and _sentence_start(text, m.start())
        repaired = _fill_qmarks(word, capital) if "?" in word else None
        if repaired is None:
            return m.group()
        count += 1
        return repaired + tail

    return _QMARK_WORD.sub(fill, text), count
