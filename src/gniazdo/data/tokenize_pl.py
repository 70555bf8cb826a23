"""Polish tokens the way spaCy 3.x's blank ``pl`` tokenizer makes them, without spaCy.

One tokenizer for every step that counts Polish words: datatrove (hence FineWeb-2's heuristic filters, see
:mod:`gniazdo.data.heuristics`) splits ``pol_Latn`` words with ``spacy.blank("pl")``, and SpeakLeash's metrics
(:mod:`gniazdo.data.metrics`) come from ``pl_core_news_md``, whose tokenizer has the same rules. The filters'
n-gram fractions and word counts and the metrics' word, punctuation and sentence-length counts all depend on
exactly where it splits, so this module re-implements the algorithm and the Polish rules (spaCy 3.x
``lang/pl/punctuation.py`` over the base punctuation classes):

1. the text splits on whitespace into chunks;
2. a chunk that is a special case (emoticons, ``C++``, ...) is one token; otherwise prefixes (opening
   punctuation, quotes, currency, symbols) and suffixes (closing punctuation, a final ``.``, units and
   currency after a digit) are peeled off one at a time, stopping early when a special case is left;
3. what remains is one token if it looks like a URL, else it splits at infixes: hyphens and dashes, ellipses,
   symbols, a ``.`` before a digit or capital letter, ``, ! ? : < > = /`` between letters;
4. tokens of one chunk that spell a special case are merged back (``10.0.0.1`` → ``10 . 0.0 . 1``; spaCy
   matches special cases over the whole document, where a match across two chunks can block one inside a
   chunk, as in ``"a:) :)b"``: it takes marks glued to words on both sides of a space, and no document of
   the Polish web sample or of SpeakLeash's benchmark has it);
5. whitespace other than one plain space after a token is a token of its own (spaCy's space tokens:
   ``"a\\n b"`` → ``a``, ``"\\n "``, ``b``); a whitespace run at the very start of the text is one whole.

:func:`split_words` gives the tokens without the space tokens (datatrove's ``split_into_words``),
:func:`tokenize` all of them (``[t.text for t in nlp.tokenizer(text)]``). Letter classes use Unicode
properties (``\\p{L}``, ``\\p{Ll}``, ...) where spaCy lists ranges; the two differ only for rare letters
outside Latin, Greek and Cyrillic. tests/test_tokenize_pl.py compares both functions with spaCy.

Fast path: chunks repeat heavily in real text, so each chunk's tokens are cached and most of a document is
split by dictionary look-ups; :func:`words_of` and :func:`tokens_of` also remember the last document, so the
heuristic filters and the metrics step running one after another split a document once.
"""

from __future__ import annotations

import re
from itertools import chain, filterfalse
from typing import Any, Callable, Iterable, Iterator

import regex

_ALPHA = r"\p{L}"
_LOWER = r"\p{Ll}\p{Lo}"  # spaCy counts caseless letters (CJK, Arabic, ...) as both lower and upper case
_UPPER = r"\p{Lu}\p{Lt}\p{Lo}"
_SYMBOL = r"\p{So}"  # spaCy's "icons": dingbats, emoji, ©, °, ...

