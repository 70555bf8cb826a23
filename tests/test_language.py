from __future__ import annotations

import csv
import json

import pytest

from conftest import BENCHMARK_SM, SHARED, needs_shared, write_jsonl
from gniazdo.corpus import read_documents
from gniazdo.data.language import LanguageFilter, identify
from gniazdo.document import Document
from gniazdo.errors import UserError
from gniazdo.pipeline import PipelineConfig, run_pipeline
from gniazdo.pipeline.load import load_pipeline
from gniazdo.pipeline.step import step_class
from gniazdo.resources import sample_path

KLEJ = SHARED / "tasks" / "klej"


def sample(name: str) -> list[dict]:
    return [json.loads(line) for line in sample_path(name).read_text(encoding="utf-8").splitlines() if line]


def run(step: LanguageFilter, texts: list[str]) -> tuple[list[Document], dict[str, str]]:
    """(kept documents, {id: drop reason}); ids are the texts' positions."""
    dropped: dict[str, str] = {}
    step.exclude = lambda doc, reason: dropped.__setitem__(doc.id, reason)
    kept = list(step.run(Document(str(i), t) for i, t in enumerate(texts)))
    return kept, dropped


def test_sample_corpus_languages_match_ground_truth():
    docs, truth = sample("corpus.jsonl"), sample("ground_truth.jsonl")
    kept, dropped = run(LanguageFilter(filter=False), [d["text"] for d in docs])
    assert not dropped and len(kept) == len(docs)
    clean = [(k.meta["language"], t) for k, t in zip(kept, truth) if not t["junk"]]
    accuracy = sum(lang["lang"] == t["language"] for lang, t in clean) / len(clean)
    print(f"sample corpus, non-junk documents: {accuracy:.2%} of {len(clean)}")  # 100% with py3langid 0.4
    assert accuracy >= 0.95
    assert {t["language"] for _, t in clean} == {"pl", "en", "de"}
    assert all(0.0 <= k.meta["language"]["score"] <= 1.0 for k in kept)
    # the default filter drops every English and German document by its language, keeps the Polish ones
    kept, dropped = run(LanguageFilter(), [d["text"] for d in docs])
    for i, t in enumerate(truth):
        if t["language"] != "pl":
            assert dropped[str(i)] == f"language_{t['language']}"
        elif not t["junk"]:
            assert str(i) not in dropped, docs[i]["id"]


def test_polish_with_mojibake_is_still_polish():
    # repairing mojibake is the normalize step's job; the language filter must not throw such text away
    truth = sample("ground_truth.jsonl")
    broken = [d["text"] for d, t in zip(sample("corpus.jsonl"), truth) if t["junk_kind"] == "mojibake"]
    assert len(broken) == 10
    broken += ["KupiÅ‚em nowy samochÃ³d i jestem bardzo zadowolony z zakupu, polecam wszystkim.",
               "Byliśmy tam niŝ tydzień, ale ŝal było wracać do domu."]
    kept, dropped = run(LanguageFilter(), broken)
    assert not dropped
    assert all(d.meta["language"]["lang"] == "pl" and d.meta["language"]["score"] > 0.9 for d in kept)


def test_empty_and_blank_text_is_dropped_as_low_score():
    kept, dropped = run(LanguageFilter(), ["", "  \n\t "])
    assert kept == [] and dropped == {"0": "language_low_score", "1": "language_low_score"}
    doc = Document("x", "")
    assert LanguageFilter(filter=False).keep(doc) is True
    assert doc.meta["language"] == {"lang": None, "score": 0.0}


def test_very_short_texts():
    assert identify("Dzień dobry, jak się masz?")[0] == "pl"
    assert identify("Zażółć gęślą jaźń") == ("pl", pytest.approx(1.0, abs=0.01))
    # a word or two carry little evidence: the score says so, and the default threshold drops them
    for text in ["ok", "Tak."]:
        lang, score = identify(text)
        assert isinstance(lang, str) and 0.0 <= score < 0.5, (text, lang, score)
    for text in ["12345", "😀😀", "+1"]:  # no letters: no guess at all
        assert identify(text) == (None, 0.0)
    kept, dropped = run(LanguageFilter(), ["ok", "Dzięki!", "A gdzie źródło? Bo brzmi jak bajka."])
    assert dropped == {"0": "language_low_score"} and [d.id for d in kept] == ["1", "2"]


ENGLISH = "The committee will meet on Monday to discuss the budget and the plans for the new school building."
GERMAN = "Die Gemeinde hat beschlossen, die alte Brücke im nächsten Jahr zu renovieren und den Radweg zu verlängern."
POLISH = "Rada gminy zdecydowała, że stary most zostanie wyremontowany w przyszłym roku, a ścieżka rowerowa wydłużona."


@pytest.mark.parametrize("params, kept_ids, reasons", [
    ({}, ["2"], {"0": "language_en", "1": "language_de"}),
    ({"keep": ["pl", "en"]}, ["0", "2"], {"1": "language_de"}),
    ({"keep": ["EN", "de"]}, ["0", "1"], {"2": "language_pl"}),
    ({"keep": []}, ["0", "1", "2"], {}),
    ({"filter": False}, ["0", "1", "2"], {}),
])
def test_keep_lists(params, kept_ids, reasons):
    kept, dropped = run(LanguageFilter(**params), [ENGLISH, GERMAN, POLISH])
    assert [d.id for d in kept] == kept_ids and dropped == reasons
    assert [d.meta["language"]["lang"] for d in kept] == [["en", "de", "pl"][int(d.id)] for d in kept]


