"""Reading a judge's verdict out of its free text.

A grade is ``[[7]]`` / ``[[7.5]]`` / ``[[7,5]]`` (``Rating: [[10]]``, ``Ocena: [[7/10]]``), falling back to
single brackets ``[7]`` as FastChat does; the last such number in the text wins (judges grade at the end, and
the first bracketed number may be a quote of the instructions). Grades outside 1–10 do not count. A pairwise
verdict is the last ``[[A]]``, ``[[B]]`` or ``[[C]]`` (tie). Nothing found → None, and the caller re-asks once.
"""

from __future__ import annotations

import re

_NUMBER = r"\s*(\d+(?:[.,]\d+)?)\s*(?:/\s*10\s*)?"
_DOUBLE = re.compile(r"\[\[" + _NUMBER + r"\]\]")
_SINGLE = re.compile(r"\[" + _NUMBER + r"\]")
_VERDICT = re.compile(r"\[\[\s*([ABC])\s*\]\]")


def parse_rating(text: str | None, low: float = 1.0, high: float = 10.0) -> float | None:
    """The judge's 1–10 grade, or None when the text holds no parseable one."""
    if not text:
        return None
    for pattern in (_DOUBLE, _SINGLE):
        found = [float(m.replace(",", ".")) for m in pattern.findall(text)]
        found = [v for v in found if low <= v <= high]
        if found:
            return found[-1]
    return None


def parse_verdict(text: str | None) -> str | None:
    """``"A"``, ``"B"`` or ``"tie"`` from a pairwise judgment, or None."""
    found = _VERDICT.findall(text or "")
    if not found:
        return None
    return {"A": "A", "B": "B", "C": "tie"}[found[-1]]


def to_model(verdict: str | None, model_1_is_a: bool) -> str:
    """A verdict about seats (``A``, ``B``, ``tie``, None) → about models (``model_1``, ``model_2``, ``tie``,
    ``error``), given which model sat in seat A."""
    if verdict is None:
        return "error"
    if verdict == "tie":
        return "tie"
    return "model_1" if (verdict == "A") == model_1_is_a else "model_2"


def combine_verdicts(first: str | None, swapped: str | None) -> str:
    """Two judgments of one pair, the second with the answers' positions swapped → ``model_1``, ``model_2``,
    ``tie`` or ``error``. ``first`` shows model 1 as A; ``swapped`` shows model 2 as A. The same winner both
    times wins; any disagreement (position bias) is a tie; an unparsed judgment makes the pair an error."""
    one, two = to_model(first, True), to_model(swapped, False)
    if "error" in (one, two):
        return "error"
    return one if one == two else "tie"