_PUNCT = "… …… , : ; ! ? ¿ ؟ ¡ ( ) [ ] { } < > _ # * & 。 ？ ！ ， 、 ； ： ～ · । ، ۔ ؛ ٪".split()
_QUOTES = "' \" ” “ ` ‘ ´ ’ ‚ , „ » « 「 」 『 』 （ ） 〔 〕 【 】 《 》 〈 〉 ⟦ ⟧".split()
_HYPHENS = "- – — -- --- —— ~".split()
_CURRENCY = "$ £ € ¥ ฿ US$ C$ A$ ₽ ﷼ ₴ ₠ ₡ ₢ ₣ ₤ ₥ ₦ ₧ ₨ ₩ ₪ ₫ ₭ ₮ ₯ ₰ ₱ ₲ ₳ ₵ ₶ ₷ ₸ ₹ ₺ ₻ ₼ ₾ ₿".split()
_UNITS = (
    "km km² km³ m m² m³ dm dm² dm³ cm cm² cm³ mm mm² mm³ ha µm nm yd in ft kg g mg µg t lb oz m/s km/h kmh mph "
    "hPa Pa mbar mb MB kb KB gb GB tb TB T G M K % км км² км³ м м² м³ дм дм² дм³ см см² см³ мм мм² мм³ нм "
    "кг г мг м/с км/ч кПа Па мбар Кб КБ кб Мб МБ мб Гб ГБ гб Тб ТБ тб"
).split()
# spaCy's special cases for Polish: its base exceptions minus the abbreviations ending in "." (which Polish
# splits). Each is always one token.
SPECIALS = frozenset(
    r"""' '' (*_*) (-8 (-: (-; (-_-) (._.) (: (; (= (>_<) (^_^) (o: (¬_¬) (ಠ_ಠ) (╯°□°）╯︵┻━┻ )-: ): -_- -__-
    0.0 0.o 0_0 0_o 8) 8-) 8-D 8D :'( :') :'-( :'-) :( :(( :((( :() :) :)) :))) :* :-( :-(( :-((( :-) :-)) :-)))
    :-* :-/ :-0 :-3 :-> :-D :-O :-P :-X :-] :-o :-p :-x :-| :-} :/ :0 :1 :3 :> :D :O :P :X :] :o :o) :p :x :|
    :} ;) ;-) ;-D ;D ;_; <.< </3 <3 <33 <333 <space> =( =) =/ =3 =D =[ =] =| >.< >.> >:( >:o ><(((*> @_@ C++
    O.O O.o O_O O_o V.V V_V XD XDD [-: [: [= \") \n \t ]= ^_^ ^__^ ^___^ o.0 o.O o.o o_0 o_O o_o v.v v_v xD
    xDD ¯\(ツ)/¯ ಠ_ಠ ಠ︵ಠ —""".split()
)


def _literal(items: list[str]) -> list[str]:
    return [regex.escape(x) for x in items]


# Alternatives are tried in order, as in spaCy's compiled prefix/suffix/infix expressions.
_PREFIX = regex.compile("(?:" + "|".join(
    [r"(?:długo|krótko|jedno|dwu|trzy|cztero)-", "§", "%", "=", "—", "–", r"\+(?![0-9])"]
    + _literal(_PUNCT) + [r"\.\.+", "…"] + _literal(_QUOTES) + _literal(_CURRENCY) + [f"[{_SYMBOL}]"]
) + ")")
_SUFFIX = regex.compile("(?:" + "|".join(
    ["''", "’’", r"\.", "…"] + _literal(_PUNCT) + _literal(_QUOTES) + [f"[{_SYMBOL}]"]
    + [r"(?<=[0-9])\+", r"(?<=°[FfCcKk])\.",
       "(?<=[0-9])(?:" + "|".join(_literal(_CURRENCY)) + ")",
       "(?<=[0-9])(?:" + "|".join(_literal(_UNITS)) + ")"]
) + ")$")
_INFIX_QUOTES = regex.escape("".join(q for q in _QUOTES if q != "'"))
_INFIX = regex.compile("|".join(
    [r"\.\.+", "…", f"[{_SYMBOL}]"] + _literal(_HYPHENS)
    + [f"(?<=[0-9{_ALPHA}])\\.(?=[0-9{_UPPER}])",
       f"(?<=[{_ALPHA}])[,!?](?=[{_ALPHA}])",
       f"(?<=[{_ALPHA}])[:<>=/](?=[{_ALPHA}])",
       f"(?<=[{_ALPHA}])[{_INFIX_QUOTES})\\](\\[](?=[\\-{_ALPHA}])"]
))
# A URL or e-mail stays one token (the mathiasbynens/dperini URL expression spaCy uses): optional scheme and
# user, then a public IPv4 address or host names ending in a lower-case TLD, optional port and path.
_HOST_CHAR = "A-Za-z0-9\u00a1-\uffff"
_URL = regex.compile(
    r"(?:[\w+\-.]{2,}://)?(?:\S+(?::\S*)?@)?(?:"
    r"(?!(?:10|127)(?:\.\d{1,3}){3})(?!(?:169\.254|192\.168)(?:\.\d{1,3}){2})"
    r"(?!172\.(?:1[6-9]|2\d|3[0-1])(?:\.\d{1,3}){2})"
    r"(?:[1-9]\d?|1\d\d|2[01]\d|22[0-3])(?:\.(?:1?\d{1,2}|2[0-4]\d|25[0-5])){2}"
    r"(?:\.(?:[1-9]\d?|1\d\d|2[0-4]\d|25[0-4]))"
    f"|(?:(?:[{_HOST_CHAR}][{_HOST_CHAR}_-]{{0,62}})?[{_HOST_CHAR}]\\.)+[{_LOWER}]{{2,63}}"
    r")(?::\d{2,5})?(?:[/?#]\S*)?"
)


