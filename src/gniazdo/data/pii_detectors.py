"""Find Polish personal data in text: one precompiled candidate regex per type, then a real validator.

Each detector yields :class:`Span`s (start, end, type, canonical value) for candidates that pass their
validation; a candidate that fails its checksum is not personal data and is not reported. Overlaps between
types are resolved by the caller (:mod:`gniazdo.data.anonymize`).

Validators come from the field's libraries, not re-written here: ``python-stdnum`` (PESEL, NIP, REGON,
IBAN, Luhn), ``phonenumbers`` (``PhoneNumberMatcher`` with leniency VALID), ``ipaddress`` (public addresses).
The Polish ID card check digit is not in stdnum, so it is implemented here from its published definition.

Candidate regexes refuse to start or end inside a longer number (lookaround guards), so a 9-digit REGON is
never found inside an 11-digit PESEL, a decimal, or a 26-digit account number.
"""

from __future__ import annotations

import datetime
import ipaddress
import re
from functools import lru_cache
from typing import Callable, Iterator, NamedTuple

import phonenumbers
from phonenumbers import Leniency, PhoneNumberFormat, PhoneNumberMatcher
from stdnum import iban as stdnum_iban
from stdnum import luhn
from stdnum.pl import nip as stdnum_nip
from stdnum.pl import pesel as stdnum_pesel
from stdnum.pl import regon as stdnum_regon

# Detection and overlap priority: on two valid readings of the same span the earlier type wins.
PII_TYPES: tuple[str, ...] = ("iban", "pesel", "nip", "regon", "id_card", "card", "ip", "phone", "email")


class Span(NamedTuple):
    start: int
    end: int
    type: str
    key: str  # canonical form of the value: the same person's number written two ways gets one pseudonym


# Candidates never cut a longer number. A bare run of digits must not touch a word character, a dash or a
# decimal separator; a grouped one ("601 234 567") must not continue with another separated digit group either.
def _bare(pattern: str) -> str:
    return rf"(?<![\w-])(?<!\d[.,]){pattern}(?![\w-])(?![.,]\d)"


def _grouped(pattern: str) -> str:
    return rf"(?<![\w-])(?<!\d[ .,]){pattern}(?![\w-])(?![ .,]\d)"


_PESEL = re.compile(_bare(r"\d{11}"))
# NIP: bare, or grouped 3-3-2-2 / 3-2-2-3 with one separator used throughout; optional "PL" prefix.
_NIP = re.compile(_bare(r"(?:PL ?)?\d{10}") + "|"
                  + _grouped(r"(?:PL ?)?(?:\d{3}([- ])\d{3}\1\d{2}\1\d{2}|\d{3}([- ])\d{2}\2\d{2}\2\d{3})"))
_REGON = re.compile(_bare(r"\d{9}(?:\d{5})?"))
# IBAN: country code, check digits, BBAN of 11–30 characters, in groups of 4 or not.
_IBAN = re.compile(r"(?<![\w-])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?(?![\w-])")
# NRB: a Polish account number without the PL prefix (26 digits: bare, "dd dddd ...", or "dddd ... dd").
_NRB = re.compile(_bare(r"\d{26}") + "|" + _grouped(r"(?:\d{2} (?:\d{4} ){5}\d{4}|(?:\d{4} ){6}\d{2})"))
# The first letter is matched before the lookbehind so the scan skips quickly over text without capitals.
_ID_CARD = re.compile(r"[A-Z](?<![\w-][A-Z])[A-Z]{2} ?\d{6}(?![\w-])(?![.,]\d)")
# Payment cards: bare 13–19 digits, 4-4-4-1..4(-1..3), or Amex/Diners 4-6-5/4-6-4; one separator throughout.
_CARD = re.compile(_bare(r"\d{13,19}") + "|"
                   + _grouped(r"(?:\d{4}([ -])\d{4}\1\d{4}\1\d{1,4}(?:\1\d{1,3})?|\d{4}([ -])\d{6}\2\d{4,5})"))
