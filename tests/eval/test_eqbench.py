"""EQ-Bench-PL scoring: the v2 formula against hand values, robust parsing, summaries and the CLI."""

from __future__ import annotations

import json

import pytest

from gniazdo.cli import main
from gniazdo.errors import UserError
from gniazdo.eval.judge.eqbench import (item_score, load_answers, load_items, parse_emotions, scaled_difference,
                                        score_answer, split_passes, summarize)

REF = {"Złość": 5.0, "Wyrzuty sumienia": 0.0, "Ulga": 3.0, "Zażenowanie": 8.0}


@pytest.mark.parametrize("d, expected", [
    (0, 0.0),
    (1, 0.17288046),   # 6.5 / (1 + e^3.6) = 6.5 / 37.598234
    (4, 3.25),         # the middle of the sigmoid: 6.5 / 2
    (5, 4.99541109),   # 6.5 / (1 + e^-1.2) = 6.5 / 1.3011942
    (6, 6.0),          # linear beyond 5
    (10, 10.0),
])
def test_scaled_difference_hand_values(d, expected):
    assert scaled_difference(d) == pytest.approx(expected, abs=1e-7)
    assert scaled_difference(-d) == pytest.approx(expected, abs=1e-7)


def test_item_score_hand_value():
    answer = {"Złość": 5, "Wyrzuty sumienia": 1, "Ulga": 7, "Zażenowanie": 2}  # d = 0, 1, 4, 6
    # Σs = 0 + 0.1728805 + 3.25 + 6 = 9.4228805; (10 − 0.7477 · 9.4228805) · 10 = 29.545123
    assert item_score(REF, answer) == pytest.approx(29.545123, abs=1e-5)
    assert item_score(REF, dict(REF)) == 100.0


POLISH = """Pierwsze oceny:
Złość: 6
Wyrzuty sumienia: 0
Ulga: 2
Zażenowanie: 7

Weryfikacja: Złość: chyba za wysoko, postać raczej się wstydzi. Zażenowanie: 10 byłoby przesadą.

Zmienione oceny:
Złość: 5
Wyrzuty sumienia: 0
Ulga: 3
Zażenowanie: 8

[Koniec odpowiedzi]"""


def test_parse_polish_first_pass_and_revised():
    s = score_answer(POLISH, REF)
    assert s["first_pass_answers"] == {"Złość": 6, "Wyrzuty sumienia": 0, "Ulga": 2, "Zażenowanie": 7}
    assert s["revised_answers"] == REF and s["revised"] == 100.0
    expected = (10 - 0.7477 * 3 * scaled_difference(1)) * 10
    assert s["first_pass"] == pytest.approx(expected)


def test_parse_variants():
    messy = ("Oto moje oceny.\n**PIERWSZE OCENY:**\n- **zlosc**: 4\n- wyrzuty   sumienia = 1\n* Ulga – 2/10\n"
             "1. Zazenowanie: **7,5**\n\n### Zmienione oceny\nZŁOŚĆ: 5\nWyrzuty sumienia: 0\nUlga: 3\nZażenowanie: 8")
    s = score_answer(messy, REF)
    assert s["first_pass_answers"] == {"Złość": 4, "Wyrzuty sumienia": 1, "Ulga": 2, "Zażenowanie": 7.5}
    assert s["revised_answers"] == REF
    english = "First pass scores:\nZłość: 1\nWyrzuty sumienia: 1\nUlga: 1\nZażenowanie: 1\nRevised scores:\n" + \
              "Złość: 5\nWyrzuty sumienia: 0\nUlga: 3\nZażenowanie: 8"
    assert score_answer(english, REF)["revised"] == 100.0
    # no headings at all: one pass, the revised one missing
    plain = "Złość: 5, Wyrzuty sumienia: 0, Ulga: 3, Zażenowanie: 8"
    s = score_answer(plain, REF)
    assert s["first_pass"] == 100.0 and s["revised"] is None