def _peel(chunk: str, specials: frozenset[str]) -> tuple[list[str], str, list[str]]:
    """Strip prefixes and suffixes one at a time; stop early when what is left is a special case."""
    prefixes: list[str] = []
    suffixes: list[str] = []
    last = -1
    while chunk and len(chunk) != last and chunk not in specials:
        last = len(chunk)
        m = _PREFIX.match(chunk)
        pre = m.end() if m else 0
        if pre and chunk[pre:] in specials:
            prefixes.append(chunk[:pre])
            chunk = chunk[pre:]
            break
        m = _SUFFIX.search(chunk[pre:])  # on the rest: its look-behinds must not see the prefix
        suf = len(chunk) - pre - m.start() if m else 0
        if suf and chunk[:-suf] in specials:
            suffixes.append(chunk[-suf:])
            chunk = chunk[:-suf]
            break
        if pre and suf and pre + suf <= len(chunk):
            prefixes.append(chunk[:pre])
            suffixes.append(chunk[-suf:])
            chunk = chunk[pre:-suf]
        elif pre:
            prefixes.append(chunk[:pre])
            chunk = chunk[pre:]
        elif suf:
            suffixes.append(chunk[-suf:])
            chunk = chunk[:-suf]
    return prefixes, chunk, suffixes


def _split_infixes(core: str, specials: frozenset[str]) -> list[str]:
    if core in specials or ("." in core and _URL.fullmatch(core)):
        return [core]
    tokens, start = [], 0
    for m in _INFIX.finditer(core):
        if m.start() == 0:  # an infix at the very start stays attached, as in spaCy
            continue
        if m.start() != start:
            tokens.append(core[start:m.start()])
        if m.end() != m.start():
            tokens.append(m.group())
        start = m.end()
    if start < len(core):
        tokens.append(core[start:])
    return tokens


def _affix_tokens(chunk: str, specials: frozenset[str] = SPECIALS) -> list[str]:
    prefixes, core, suffixes = _peel(chunk, specials)
    return prefixes + (_split_infixes(core, specials) if core else []) + suffixes[::-1]


def _merge_patterns() -> dict[str, list[tuple[tuple[str, ...], str]]]:
    """Special cases that the affix rules would split, by their first piece: ``:)`` is ``:`` + ``)``."""
    patterns: dict[str, list[tuple[tuple[str, ...], str]]] = {}
    for special in SPECIALS:
        pieces = tuple(_affix_tokens(special, frozenset()))
        if len(pieces) > 1:
            patterns.setdefault(pieces[0], []).append((pieces, special))
    return patterns


_MERGE = _merge_patterns()


def _merge_specials(tokens: list[str]) -> list[str]:
    """Merge runs of tokens that spell a special case; longest runs first, then leftmost (spaCy's order)."""
    found = []
    for i, tok in enumerate(tokens):
        for pieces, special in _MERGE.get(tok, ()):
            if tuple(tokens[i:i + len(pieces)]) == pieces:
                found.append((-len(pieces), i, special))
    if not found:
        return tokens
    seen: set[int] = set()
    chosen = {}
    for neg_len, start, special in sorted(found):
        end = start - neg_len
        if start not in seen and end - 1 not in seen:
            chosen[start] = (end, special)
        seen.update(range(start, end))  # spaCy marks the tokens of a rejected match as taken too
    out, i = [], 0
    while i < len(tokens):
        if i in chosen:
            end, special = chosen[i]
            out.append(special)
            i = end
        else:
            out.append(tokens[i])
            i += 1
    return out