def test_thresholds():
    texts = ["Pierwsza!!!", "+1, mam to samo", POLISH]  # scores ≈ 0.63, 0.13, 1.0 (py3langid 0.4)
    scores = [identify(t) for t in texts]
    assert [lang for lang, _ in scores] == ["pl", "pl", "pl"]
    assert 0.5 <= scores[0][1] < 0.8 and scores[1][1] < 0.3 and scores[2][1] > 0.99
    assert run(LanguageFilter(), texts)[1] == {"1": "language_low_score"}
    assert run(LanguageFilter(threshold=0.8), texts)[1] == {"0": "language_low_score", "1": "language_low_score"}
    assert run(LanguageFilter(threshold=0.0), texts)[1] == {}
    # low score wins over a wrong language: an unsure English guess is "low score", not "language_en"
    assert run(LanguageFilter(threshold=0.95), ["Hello world"])[1] == {"0": "language_low_score"}
    with pytest.raises(Exception):
        LanguageFilter(threshold=1.5)


def test_only_a_prefix_is_classified():
    text = POLISH + " " + ENGLISH * 200
    assert identify(text, max_chars=len(POLISH))[0] == "pl"
    assert identify(text, max_chars=None)[0] == "en"
    doc = Document("x", text)
    assert LanguageFilter(max_chars=len(POLISH)).keep(doc) is True
    assert LanguageFilter(max_chars=None).keep(doc) == "language_en"


def test_registered_and_configurable_from_yaml(tmp_path):
    assert step_class("language") is LanguageFilter
    p = tmp_path / "p.yaml"
    p.write_text("input: {paths: [x.jsonl]}\noutput: {path: out}\nsteps:\n  - {step: language, keep: [pl, en]}\n")
    assert load_pipeline(p, ["steps.0.threshold=0.7"]).steps[0] == {"step": "language", "keep": ["pl", "en"],
                                                                    "threshold": 0.7}
    with pytest.raises(UserError, match=r"unknown key 'steps.0.kep'"):
        load_pipeline(p, ["steps.0.kep=[pl]"])


def test_pipeline_drops_foreign_documents_to_excluded(tmp_path):
    docs, truth = sample("corpus.jsonl"), sample("ground_truth.jsonl")
    records = [{"id": d["id"], "text": d["text"]} for d in docs] + [{"id": "empty", "text": ""}]
    write_jsonl(tmp_path / "in" / "a.jsonl", records)
    cfg = PipelineConfig.model_validate({"input": {"paths": [str(tmp_path / "in" / "*.jsonl")]},
                                         "output": {"path": str(tmp_path / "out"), "name": "c"},
                                         "steps": [{"step": "language"}]})
    stats = run_pipeline(cfg, progress=False)
    step = stats["steps"][-1]
    n_en = sum(t["language"] == "en" for t in truth)
    n_de = sum(t["language"] == "de" for t in truth)
    assert step["name"] == "language" and step["docs_in"] == len(records)
    assert step["dropped"]["language_en"] == n_en == 11 and step["dropped"]["language_de"] == n_de == 8
    assert set(step["dropped"]) == {"language_en", "language_de", "language_low_score"}
    low = {d.id for d in read_documents([tmp_path / "out" / "excluded" / "language_low_score"])}
    assert "empty" in low and low <= {"empty"} | {t["id"] for t in truth if t["junk_kind"] == "too_short"}
    english = list(read_documents([tmp_path / "out" / "excluded" / "language_en"]))
    assert {d.meta["id"] for d in english} == {t["id"] for t in truth if t["language"] == "en"}
    index = json.loads((tmp_path / "out" / "c.index.json").read_text())
    out = [d for s in index["shards"] for d in read_documents([tmp_path / "out" / s["archive"]])]
    assert len(out) == stats["documents_out"] == len(records) - sum(step["dropped"].values())
    assert all(d.meta["language"]["lang"] == "pl" and d.meta["language"]["score"] >= 0.5 for d in out)


@needs_shared(KLEJ)
def test_short_polish_sentences_from_klej():
    with open(KLEJ / "klej_nkjp-ner" / "dev.tsv", encoding="utf-8", newline="") as f:
        sentences = [r["sentence"] for r in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)][:500]
    kept, dropped = run(LanguageFilter(filter=False), sentences)
    top1 = sum(d.meta["language"]["lang"] == "pl" for d in kept) / len(kept)
    kept_at_default = len(run(LanguageFilter(), sentences)[0]) / len(sentences)
    print(f"NKJP-NER sentences: top-1 pl {top1:.2%}, kept by the default filter {kept_at_default:.2%}")
    assert top1 >= 0.97 and kept_at_default >= 0.94


@needs_shared(BENCHMARK_SM)
def test_a_2000_char_prefix_gives_the_full_text_answer_on_news():
    texts = [d.text for d in read_documents([BENCHMARK_SM])][::8]
    long = [t for t in texts if len(t) > 4000]
    assert len(long) >= 20
    assert all(identify(t, 2000)[0] == identify(t, None)[0] == "pl" for t in long)


def test_unknown_language_codes_are_config_errors(tmp_path):
    with pytest.raises(Exception, match="unknown language code.*pol"):
        LanguageFilter(keep=["pl", "pol"])
    p = tmp_path / "p.yaml"
    p.write_text("input: {paths: [x.jsonl]}\noutput: {path: out}\nsteps:\n  - {step: language, keep: [polish]}\n")
    with pytest.raises(UserError, match=r"steps.0.keep: .*unknown language code\(s\) polish"):
        load_pipeline(p)


def test_text_without_letters_gets_no_language():
    from gniazdo.data.language import identify

    assert identify("12345 😀😀 !!!") == (None, 0.0)
    assert identify("ok")[0] is not None