@pytest.mark.parametrize("text", [
    "",
    "Nie jestem w stanie ocenić emocji tej postaci.",
    "Złość: 5\nWyrzuty sumienia: 0\nUlga: 3",                 # one emotion missing
    "Złość: 5\nWyrzuty sumienia: 0\nUlga: 3\nZażenowanie: 11",  # out of 0-10
    "Złość: wysoka\nWyrzuty sumienia: niskie\nUlga: 3\nZażenowanie: 8",
    "Złośćliwość: 5\nWyrzuty sumienia: 0\nUlga: 3\nZażenowanie: 8",  # a longer word is not the emotion
])
def test_garbage_does_not_parse(text):
    assert parse_emotions(text, list(REF)) is None


def test_split_passes():
    first, revised = split_passes(POLISH)
    assert "zmienione" not in first and first.strip().startswith("zlosc: 6")
    assert revised.strip().startswith("zlosc: 5")


def test_summary_counts_unparsed_as_zero():
    scored = [score_answer(POLISH, REF), score_answer("bzdury", REF), score_answer("Złość: 5, Wyrzuty sumienia: 0, "
                                                                                   "Ulga: 3, Zażenowanie: 8", REF)]
    s = summarize(scored)
    first = scored[0]["first_pass"]
    assert s["items"] == 3 and s["first_pass_unparsed"] == 1 and s["revised_unparsed"] == 2
    assert s["first_pass"] == pytest.approx((first + 0 + 100) / 3)
    assert s["revised"] == pytest.approx(100 / 3)
    assert s["average"] == pytest.approx((s["first_pass"] + s["revised"]) / 2)


def _official_items(path):
    items = {"1": {"prompt": "Dialog...\nCo czuje Ala?",
                   "reference_answer": {"emotion1": "Złość", "emotion2": "Wyrzuty sumienia", "emotion3": "Ulga",
                                        "emotion4": "Zażenowanie", "emotion1_score": 1, "emotion2_score": 1,
                                        "emotion3_score": 1, "emotion4_score": 7},
                   "reference_answer_fullscale": {"emotion1": "Złość", "emotion2": "Wyrzuty sumienia",
                                                  "emotion3": "Ulga", "emotion4": "Zażenowanie",
                                                  "emotion1_score": 5, "emotion2_score": 0,
                                                  "emotion3_score": 3, "emotion4_score": 8}},
             "2": {"prompt": "Inny dialog", "reference_answer_fullscale": {
                 "emotion1": "Smutek", "emotion2": "Radość", "emotion3": "Strach", "emotion4": "Duma",
                 "emotion1_score": 2, "emotion2_score": 0, "emotion3_score": 0, "emotion4_score": 9}}}
    path.write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")
    return path


def test_load_items_official_json_and_jsonl(tmp_path):
    items = load_items(_official_items(tmp_path / "eq_pl.json"))
    assert [i["id"] for i in items] == ["1", "2"] and items[0]["reference"] == REF  # fullscale preferred
    jsonl = tmp_path / "items.jsonl"
    jsonl.write_text(json.dumps({"id": "a", "prompt": "p", "reference": REF}, ensure_ascii=False) + "\n")
    assert load_items(jsonl)[0]["reference"] == REF
    jsonl.write_text(json.dumps({"id": "a", "prompt": "p", "reference": {"Złość": 1}}) + "\n")
    with pytest.raises(UserError, match="four emotions"):
        load_items(jsonl)


def test_cli_with_answers_file(tmp_path, capsys):
    items = _official_items(tmp_path / "eq_pl.json")
    answers = tmp_path / "answers.jsonl"
    answers.write_text(json.dumps({"id": "1", "answer": POLISH}, ensure_ascii=False) + "\n"
                       + json.dumps({"id": "2", "answer": "Nie wiem."}) + "\n", encoding="utf-8")
    assert load_answers(answers)["2"] == "Nie wiem."
    out = tmp_path / "out"
    main(["judge", "eq-bench", "--items", str(items), "--answers", str(answers), "--out", str(out), "--no-progress"])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["items"] == 2 and summary["first_pass_unparsed"] == 1 and summary["revised_unparsed"] == 1
    assert summary["revised"] == pytest.approx(50.0)
    assert len((out / "scores.jsonl").read_text().splitlines()) == 2 and (out / "config.resolved.yaml").is_file()
    assert "revised 50.00" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main(["judge", "eq-bench", "--items", str(tmp_path / "nope.json"), "--answers", str(answers),
              "--out", str(out)])
    assert e.value.code == 2
