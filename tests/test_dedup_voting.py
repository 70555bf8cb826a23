"""Vote rules: all / any / majority truth tables, expression precedence, and the errors users see."""

import itertools

import numpy as np
import pytest

from gniazdo.dedup.voting import VoteRule
from gniazdo.errors import UserError

EXPERTS = ("minhash", "simhash", "cosine")


def _table():
    """All 8 verdict combinations of the three experts, one pair per combination."""
    rows = np.array(list(itertools.product([False, True], repeat=3)))
    return {name: rows[:, i] for i, name in enumerate(EXPERTS)}, rows


@pytest.mark.parametrize(
    "rule, expected",
    [
        ("all", lambda a, b, c: a and b and c),
        ("any", lambda a, b, c: a or b or c),
        ("majority", lambda a, b, c: (a and b) or (a and c) or (b and c)),
        ("MAJORITY", lambda a, b, c: int(a) + int(b) + int(c) >= 2),
    ],
)
def test_keyword_truth_tables(rule, expected):
    verdicts, rows = _table()
    got = VoteRule(rule, EXPERTS).evaluate(verdicts)
    assert got.dtype == bool
    assert got.tolist() == [bool(expected(*r)) for r in rows]


def test_keyword_rules_use_every_configured_expert():
    assert VoteRule("all", EXPERTS).experts == EXPERTS
    assert VoteRule("majority", EXPERTS).experts == EXPERTS


def test_majority_is_more_than_half():
    # Two experts: majority means both; four: at least three; one: that expert.
    two = VoteRule("majority", ["a", "b"])
    assert two.evaluate({"a": [1, 1, 0], "b": [1, 0, 0]}).tolist() == [True, False, False]
    four = VoteRule("majority", ["a", "b", "c", "d"])
    v = {"a": [1, 1, 1], "b": [1, 1, 0], "c": [1, 0, 0], "d": [0, 0, 0]}
    assert four.evaluate(v).tolist() == [True, False, False]
    assert VoteRule("majority", ["a"]).evaluate({"a": [True, False]}).tolist() == [True, False]


@pytest.mark.parametrize(
    "rule, expected",
    [
        ("minhash & (simhash | cosine)", lambda m, s, c: m and (s or c)),
        ("minhash & simhash | cosine", lambda m, s, c: (m and s) or c),  # & binds tighter than |
        ("cosine | minhash & simhash", lambda m, s, c: c or (m and s)),
        ("~minhash & simhash", lambda m, s, c: (not m) and s),  # ~ binds tighter than &
        ("!(minhash | simhash)", lambda m, s, c: not (m or s)),
        ("not minhash or simhash and cosine", lambda m, s, c: (not m) or (s and c)),
        ("minhash AND NOT cosine", lambda m, s, c: m and not c),
        ("~~cosine", lambda m, s, c: c),
        ("minhash && simhash || cosine", lambda m, s, c: (m and s) or c),
        ("  ( ( simhash ) )  ", lambda m, s, c: s),
    ],
)
def test_expressions_and_precedence(rule, expected):
    verdicts, rows = _table()
    got = VoteRule(rule, EXPERTS).evaluate(verdicts)
    assert got.tolist() == [bool(expected(*r)) for r in rows]


def test_experts_are_the_names_used_in_order():
    assert VoteRule("cosine | minhash & cosine", EXPERTS).experts == ("cosine", "minhash")
    # Only the names used are needed to evaluate.
    assert VoteRule("cosine", EXPERTS).evaluate({"cosine": np.array([True, False])}).tolist() == [True, False]


def test_empty_pair_arrays():
    empty = {n: np.zeros(0, dtype=bool) for n in EXPERTS}
    assert VoteRule("majority", EXPERTS).evaluate(empty).shape == (0,)
    assert VoteRule("minhash & ~cosine", EXPERTS).evaluate(empty).shape == (0,)


def test_unknown_name_lists_valid_experts():
    with pytest.raises(UserError, match=r"unknown expert 'jaccard'.*minhash, simhash, cosine"):
        VoteRule("minhash & jaccard", EXPERTS)


@pytest.mark.parametrize(
    "rule, position",
    [
        ("minhash &", 10),  # ends after an operator
        ("minhash & | simhash", 11),
        ("(minhash | simhash", 19),  # unclosed parenthesis
        ("minhash simhash", 9),  # two names with no operator
        ("minhash)", 8),
        ("minhash + simhash", 9),  # not an operator
        ("()", 2),
    ],
)
def test_malformed_rules_name_the_position(rule, position):
    with pytest.raises(UserError, match=rf"position {position}\b"):
        VoteRule(rule, EXPERTS)


def test_empty_rule_and_no_experts_are_user_errors():
    with pytest.raises(UserError, match="empty"):
        VoteRule("   ", EXPERTS)
    with pytest.raises(UserError, match="at least one"):
        VoteRule("all", [])


def test_evaluate_checks_verdicts():
    rule = VoteRule("minhash & cosine", EXPERTS)
    with pytest.raises(ValueError, match="cosine"):
        rule.evaluate({"minhash": np.array([True])})
    with pytest.raises(ValueError, match="shape"):
        rule.evaluate({"minhash": np.array([True]), "cosine": np.array([True, False])})


def test_no_eval_of_python():
    with pytest.raises(UserError):
        VoteRule("__import__('os').system('true')", EXPERTS)
