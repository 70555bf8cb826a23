from __future__ import annotations

import pytest

from gniazdo.data.quality import Quality, grade_document, _default_signals
from gniazdo.document import Document
from gniazdo.errors import UserError

# A document in the middle of every HIGH band.
HIGH = {"words": 100, "camel_case": 0, "punctuations": 20, "symbols": 0, "oovs": 2, "pos_x": 0,
        "lexical_density": 0.5, "gunning_fog": 8.0, "avg_sentence_length": 15.0}


def grade(**changes):
    return grade_document({**HIGH, **changes}, _default_signals())[0]


def test_all_high_is_high_and_group_rule():
    assert grade() == "HIGH"
    # one readability signal only MEDIUM: format and text groups are still all HIGH → HIGH
    assert grade(gunning_fog=12.0) == "HIGH"
    # one MEDIUM signal in every group → MEDIUM
    assert grade(camel_case=5, oovs=10, gunning_fog=12.0) == "MEDIUM"


@pytest.mark.parametrize("changes", [
    {"camel_case": 11}, {"punctuations": 41}, {"punctuations": 9}, {"symbols": 2}, {"oovs": 16}, {"pos_x": 8},
    {"lexical_density": 0.81}, {"lexical_density": 0.19}, {"gunning_fog": 14.5}, {"avg_sentence_length": 36},
    {"avg_sentence_length": 4.9}])
def test_any_low_signal_is_low(changes):
    assert grade(**changes) == "LOW"


def test_boundaries_follow_the_table():
    # punctuation ratio 0.35 is still HIGH (≤), 0.36 is MEDIUM, exactly 0.1 is neither LOW nor HIGH
    assert grade_document({**HIGH, "punctuations": 35}, _default_signals())[1]["punctuation_ratio"] == "HIGH"
    assert grade_document({**HIGH, "punctuations": 36}, _default_signals())[1]["punctuation_ratio"] == "MEDIUM"
    assert grade_document({**HIGH, "punctuations": 10}, _default_signals())[1]["punctuation_ratio"] == "MEDIUM"
    assert grade_document({**HIGH, "camel_case": 10}, _default_signals())[1]["camel_case"] == "MEDIUM"
    assert grade_document({**HIGH, "symbols": 1}, _default_signals())[1]["symbol_ratio"] == "MEDIUM"


def test_zero_words_or_bad_metric_is_low():
    assert grade(words=0) == "LOW"
    assert grade(gunning_fog=float("nan")) == "LOW"
    assert grade(oovs="many") == "LOW"


def test_step_annotates_drops_and_thresholds_are_config():
    docs = [Document("h", "x", dict(HIGH)), Document("l", "y", {**HIGH, "camel_case": 50})]
    step = Quality(explain=True)
    out = list(step.run(iter(docs)))
    assert [d.meta["quality"] for d in out] == ["HIGH", "LOW"]
    assert out[1].meta["quality_signals"]["camel_case"] == "LOW"
    dropped = []
    step = Quality(drop=["LOW"])
    step.exclude = lambda d, r: dropped.append((d.id, r))
    assert [d.id for d in step.run(iter(docs))] == ["h"] and dropped == [("l", "quality_low")]
    lenient = Quality(signals={"camel_case": {"low_above": 100}})
    assert lenient.params.signals["camel_case"].high_below == 3 and len(lenient.params.signals) == 8
    assert list(lenient.run(iter([Document("l", "y", {**HIGH, "camel_case": 50})])))[0].meta["quality"] == "HIGH"


def test_missing_metrics_is_a_clear_error():
    with pytest.raises(UserError, match="put the 'metrics' step before 'quality'"):
        list(Quality().run(iter([Document("a", "tekst", {})])))
    with pytest.raises(UserError, match="unknown signal"):
        Quality(signals={"fog": {"group": "text"}})


def test_yaml_override_of_one_bound_and_removal(tmp_path):
    from gniazdo.pipeline.config import build_steps

    (step,) = build_steps([{"step": "quality", "signals": {"gunning_fog": {"low_above": 16}, "symbol_ratio": None}}])
    assert step.params.signals["gunning_fog"].low_above == 16 and step.params.signals["gunning_fog"].high_below == 10
    assert "symbol_ratio" not in step.params.signals and len(step.params.signals) == 7
    with pytest.raises(UserError, match="steps.0.signals.gunning_fog.low_abov"):
        build_steps([{"step": "quality", "signals": {"gunning_fog": {"low_abov": 16}}}])
