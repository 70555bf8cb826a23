"""Boilerplate lines of web pages: a default list of line patterns, menu lines, and lines a source repeats.

:data:`DEFAULT_PATTERNS` are regular expressions that must match a *whole* line (stripped, case-insensitive):
cookie banners, "Czytaj więcej »", share and login prompts, "Wszelkie prawa zastrzeżone", "Strona główna",
breadcrumbs, social links, and their common English forms. They are written to miss prose: the short ones
match a line that holds only the prompt, the long ones (cookie banners) need a banner's opening words.

A **menu line** is one of at least :data:`MENU_MIN_ITEMS` short items (≤ 4 words, ≤ 40 characters each)
separated by ``|``, ``•``, ``·`` or a spaced ``»`` / ``›`` / ``>`` (``Strona główna » Urząd » Kontakt``).
Table rows are kept: a line that starts with ``|`` (Markdown), or whose items hold an e-mail, a number of
5+ digits, an amount or an abbreviation dot (``Lp. | Nazwa towaru | J.m.``, ``1. Kowalska | PESEL 84033011004``).

:class:`RepeatedLines` drops the headers and footers a source repeats, in one streaming pass with bounded
memory. It counts, per source, in how many documents each line was seen (a 64-bit hash per line, in an LRU
table of at most ``max_entries``, ~150 bytes each: the default 200 000 take ~30 MB; a header seen in every
document stays in the table however many other lines pass through), and drops a line from a document once
it was seen in at least ``min_docs`` *earlier* documents of the same source; lines shorter than ``min_chars``
are not counted. The first ``min_docs`` documents of a source keep the line: the price of one pass. A
document made only of repeated lines is left whole: it is a duplicate, for ``exact_dedup`` to count as one.
Counts are per task (one input file or byte range): with many workers, each task learns its sources alone.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from hashlib import blake2b

_COOKIE = r"(?:cookie|ciasteczk)"
_SITE = r"(?:strona|witryna|serwis|portal|sklep|blog)(?: internetowa| internetowy)?"
_USES = r"(?:używa|wykorzystuje|korzysta z|stosuje|zapisuje)"

DEFAULT_PATTERNS: tuple[str, ...] = (
    # Cookie banners: the opening words of a banner, then anything up to a long paragraph.
    rf"(?:ta|nasza|niniejsza|ten|nasz|niniejszy)? ?{_SITE}\b.{{0,40}}?\b{_USES}\b.{{0,30}}{_COOKIE}.{{0,1200}}",
    rf"(?:używamy|wykorzystujemy|stosujemy|korzystamy z)\b.{{0,30}}{_COOKIE}.{{0,1200}}",
    rf"(?:korzystając|kontynuując|dalsze korzystanie|klikając|szanujemy (?:twoją )?prywatność).{{0,300}}"
    rf"{_COOKIE}.{{0,1200}}",
    r"(?:polityka|ustawienia|zarządzaj) (?:cookies?|plików cookies?|ciasteczek|prywatności)\W{0,3}",
    r"akceptuj(?:ę|e)?(?: wszystkie)?(?: pliki)?(?: cookies?)?\W{0,3}",
    r"(?:\[[^\]\n]{1,40}\]\s*)+",  # a row of buttons: [Akceptuję] [Ustawienia]
    # Links to more content.
    r"(?:czytaj|przeczytaj|zobacz|pokaż|wyświetl|oglądaj|posłuchaj) (?:więcej|dalej|także|też|również|całość|"
    r"cały (?:artykuł|tekst|wpis)|galerię|wideo|film|zdjęcia|komentarze)\b.{0,100}",
    r"[^.!?\n]{1,80}\s(?:»|›|>>|→)",  # "Więcej wiadomości z kraju »"
    r"(?:«|‹|<<|←)\s?(?:poprzedni\w*|wstecz|wróć|powrót|starsze|nowsze|previous|back|older|newer)\b.{0,60}",
    r"(?:»|›|>>|→)\s[^.!?\n]{1,80}",  # "» Zobacz również" (a quotation's » sticks to its first word)
    r"(?:poprzedni|poprzednia|następny|następna|starsze|nowsze)(?: (?:artykuł|wpis|strona|temat|post|zdjęcie)\w*)?"
    r"(?:\s*[|•]\s*(?:poprzedni|poprzednia|następny|następna|starsze|nowsze)(?: \w+)?)?\W{0,3}",
    # Share, comment and login prompts.
    r"udostępnij(?: na \w+| w \w+)?\W{0,3}(?::.{0,150})?",
    r"(?:obserwuj|śledź|polub|znajdź) nas\b.{0,100}",
    r"(?:zaloguj|zarejestruj|wyloguj)(?: się)?(?: lub (?:zaloguj|zarejestruj|załóż konto)(?: się)?)?"
    r"(?:,? aby [^.\n]{0,80})?\W{0,3}",
    r"(?:załóż|utwórz) konto\W{0,3}",
    r"nie (?:jesteś zalogowany|masz konta)\b.{0,150}",
    r"zapisz się do newslettera\b.{0,150}",
    r"nie możesz (?:rozpoczynać|odpowiadać|edytować|usuwać|dodawać|głosować)\b.{0,60}",  # forum permissions
    r"(?:skomentuj|dodaj komentarz|komentarze(?: \(\d+\))?|\d+ komentarz(?:y|e)?|odpowiedz|cytuj|zgłoś"
    r"(?: do moderatora| nadużycie)?|drukuj|wydrukuj|pobierz pdf|do góry|na górę|powrót|wróć|menu|szukaj"
    r"(?:\.\.\.|…)?|wyszukaj|reklama|newsletter|kontakt|o nas|mapa strony|tweetnij|lubię to!?)\W{0,3}",
    r"(?:facebook|twitter|instagram|youtube|linkedin|pinterest|tiktok|wykop)\W{0,3}",
    # Rights, home, breadcrumbs, skip links, tags.
    r".{0,80}\b(?:wszelkie|wszystkie) prawa zastrzeżone\b.{0,150}",
    r"(?:©|copyright\b).{0,150}",  # not "(c)": a list item
    r"(?:strona główna|home|start)\W{0,3}",
    r"(?:jesteś tutaj|jesteś w|tu jesteś|znajdujesz się w)\s*:.{0,200}",
    r"przejdź do (?:treści|menu|wyszukiwarki|nawigacji|stopki|głównej zawartości)\W{0,3}",
    r"(?:tagi|tags|słowa kluczowe)\s*:.{0,200}",
    r"liczba odwiedzin\s*:.{0,50}",
    # English.
    r"(?:this (?:web)?site|we) uses? cookies.{0,1200}",
    r"by (?:continuing|using|clicking).{0,200}cookies.{0,1200}",
    r"(?:accept(?: all)?(?: cookies)?|cookie (?:settings|policy)|privacy policy|read more|continue reading|share"
    r"(?: this| on \w+)?|log ?in|sign ?in|sign ?up|log ?out|register|subscribe|back to top|skip to (?:main )?"
    r"content|follow us\b.{0,100})\W{0,3}",
    r".{0,80}\ball rights reserved\b.{0,100}",
)

MENU_MIN_ITEMS = 3
_MENU_SEPARATOR = re.compile(r"\s*[|•·]\s*|\s+[»›>]\s+")
_MENU_HINT = re.compile(r"[|•·]|\s[»›>]\s")
_ITEM_MAX_CHARS = 40
_ITEM_MAX_WORDS = 4
MAX_LINE_CHARS = 1500  # longer lines are prose, never a banner: not matched at all (keeps the regexes cheap)


def compile_patterns(patterns: list[str] | tuple[str, ...]) -> re.Pattern | None:
    """One case-insensitive regex matching a whole stripped line against any pattern."""
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE | re.DOTALL)


def is_menu_line(line: str) -> bool:
    """A row of short link-like items: ``Strona główna | O nas | Kontakt``, ``A » B » C``, ``1 | 2 | 3``."""
    if line.startswith("|") or not _MENU_HINT.search(line):
        return False
    items = [item for item in _MENU_SEPARATOR.split(line) if item]
    return len(items) >= MENU_MIN_ITEMS and all(map(_is_link_like, items))


# e-mails, long numbers, amounts, abbreviations (Lp. | J.m.): table cells, not links
_NOT_LINK = re.compile(r"@|\d{5}|\d,\d|(?<!\.)\.(?!\.)")


def _is_link_like(item: str) -> bool:
    """A menu entry, not a table cell: short, no e-mail, no long number, no abbreviation dot."""
    return len(item) <= _ITEM_MAX_CHARS and item.count(" ") < _ITEM_MAX_WORDS and not _NOT_LINK.search(item)


class BoilerplateLines:
    """Drops lines matching the patterns (and menu lines, when ``menus`` is on)."""

    def __init__(self, patterns: list[str] | tuple[str, ...] = DEFAULT_PATTERNS, menus: bool = True) -> None:
        self.regex = compile_patterns(patterns)
        self.menus = menus

    def is_boilerplate(self, line: str) -> bool:
        line = line.strip()
        if not line or len(line) > MAX_LINE_CHARS:
            return False
        return bool(self.regex is not None and self.regex.fullmatch(line)) or (self.menus and is_menu_line(line))

    def remove(self, text: str) -> tuple[str, int]:
        lines = text.split("\n")
        kept = [line for line in lines if not self.is_boilerplate(line)]
        dropped = len(lines) - len(kept)
        return ("\n".join(kept), dropped) if dropped else (text, 0)


class RepeatedLines:
    """Per-source line counts in an LRU table; see the module docstring."""

    def __init__(self, min_docs: int = 5, max_entries: int = 200_000, min_chars: int = 25) -> None:
        self.min_docs = min_docs
        self.max_entries = max_entries
        self.min_chars = min_chars
        self.table: OrderedDict[bytes, int] = OrderedDict()

    def _key(self, source: str, line: str) -> bytes:
        # A stable hash (not Python's salted one), so a task evicts the same entries on every run.
        return blake2b(f"{source}\0{line}".encode("utf-8", "surrogatepass"), digest_size=8).digest()

    def remove(self, text: str, source: str = "") -> tuple[str, int]:
        """Count this document's distinct lines for ``source``; drop those seen in ``min_docs`` earlier ones."""
        lines = text.split("\n")
        repeated = set()
        table = self.table
        for line in dict.fromkeys(lines):  # distinct lines, in order (deterministic eviction)
            if len(line.strip()) < self.min_chars:
                continue
            key = self._key(source, line)
            seen = table.get(key)
            if seen is None:
                table[key] = 1
                if len(table) > self.max_entries:
                    table.popitem(last=False)
                continue
            if seen >= self.min_docs:
                repeated.add(line)
            table[key] = seen + 1
            table.move_to_end(key)
        if not repeated:
            return text, 0
        kept = [line for line in lines if line not in repeated]
        if not any(line.strip() for line in kept):  # nothing but repeated lines: a duplicate, exact_dedup's call
            return text, 0
        return "\n".join(kept), len(lines) - len(kept)
