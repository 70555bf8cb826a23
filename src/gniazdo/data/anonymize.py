"""The ``anonymize`` step: replace Polish personal data with typed placeholders.

Types (``types``, default all): ``pesel``, ``nip``, ``regon``, ``iban`` (any country, and the Polish 26-digit
NRB without ``PL``), ``id_card`` (dowód osobisty), ``card`` (payment card), ``phone``, ``email``, ``ip`` (public
IPv4/IPv6 only). Every identifier is validated (checksums via python-stdnum, phones via phonenumbers,
addresses via ipaddress; see :mod:`gniazdo.data.pii_detectors`): a number that fails its check is left alone.

Each value becomes ``<PESEL>``, ``<NIP>``, ``<REGON>``, ``<IBAN>``, ``<ID_CARD>``, ``<CARD>``, ``<PHONE>``,
``<EMAIL>``, ``<IP>`` (``mode: placeholder``, the default), or with ``mode: pseudonym`` ``<EMAIL_1>``,
``<EMAIL_2>``, ... numbered per document in order of appearance, the same value (compared in canonical form,
so ``601-234-567`` and ``+48 601 234 567`` are one phone) keeping its number. ``placeholders`` overrides the
text per type (in pseudonym mode it must contain ``{n}``). Phones written without ``+CC`` are read as numbers
of ``phone_region`` (default ``PL``).

Overlaps: the longest valid match wins (an IBAN's digits are not also a card or a NIP); on the same span a
keyword just before it decides ("tel." → phone, "REGON" → regon), else the type priority
iban > pesel > nip > regon > id_card > card > ip > phone > email. Types left out of ``types`` are still
recognised among the digit types, so they shield their digits (a REGON is not replaced as a phone when only
phones are asked for), but are left in place.

Counts of replaced values per type go to ``meta.pii`` (e.g. ``{"pesel": 1, "email": 2}``); absent when none.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections import Counter
from typing import Iterator, Literal

import phonenumbers
from pydantic import Field, field_validator, model_validator

from gniazdo.config import Config
from gniazdo.data.pii_detectors import PII_TYPES, Span, find_all, priority
from gniazdo.document import Document
from gniazdo.pipeline.step import Step, register

PiiType = Literal["pesel", "nip", "regon", "iban", "id_card", "card", "phone", "email", "ip"]
# Types that compete for the same digits: detected together so overlaps resolve the same whatever is asked.
_DIGIT_TYPES = frozenset({"iban", "pesel", "nip", "regon", "id_card", "card", "phone"})

# Keywords that name the type of the number right after them; only used to break ties on one span.
_HINT = re.compile(
    r"(?P<pesel>pesel)|(?P<nip>\bnip\b|\bvat)|(?P<regon>regon)|(?P<iban>iban|rachun|kont[aou]?\b|\bnrb)"
    r"|(?P<id_card>dow[óo]d|legitym)|(?P<card>kart[aęy]\b|\bcard)"
    r"|(?P<phone>\btel\b|telefon|\bkom\b|komórk|\bfax|phone|\bsms|dzwo)",
    re.IGNORECASE,
)
_HINT_WINDOW = 40  # characters before the value searched for a keyword


class AnonymizeParams(Config):
    types: list[PiiType] = Field(default_factory=lambda: list(PII_TYPES), min_length=1)
    mode: Literal["placeholder", "pseudonym"] = "placeholder"
    placeholders: dict[PiiType, str] = {}
    phone_region: str = "PL"

    @field_validator("phone_region")
    @classmethod
    def _known_region(cls, region: str) -> str:
        if region.upper() not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"unknown phone region '{region}' (use an ISO 3166 code such as PL, DE)")
        return region.upper()

    @model_validator(mode="after")
    def _pseudonyms_numbered(self) -> "AnonymizeParams":
        if self.mode == "pseudonym":
            bad = [t for t, text in self.placeholders.items() if "{n}" not in text]
            if bad:
                raise ValueError(f"in pseudonym mode placeholders need '{{n}}' (the value's number): {bad}")
        return self


@register
class Anonymize(Step):
    """Replace validated Polish PII with typed placeholders or per-document pseudonyms; counts in meta.pii."""

    name = "anonymize"
    Params = AnonymizeParams

    def __init__(self, params: Config | None = None, **kwargs) -> None:
        super().__init__(params, **kwargs)
        p: AnonymizeParams = self.params
        self._replace = frozenset(p.types)
        self._detect = self._replace | _DIGIT_TYPES if self._replace & _DIGIT_TYPES else self._replace
        suffix = "_{n}>" if p.mode == "pseudonym" else ">"
        self._templates = {t: p.placeholders.get(t, "<" + t.upper() + suffix) for t in PII_TYPES}

    def run(self, docs: Iterator[Document]) -> Iterator[Document]:
        for doc in docs:
            doc.text, counts = self.anonymize(doc.text)
            if counts:
                doc.meta["pii"] = counts
            yield doc

    def anonymize(self, text: str) -> tuple[str, dict[str, int]]:
        """The text with its PII replaced, and the number of values replaced per type."""
        spans = [s for s in resolve(text, find_all(text, self._detect, self.params.phone_region))
                 if s.type in self._replace]
        if not spans:
            return text, {}
        numbers: dict[str, dict[str, int]] = {}  # type → canonical value → pseudonym number
        pieces, pos = [], 0
        for s in spans:
            seen = numbers.setdefault(s.type, {})
            n = seen.setdefault(s.key, len(seen) + 1)
            pieces += (text[pos:s.start], self._templates[s.type].replace("{n}", str(n)))
            pos = s.end
        pieces.append(text[pos:])
        counts = Counter(s.type for s in spans)
        return "".join(pieces), {t: counts[t] for t in PII_TYPES if t in counts}


def resolve(text: str, spans: list[Span]) -> list[Span]:
    """Non-overlapping spans in text order: one type per span, then longest first, type priority on ties."""
    chosen = [_one_type(text, group) for group in _group_by_span(spans)]
    chosen.sort(key=lambda s: (s.start - s.end, priority(s.type), s.start))
    starts: list[int] = []
    kept: list[Span] = []
    for s in chosen:
        i = bisect_left(starts, s.start)
        if (i and kept[i - 1].end > s.start) or (i < len(kept) and kept[i].start < s.end):
            continue  # overlaps a longer or higher-priority span already kept
        starts.insert(i, s.start)
        kept.insert(i, s)
    return kept


def _group_by_span(spans: list[Span]) -> list[list[Span]]:
    groups: dict[tuple[int, int], list[Span]] = {}
    for s in spans:
        groups.setdefault((s.start, s.end), []).append(s)
    return list(groups.values())


def _one_type(text: str, group: list[Span]) -> Span:
    """Of several valid readings of one span (a 9-digit number that is both a REGON and a phone), the one
    named by the nearest keyword before it, else the highest priority."""
    best = min(group, key=lambda s: priority(s.type))
    if len(group) > 1:
        kinds = {s.type for s in group}
        named = [m.lastgroup for m in _HINT.finditer(text, max(0, best.start - _HINT_WINDOW), best.start)
                 if m.lastgroup in kinds]
        if named:
            return next(s for s in group if s.type == named[-1])
    return best