class Memo(dict):
    """``fn`` over strings, remembered: a dict that computes a missing value on first look-up, emptied when full.

    Reading it through ``map(memo.__getitem__, keys)`` stays in C for every key seen before (a fraction of an
    ``lru_cache`` hit), and a corpus' tokens repeat so much that clearing it now and then loses little.
    """

    def __init__(self, fn: Callable[[str], Any], max_size: int = 1 << 18) -> None:
        super().__init__()
        self.fn, self.max_size = fn, max_size

    def __missing__(self, key: str) -> Any:
        value = self[key] = self.fn(key)
        return value

    def map(self, keys: Iterable[str]) -> Iterator[Any]:
        if len(self) > self.max_size:
            self.clear()
        return map(self.__getitem__, keys)


# A word with one of these before or after it splits into the two, whatever the word: letters match no affix,
# infix or URL rule, so the rules reduce to what they do to "a," or "(a" (checked here rather than assumed).
_PLAIN_SUFFIXES = frozenset(c for c in ".,:;!?)]}\"”’»…" if _affix_tokens("a" + c) == ["a", c])
_PLAIN_PREFIXES = frozenset(c for c in "„\"“«([{" if _affix_tokens(c + "a") == [c, "a"])


def chunk_tokens(chunk: str) -> tuple[str, ...]:
    """The tokens of one whitespace-free chunk; a whitespace run is one token."""
    if chunk.isalpha() or chunk in SPECIALS or chunk.isspace():  # the common case: a plain word
        return (chunk,)
    head, last = chunk[:-1], chunk[-1]
    if last in _PLAIN_SUFFIXES and head.isalpha() and head not in _MERGE:  # "kota," "kota." skip the rules
        return head, last
    first, rest = chunk[0], chunk[1:]
    if first in _PLAIN_PREFIXES and rest.isalpha() and first not in _MERGE:
        return first, rest
    tokens = _affix_tokens(chunk)
    return tuple(_merge_specials(tokens) if len(tokens) > 1 else tokens)


_CHUNKS = Memo(chunk_tokens)  # whitespace runs go through it too: they come out whole, as one token
# Whitespace runs that make a space token: all but a single plain space (which only separates tokens).
_SPACE_TOKEN = re.compile(r"([^\S ]\s*| \s+)")


def split_words(text: str) -> list[str]:
    """The words (and punctuation tokens) of ``text`` as datatrove's ``split_into_words(text, "pl")`` gives them."""
    return list(chain.from_iterable(_CHUNKS.map(text.split())))


def tokenize(text: str) -> list[str]:
    """All of spaCy's tokens of ``text``, space tokens included: ``[t.text for t in spacy.blank("pl")(text)]``."""
    parts = _SPACE_TOKEN.split(text)  # text between space tokens (single spaces only), then a space token...
    if len(parts) == 1:
        return split_words(text) if text[:1] != " " else [" ", *split_words(text)]
    pieces = [" "] if text[:1] == " " and parts[0] else []  # one leading space is a token; so is a leading run
    pieces += parts[0].split() if parts[0] else [parts[1]]
    for i in range(1, len(parts), 2):
        if i > 1 or parts[0]:
            run = parts[i]  # a token keeps one plain space after it (spaCy's ``whitespace_``): the rest is a token
            pieces.append(run[1:] if run[0] == " " else run)
        pieces += parts[i + 1].split()
    return list(chain.from_iterable(_CHUNKS.map(pieces)))


class _LastDocument:
    """The last document split (text, words, tokens), by identity: steps see documents one at a time, so the
    heuristic filters and the metrics step ask for the same text in a row; a step that rewrites ``doc.text``
    makes a new object and gets a fresh split. One tuple, replaced whole: threads never see a torn entry."""

    entry: tuple[str | None, list[str] | None, list[str] | None] = (None, None, None)


def words_of(text: str) -> list[str]:
    """``split_words(text)``, remembered for the last text (callers must not modify the list)."""
    last, words, tokens = _LastDocument.entry
    if last is not text:
        tokens = None
    if last is not text or words is None:
        words = split_words(text) if tokens is None else list(filterfalse(str.isspace, tokens))
        _LastDocument.entry = (text, words, tokens)
    return words


def tokens_of(text: str) -> list[str]:
    """``tokenize(text)``, remembered for the last text (callers must not modify the list)."""
    last, words, tokens = _LastDocument.entry
    if last is not text or tokens is None:
        tokens = tokenize(text)
        _LastDocument.entry = (text, words if last is text else None, tokens)
    return tokens
