"""Reading judges' verdicts, the Polish judge prompts and the built-in MT-Bench-PL questions."""

from __future__ import annotations

import json

import pytest

from gniazdo.errors import UserError
from gniazdo.eval.judge import (BUILTIN_QUESTIONS, CATEGORIES, combine_verdicts, load_questions, parse_rating,
                                parse_verdict)
from gniazdo.eval.judge.mtbench import NEED_REFERENCE, Question, _values
from gniazdo.eval.judge.prompts import JUDGE_PROMPTS_PL, REASK_RATING, load_judge_prompts, prompt_name


@pytest.mark.parametrize("text, expected", [
    ("Odpowiedź jest dobra.\n\nRating: [[7]]", 7.0),
    ("Ocena: [[7.5]]", 7.5),
    ("Ocena: [[7,5]]", 7.5),
    ("Ostatecznie [7]", 7.0),
    ("Rating: [[10]]", 10.0),
    ("Ocena: [[ 8/10 ]]", 8.0),
    ("Wg formatu \"[[ocena]]\", np. \"Rating: [[5]]\"... moja ocena: [[6]]", 6.0),  # the last one wins
    ("Por. [1] i [2]. Rating: [[9]]", 9.0),  # double brackets before single ones
    ("[[15]] to za dużo, ale [[4]]", 4.0),  # out of 1-10 ignored
])
def test_parse_rating_formats(text, expected):
    assert parse_rating(text) == expected


@pytest.mark.parametrize("text", ["", None, "Nie potrafię ocenić tej odpowiedzi.", "Rating: [[dziesięć]]",
                                  "[[0]]", "ocena 7/10", "{{7}}"])
def test_parse_rating_garbage_is_none(text):
    assert parse_rating(text) is None


def test_parse_verdict():
    assert parse_verdict("Lepszy jest A. [[A]]") == "A"
    assert parse_verdict("[[ B ]]") == "B"
    assert parse_verdict("Remis: [[C]]") == "tie"
    assert parse_verdict("Format \"[[A]]\"... werdykt: [[B]]") == "B"
    assert parse_verdict("A jest lepszy") is None and parse_verdict(None) is None


def test_pairwise_swap_logic():
    # first judgment shows model 1 as A, the swapped one shows model 2 as A
    assert combine_verdicts("A", "B") == "model_1"   # model 1 wins in both seats
    assert combine_verdicts("B", "A") == "model_2"
    assert combine_verdicts("A", "A") == "tie"       # always the first seat: position bias → tie
    assert combine_verdicts("B", "B") == "tie"
    assert combine_verdicts("A", "tie") == "tie"
    assert combine_verdicts("tie", "tie") == "tie"
    assert combine_verdicts(None, "A") == "error" and combine_verdicts("B", None) == "error"


def test_builtin_questions_cover_the_categories_with_references():
    questions = load_questions()
    assert len(questions) >= 16
    assert {q.category for q in questions} == set(CATEGORIES)
    for cat in CATEGORIES:
        assert sum(q.category == cat for q in questions) >= 2
    for q in questions:
        assert len(q.turns) == 2 and all(t.strip() for t in q.turns)
        if q.category in NEED_REFERENCE:
            assert q.reference is not None and len(q.reference) == 2


def test_every_builtin_prompt_formats_with_its_fields():
    q = Question(1, "math", ["P1", "P2"], ["R1", "R2"])
    for kind in ("single", "pairwise"):
        for ref in (False, True):
            for turn in (1, 2):
                name = prompt_name(kind, ref, turn)
                answers = {"": ["x1", "x2"]} if kind == "single" else {"a": ["a1", "a2"], "b": ["b1", "b2"]}
                q.category = "math" if ref else "writing"
                text = JUDGE_PROMPTS_PL[name]["prompt_template"].format(**_values(q, turn, answers))
                assert "P1" in text and ("P2" in text) == (turn == 2)
                assert ("R1" in text) == ref
                fmt = JUDGE_PROMPTS_PL[name]["system_prompt"] + text
                assert ("[[ocena]]" in fmt) == (kind == "single") and ("[[C]]" in fmt) == (kind == "pairwise")
    assert "Rating: [[liczba]]" in REASK_RATING


def test_questions_in_fastchat_format_and_bad_files(tmp_path):
    path = tmp_path / "question.jsonl"
    rows = [{"question_id": 81, "category": "writing", "turns": ["a", "b"]},
            {"question_id": 111, "category": "math", "turns": ["c", "d"], "reference": ["3", "4"], "extra": 1}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    qs = load_questions(path)
    assert [q.question_id for q in qs] == [81, 111] and qs[1].reference == ["3", "4"]
    path.write_text(json.dumps({"question_id": 1, "category": "x", "turns": "a"}) + "\n")
    with pytest.raises(UserError, match="turns must be"):
        load_questions(path)
    with pytest.raises(UserError, match="not found"):
        load_questions(tmp_path / "nope.jsonl")
    assert BUILTIN_QUESTIONS.is_file()


def test_judge_prompts_file_replaces_by_name(tmp_path):
    path = tmp_path / "judge_prompts.jsonl"
    mine = {"name": "single-v1", "type": "single", "system_prompt": "S", "prompt_template": "{question} {answer}",
            "output_format": "[[rating]]"}
    path.write_text(json.dumps(mine) + "\n")
    prompts = load_judge_prompts(path)
    assert prompts["single-v1"]["system_prompt"] == "S" and prompts["pair-v2"] is JUDGE_PROMPTS_PL["pair-v2"]
    path.write_text(json.dumps({"name": "x"}) + "\n")
    with pytest.raises(UserError, match="missing"):
        load_judge_prompts(path)


def test_answer_files_match_ids_as_text(tmp_path):
    from gniazdo.eval.judge.mtbench import read_answer_file, write_answer_file

    path = tmp_path / "m.jsonl"
    path.write_text(json.dumps({"question_id": "81", "choices": [{"index": 0, "turns": ["a", "b"]}]}) + "\n")
    assert read_answer_file(path) == {"81": ["a", "b"]}
    write_answer_file(path, "m", [Question(81, "writing", ["q1", "q2"])], {"81": ["x", "y"]})
    record = json.loads(path.read_text())
    assert record["question_id"] == 81 and record["choices"][0]["turns"] == ["x", "y"] and record["model_id"] == "m"
    path.write_text('{"question_id": 1}\n')
    with pytest.raises(UserError, match="choices"):
        read_answer_file(path)