# E-mail: found from each "@" outwards (a regex starting with the local part would try every word).
_EMAIL_LOCAL = re.compile(r"[\w%+-][\w.%+-]{0,63}$")
_EMAIL_DOMAIN = re.compile(r"[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}(?![\w-])")
_IPV4 = re.compile(r"\d(?<![\w.]\d)\d{0,2}\.(?:\d{1,3}\.){2}\d{1,3}(?!\w|\.\d)")
_IPV6 = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f]{1,4})?(?![\w:]|\.\w)")

# Cheap gates: most documents skip a detector without running its regex or parser.
# 9+ digits with single separators: every identifier but the ID card holds such a run (IBANs of all
# countries too), and most documents have none, so they skip six regex scans.
_LONG_NUMBER = re.compile(r"\d(?:[ -]?\d){8}")
_IPV4_GATE = re.compile(r"\.\d{1,3}\.\d{1,3}\.")  # the two middle octets; a literal "." makes it fast
_PHONE_GATE = re.compile(r"\d(?:[ ().\-/]{0,2}\d){6}")  # at least 7 digits, lightly separated
_ID_CARD_WEIGHTS = (7, 3, 1, 9, 7, 3, 1, 7, 3)  # 9 on the check digit: a valid number sums to 0 mod 10
_GLUED_BEFORE = re.compile(r"(?:\w|\d[-/.,]|[^\W\d][-_])$")  # "ST-1 304…", "20.500.12128", "img_5…"
_GLUED_AFTER = re.compile(r"\w|[-/.]\d")
_DIGIT_RUN = re.compile(r"\d+")
_MIN_PHONE_DIGITS = 7  # shorter "valid" numbers are pager/service codes, and match "64/2019" and the like
_CARD_FIRST_DIGITS = frozenset("23456")  # Mastercard/Amex/Diners/JCB/Visa/Maestro/Discover/UnionPay IINs


def _digits(s: str) -> str:
    return "".join(_DIGIT_RUN.findall(s))


def valid_pesel(value: str) -> bool:
    """stdnum checks the check digit and that the encoded date exists; a birth date in the future is
    not a PESEL either (months +40/+60 encode the 2100s/2200s)."""
    return stdnum_pesel.is_valid(value) and stdnum_pesel.get_birth_date(value) <= datetime.date.today()


def valid_id_card(value: str) -> bool:
    """Polish ID card (dowód osobisty): 3 letters (A=10 … Z=35) + 6 digits, the first digit is the check digit:
    sum(value × weight) with weights 7,3,1,[9],7,3,1,7,3 is divisible by 10."""
    value = value.replace(" ", "")
    values = [ord(c) - 55 for c in value[:3]] + [int(c) for c in value[3:]]
    return sum(v * w for v, w in zip(values, _ID_CARD_WEIGHTS)) % 10 == 0


def valid_card(digits: str) -> bool:
    return 13 <= len(digits) <= 19 and digits[0] in _CARD_FIRST_DIGITS and luhn.is_valid(digits)


def public_ip(value: str) -> str | None:
    """The address in canonical form when it is a valid, globally routable one (not private, loopback,
    reserved, link-local, shared or multicast), else None."""
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return None
    return ip.compressed if ip.is_global and not ip.is_multicast else None


def find_pesel(text: str) -> Iterator[Span]:
    for m in _PESEL.finditer(text):
        if valid_pesel(m.group()):
            yield Span(m.start(), m.end(), "pesel", m.group())


def find_nip(text: str) -> Iterator[Span]:
    for m in _NIP.finditer(text):
        # No tax office has code 000; 10-digit KRS numbers ("0000681163") would otherwise pass 1 in 11.
        if stdnum_nip.is_valid(m.group()) and not stdnum_nip.compact(m.group()).startswith("000"):
            yield Span(m.start(), m.end(), "nip", stdnum_nip.compact(m.group()))


def find_regon(text: str) -> Iterator[Span]:
    for m in _REGON.finditer(text):
        if stdnum_regon.is_valid(m.group()):
            yield Span(m.start(), m.end(), "regon", m.group())


def find_iban(text: str) -> Iterator[Span]:
    for m in _IBAN.finditer(text):
        span = _longest_valid_iban(text, m.start(), m.group())
        if span:
            yield span
    for m in _NRB.finditer(text):
        number = "PL" + _digits(m.group())
        if stdnum_iban.is_valid(number):
            yield Span(m.start(), m.end(), "iban", number)


