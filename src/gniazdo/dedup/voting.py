"""Combine the experts' verdicts on candidate pairs into one decision: a vote rule.

A rule is written as a string:

* ``all`` — every configured expert says duplicate;
* ``any`` — at least one does;
* ``majority`` — more than half of the configured experts do (``> n/2``): for three experts that is "at
  least two agree", ``(E1 & E2) | (E1 & E3) | (E2 & E3)``; for two it equals ``all``, for one it is that
  expert's verdict;
* a boolean expression over expert names, e.g. ``minhash & (simhash | cosine)``. Operators, from the
  tightest binding: not (``~``, ``!``, ``not``), and (``&``, ``&&``, ``and``), or (``|``, ``||``, ``or``);
  parentheses group. The words ``and``/``or``/``not`` are case-insensitive.

The expression is parsed by a small recursive-descent parser (never ``eval``), every name is checked against
the configured experts, and mistakes are ``UserError``\\ s that name the bad name (with the valid ones) or the
character position of the syntax error. Evaluation is vectorised: each expert's verdicts are a bool array
over the same pairs, and the rule combines whole arrays at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping, Sequence, Union

import numpy as np

from gniazdo.errors import UserError

# --- the syntax tree ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Name:
    name: str


@dataclass(frozen=True)
class _Not:
    arg: "_Node"


@dataclass(frozen=True)
class _And:
    args: tuple["_Node", ...]


@dataclass(frozen=True)
class _Or:
    args: tuple["_Node", ...]


@dataclass(frozen=True)
class _AtLeast:
    """At least ``k`` of ``names`` say duplicate (``majority``); a count beats expanding all k-subsets."""

    k: int
    names: tuple[str, ...]


_Node = Union[_Name, _Not, _And, _Or, _AtLeast]

# --- tokens ------------------------------------------------------------------------------------------------

# Longer operators first so "&&" is one token, not two.
_TOKEN = re.compile(r"\s*(?:(?P<op>&&|\|\||[&|~!()])|(?P<name>[^\W\d]\w*)|(?P<bad>\S))")
_WORD_OPS = {"and": "&", "or": "|", "not": "~"}
_OP_NORMAL = {"&&": "&", "||": "|", "!": "~"}


@dataclass(frozen=True)
class _Tok:
    kind: str  # "op", "name" or "end"
    text: str  # normalised operator ("&", "|", "~", "(", ")") or the name
    pos: int  # 1-based character position in the rule, for error messages


def _tokenize(rule: str) -> list[_Tok]:
    toks: list[_Tok] = []
    pos = 0
    while pos < len(rule):
        m = _TOKEN.match(rule, pos)
        if m is None:  # only trailing whitespace is left
            break
        start = m.start(m.lastgroup) + 1
        if m.lastgroup == "bad":
            raise UserError(f"vote rule {rule!r}: unexpected character {m.group('bad')!r} at position {start}")
        if m.lastgroup == "op":
            op = m.group("op")
            toks.append(_Tok("op", _OP_NORMAL.get(op, op), start))
        else:
            word = m.group("name")
            if word.lower() in _WORD_OPS:
                toks.append(_Tok("op", _WORD_OPS[word.lower()], start))
            else:
                toks.append(_Tok("name", word, start))
        pos = m.end()
    toks.append(_Tok("end", "", len(rule) + 1))
    return toks


# --- the parser --------------------------------------------------------------------------------------------


class _Parser:
    """Recursive descent over:  or := and ('|' and)* ;  and := not ('&' not)* ;  not := '~' not | atom ;
    atom := NAME | '(' or ')'."""

    def __init__(self, rule: str) -> None:
        self.rule = rule
        self.toks = _tokenize(rule)
        self.i = 0

    def parse(self) -> _Node:
        node = self._or()
        tok = self._peek()
        if tok.kind != "end":
            self._fail(tok, "expected an operator or the end of the rule")
        return node

    def _peek(self) -> _Tok:
        return self.toks[self.i]

    def _take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def _is_op(self, op: str) -> bool:
        tok = self._peek()
        return tok.kind == "op" and tok.text == op

    def _fail(self, tok: _Tok, what: str) -> None:
        found = "the end of the rule" if tok.kind == "end" else repr(tok.text)
        raise UserError(f"malformed vote rule {self.rule!r}: {what} at position {tok.pos}, found {found}")

    def _or(self) -> _Node:
        args = [self._and()]
        while self._is_op("|"):
            self._take()
            args.append(self._and())
        return args[0] if len(args) == 1 else _Or(tuple(args))

    def _and(self) -> _Node:
        args = [self._not()]
        while self._is_op("&"):
            self._take()
            args.append(self._not())
        return args[0] if len(args) == 1 else _And(tuple(args))

    def _not(self) -> _Node:
        if self._is_op("~"):
            self._take()
            return _Not(self._not())
        return self._atom()

    def _atom(self) -> _Node:
        tok = self._take()
        if tok.kind == "name":
            return _Name(tok.text)
        if tok.kind == "op" and tok.text == "(":
            node = self._or()
            if not self._is_op(")"):
                self._fail(self._peek(), "expected ')'")
            self._take()
            return node
        self._fail(tok, "expected an expert name, '~' or '('")
        raise AssertionError("unreachable")


# --- the rule ----------------------------------------------------------------------------------------------


def _names(node: _Node) -> list[str]:
    """Expert names in order of first appearance (depth first, left to right)."""
    if isinstance(node, _Name):
        return [node.name]
    if isinstance(node, _Not):
        return _names(node.arg)
    if isinstance(node, _AtLeast):
        return list(node.names)
    return [n for arg in node.args for n in _names(arg)]


def _eval(node: _Node, verdicts: Mapping[str, np.ndarray]) -> np.ndarray:
    if isinstance(node, _Name):
        return verdicts[node.name]
    if isinstance(node, _Not):
        return ~_eval(node.arg, verdicts)
    if isinstance(node, _AtLeast):
        votes = np.zeros(np.shape(verdicts[node.names[0]]), dtype=np.int32)
        for name in node.names:
            votes += verdicts[name]
        return votes >= node.k
    parts = [_eval(arg, verdicts) for arg in node.args]
    return np.logical_and.reduce(parts) if isinstance(node, _And) else np.logical_or.reduce(parts)


class VoteRule:
    """A parsed vote rule over the configured experts: ``VoteRule("minhash & (simhash | cosine)", names)``."""

    def __init__(self, rule: str, experts: Sequence[str]) -> None:
        experts = tuple(experts)
        if not experts:
            raise UserError("a vote rule needs at least one configured expert")
        self.text = rule
        self.configured = experts
        self._tree = self._parse(rule.strip(), experts)
        names = _names(self._tree)
        unknown = [n for n in names if n not in experts]
        if unknown:
            raise UserError(
                f"vote rule {rule!r}: unknown expert {unknown[0]!r}; valid experts: {', '.join(experts)}"
                " (or the rules all / any / majority)"
            )
        # Unique, in order of first appearance: the experts whose verdicts evaluate() reads.
        self.experts: tuple[str, ...] = tuple(dict.fromkeys(names))

    @staticmethod
    def _parse(rule: str, experts: tuple[str, ...]) -> _Node:
        keyword = rule.lower()
        if keyword == "all":
            return _AtLeast(len(experts), experts)
        if keyword == "any":
            return _AtLeast(1, experts)
        if keyword == "majority":
            # Strictly more than half: the smallest k with k > n/2.
            return _AtLeast(len(experts) // 2 + 1, experts)
        if not rule:
            raise UserError("vote rule is empty: use all, any, majority or an expression over expert names")
        return _Parser(rule).parse()

    def evaluate(self, verdicts: Mapping[str, np.ndarray]) -> np.ndarray:
        """The combined verdict per pair; ``verdicts`` maps each expert in ``self.experts`` to a bool array."""
        missing = [n for n in self.experts if n not in verdicts]
        if missing:
            raise ValueError(f"vote rule {self.text!r} needs verdicts of {', '.join(missing)}")
        arrays = {n: np.asarray(verdicts[n], dtype=bool) for n in self.experts}
        shapes = {a.shape for a in arrays.values()}
        if len(shapes) != 1:
            raise ValueError(f"verdict arrays differ in shape: {sorted(shapes)}")
        return np.asarray(_eval(self._tree, arrays), dtype=bool)

    def __repr__(self) -> str:
        return f"VoteRule({self.text!r}, experts={self.configured!r})"
