"""The leaderboard's normalisation and baselines, against values worked out by hand."""

from __future__ import annotations

import pytest

from gniazdo.eval.scores import (GIVEN_BASELINES, SUITES, TASKS, baseline_from_labels, known_baseline, leaderboard,
                                 majority_baseline, normalize, positive_f1_baseline)


def test_normalize_by_hand():
    # (45 - 41.6) / (100 - 41.6) * 100 = 3.4 / 58.4 * 100
    assert normalize(45.0, 41.6) == pytest.approx(5.821917808219178)
    # 8TAGS: (60 - 14.3) / 85.7 * 100
    assert normalize(60.0, 14.3) == pytest.approx(53.32555425904318)
    assert normalize(41.9, 41.9) == 0.0 and normalize(100.0, 28.9) == pytest.approx(100.0)
    assert normalize(20.0, 36.8) == pytest.approx(-26.582278481012658)  # below the baseline: negative
    with pytest.raises(ValueError):
        normalize(50.0, 100.0)


def test_given_baselines_are_the_leaderboards():
    assert GIVEN_BASELINES == {"polemo2-in": 41.6, "polemo2-out": 36.8, "8tags": 14.3, "dyk": 28.9, "ppc": 41.9}
    assert known_baseline("polemo2_in") == known_baseline("polemo2_in_multiple_choice") == 41.6
    assert known_baseline("polish_poquad_open_book") == 0.0
    assert known_baseline("polish_klej_ner_multiple_choice") is None  # computed from the data


def test_baselines_from_labels_by_hand():
    assert majority_baseline([0, 1, 1, 2]) == 50.0
    assert majority_baseline(["B", "B", "C"]) == pytest.approx(200 / 3)
    # 1 positive in 5: always "yes" has precision 0.2, recall 1, F1 = 2 * 0.2 / 1.2 = 1/3
    assert positive_f1_baseline([1, 0, 0, 0, 0], positive=1) == pytest.approx(100 / 3)
    assert positive_f1_baseline(["C", "B", "B", "B"], positive="C") == pytest.approx(40.0)  # 2*.25/1.25
    # DYK's published 28.9 is this number for a test set with ~16.9% correct answers
    assert positive_f1_baseline([1] * 169 + [0] * 831, positive=1) == pytest.approx(28.9, abs=0.05)
    assert baseline_from_labels(TASKS["polish_psc_regex"], ["B", "C", "C", "C"]) == pytest.approx(40.0)
    assert baseline_from_labels(TASKS["polish_klej_ner_regex"], list("AAACB")) == 60.0
    assert baseline_from_labels(TASKS["polish_polqa_open_book"], [["x"]]) == 0.0
    with pytest.raises(ValueError):
        majority_baseline([])


def test_leaderboard_rows_and_averages_by_hand():
    results = {
        "polemo2_in_multiple_choice": {"acc,none": 0.5, "acc_norm,none": 0.4},
        "polish_dyk_multiple_choice": {"acc,none": 0.9, "f1,none": 0.6443},  # F1 column, not acc
        "polemo2_in": {"exact_match,score-first": 0.416},
        "polish_poquad_open_book": {"exact_match,none": 0.1, "levenshtein,none": 0.3},
        "some_other_task": {"acc,none": 1.0},
    }
    baselines = {"polemo2_in_multiple_choice": 41.6, "polish_dyk_multiple_choice": 28.9, "polemo2_in": 41.6,
                 "polish_poquad_open_book": 0.0}
    board = leaderboard(results, baselines)
    rows = board["tasks"]
    assert list(rows) == ["polemo2_in_multiple_choice", "polish_dyk_multiple_choice", "polemo2_in",
                          "polish_poquad_open_book"]  # leaderboard order, unknown tasks left out
    mc_polemo = (50 - 41.6) / 58.4 * 100  # 14.3836
    mc_dyk = (64.43 - 28.9) / 71.1 * 100  # 49.9719
    assert rows["polemo2_in_multiple_choice"]["normalized"] == pytest.approx(mc_polemo)
    assert rows["polemo2_in_multiple_choice"]["acc_norm"] == pytest.approx(40.0)
    assert rows["polish_dyk_multiple_choice"]["metric"] == "f1"
    assert rows["polish_dyk_multiple_choice"]["normalized"] == pytest.approx(mc_dyk)
    assert rows["polemo2_in"]["normalized"] == pytest.approx(0.0)
    assert rows["polish_poquad_open_book"]["value"] == pytest.approx(30.0)  # levenshtein is the column
    assert board["average_mc"] == pytest.approx((mc_polemo + mc_dyk) / 2)
    assert board["average_gen"] == pytest.approx(15.0)
    assert board["average"] == pytest.approx((mc_polemo + mc_dyk + 0.0 + 30.0) / 4)


def test_leaderboard_skips_tasks_without_metric_or_baseline():
    board = leaderboard({"polemo2_in": {"acc,none": 0.5}, "polish_ppc_regex": {"exact_match,score-first": 0.5}}, {})
    assert board["tasks"] == {} and board["average"] is None and board["average_mc"] is None


def test_task_table():
    assert len(SUITES["pl-mc"]) == 10 and len(SUITES["pl-gen"]) == 12
    for spec in TASKS.values():
        assert spec.kind in ("mc", "gen")
        if spec.metric.startswith("f1"):
            assert spec.positive is not None
        if spec.kind == "mc":
            assert spec.metric in ("acc,none", "f1,none")
    assert {t.key for t in TASKS.values() if t.metric.startswith("f1")} == {"dyk", "psc", "cbd"}