def _longest_valid_iban(text: str, start: int, candidate: str) -> Span | None:
    """The regex may swallow a following word of 4 capitals or digits ("... 4633 PLN"): drop trailing
    groups one at a time until the number validates."""
    while len(candidate.replace(" ", "")) >= 15:
        if stdnum_iban.is_valid(candidate):
            return Span(start, start + len(candidate), "iban", stdnum_iban.compact(candidate))
        if " " not in candidate:
            return None
        candidate = candidate.rsplit(" ", 1)[0]
    return None


def find_id_card(text: str) -> Iterator[Span]:
    for m in _ID_CARD.finditer(text):
        if valid_id_card(m.group()):
            yield Span(m.start(), m.end(), "id_card", m.group().replace(" ", ""))


def find_card(text: str) -> Iterator[Span]:
    for m in _CARD.finditer(text):
        digits = _digits(m.group())
        if valid_card(digits):
            yield Span(m.start(), m.end(), "card", digits)


def find_email(text: str) -> Iterator[Span]:
    at = text.find("@")
    while at != -1:
        local = _EMAIL_LOCAL.search(text, max(0, at - 64), at)
        domain = local and _EMAIL_DOMAIN.match(text, at + 1)
        if domain:
            yield Span(local.start(), domain.end(), "email", text[local.start():domain.end()].lower())
        at = text.find("@", at + 1)


def find_ip(text: str) -> Iterator[Span]:
    if _IPV4_GATE.search(text):
        for m in _IPV4.finditer(text):
            key = public_ip(m.group())
            if key:
                yield Span(m.start(), m.end(), "ip", key)
    if "::" in text or text.count(":") >= 7:
        for m in _IPV6.finditer(text):
            key = public_ip(m.group())
            if key:
                yield Span(m.start(), m.end(), "ip", key)


def find_phone(text: str, region: str = "PL") -> Iterator[Span]:
    if not _PHONE_GATE.search(text):
        return
    for m in PhoneNumberMatcher(text, region, leniency=Leniency.VALID):
        if (len(phonenumbers.national_significant_number(m.number)) >= _MIN_PHONE_DIGITS
                and _written_like_phone(text, m.start, m.end)):
            yield Span(m.start, m.end, "phone", phonenumbers.format_number(m.number, PhoneNumberFormat.E164))


def _written_like_phone(text: str, start: int, end: int) -> bool:
    """Polish numbering ranges are dense, so VALID accepts many codes that are not phones: CPV codes
    ("45520000-8"), notice numbers ("45718-2014"), dates ("3.08.2005"), case numbers ("301/2014"), image ids
    ("shutterstock_129644894"). Reject what no one writes for a phone: glued to a word or a longer number,
    slashes, dotted national numbers, a one-digit last group, or a 5+ digit group followed by more digits."""
    if _GLUED_BEFORE.search(text, max(0, start - 2), start) or _GLUED_AFTER.match(text, end):
        return False
    raw = text[start:end]
    international = raw.lstrip("(").startswith(("+", "00"))
    groups = _DIGIT_RUN.findall(raw)
    if "/" in raw or len(groups[-1]) == 1 or ("." in raw and not international):
        return False
    return international or all(len(g) < 5 for g in groups[:-1])


# Detectors that need a digit in the text; e-mail and IPv6 have their own gates.
# Detectors that only run when the text holds a long run of digits.
_LONG_NUMBER_DETECTORS: dict[str, Callable[[str], Iterator[Span]]] = {
    "iban": find_iban, "pesel": find_pesel, "nip": find_nip, "regon": find_regon, "card": find_card,
}


def find_all(text: str, types: frozenset[str] | set[str], region: str = "PL") -> list[Span]:
    """Every validated candidate of the given types, overlapping ones included."""
    spans: list[Span] = []
    if _LONG_NUMBER.search(text):
        for kind, detect in _LONG_NUMBER_DETECTORS.items():
            if kind in types:
                spans += detect(text)
    if "id_card" in types:
        spans += find_id_card(text)
    if "phone" in types:
        spans += find_phone(text, region)
    if "ip" in types:
        spans += find_ip(text)
    if "email" in types:
        spans += find_email(text)
    return spans


@lru_cache(maxsize=None)
def priority(kind: str) -> int:
    return PII_TYPES.index(kind)
