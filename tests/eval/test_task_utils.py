"""The functions the task YAMLs call: lenient QA matching, binary F1 pairs, CBD's two schemas."""

from __future__ import annotations

import importlib.util

import pytest

from gniazdo.eval.tasks import TASKS_DIR


@pytest.fixture(scope="module")
def utils():
    spec = importlib.util.spec_from_file_location("gniazdo_eval_task_utils", TASKS_DIR / "utils.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_edit_distance(utils):
    assert utils.edit_distance("kitten", "sitting") == 3
    assert utils.edit_distance("", "abc") == 3 and utils.edit_distance("Toruń", "Toruń") == 0
    assert utils.edit_distance("w Toruniu", "Toruniu") == 2


def test_lenient_match_text(utils):
    # distance < len(gold) / 2, case-insensitive, leading space and a closing period ignored
    assert utils.levenshtein([" W Toruniu."], [" w Toruniu"]) == 1
    assert utils.levenshtein([" Toruniu"], [" w Toruniu"]) == 1  # distance 2 < 10 / 2
    assert utils.levenshtein([" w Gdańsku"], [" w Toruniu"]) == 0  # distance 7
    assert utils.levenshtein([" nie wiem</s>"], [" bez odpowiedzi"]) == 0
    assert utils.levenshtein([" bez odpowiedzi"], [" bez odpowiedzi"]) == 1


def test_lenient_match_numbers_must_be_equal(utils):
    assert utils.levenshtein([" w 1473 roku"], [" 1473"]) == 1  # the number decides, not the distance
    assert utils.levenshtein([" 1474"], [" 1473"]) == 0  # distance 1 would pass as text; numbers must match
    assert utils.levenshtein([" 2,5 km"], [" 2.5 km"]) == 1
    assert utils.levenshtein([" dwa"], [" 2"]) == 0
    assert utils.get_number("rok 1945,") == "1945" and utils.get_number("brak") is None


def test_levenshtein_accepts_any_gold(utils):
    assert utils.levenshtein(["Praga"], ["Brno", "Praga"]) == 1


def test_binary_f1_pairs_are_gold_then_prediction(utils):
    assert utils.f1_dyk(["C"], ["B"]) == {"f1": (0, 1)}
    assert utils.f1_dyk(["[invalid]"], ["C"]) == {"f1": (1, 0)}
    assert utils.f1_psc(["B"], ["B"]) == {"f1": (1, 1)}
    assert utils.f1_cbd(["-1"], ["1"]) == {"f1": (1, 0)}


def test_poquad_target(utils):
    assert utils.poquad_target({"answers": {"text": ["1473", "w 1473"]}}) == " 1473"
    assert utils.poquad_target({"answers": {"text": []}}) == " bez odpowiedzi"


def test_cbd_reads_both_schemas(utils):
    assert utils._cbd_doc({"TEXT": "a", "GENERAL TAG": "1"}) == {"text": "a", "label": 1}
    assert utils._cbd_doc({"sentence": "b", "target": 0}) == {"text": "b", "label": 0}


def test_polqa_answers_parsed(utils):
    assert utils._polqa_answers({"answers": "['1410', 'w 1410 roku']"}) == {"answers": ["1410", "w 1410 roku"]}
    assert utils._polqa_answers({"answers": ["x"]}) == {"answers": ["x"]}
