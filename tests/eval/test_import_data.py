"""``import_data``: the shared KLEJ / 8TAGS / PPC / PoQuAD files become task data the YAMLs load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gniazdo.errors import UserError
from gniazdo.eval.import_data import holdout, import_data, poquad_docs

SHARED_TASKS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "pl" / "tasks"
needs_shared = pytest.mark.skipif(not SHARED_TASKS.is_dir(), reason=f"shared data not present: {SHARED_TASKS}")


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_holdout_is_deterministic_and_disjoint():
    rows = list(range(4154))
    train, test = holdout(rows)
    assert len(test) == 1039 and len(train) + len(test) == 4154 and not set(train) & set(test)
    assert holdout(rows) == (train, test) and test[:3] == [0, 4, 8]


def test_poquad_docs_schema():
    article = {"id": 7, "title": "T", "paragraphs": [{"context": "Ala ma kota.", "qas": [
        {"question": "Co ma Ala?", "answers": [{"text": "kota", "answer_start": 7, "generative_answer": "kota"}],
         "is_impossible": False},
        {"question": "Ile lat ma Ala?", "plausible_answers": [{"text": "x", "answer_start": 0}],
         "is_impossible": True}]}]}
    docs = list(poquad_docs(article))
    assert docs[0] == {"id": "7-0-0", "title": "T", "context": "Ala ma kota.", "question": "Co ma Ala?",
                       "answers": {"text": ["kota"], "answer_start": [7], "generative_answer": ["kota"]},
                       "is_impossible": False}
    assert docs[1]["answers"]["text"] == [] and docs[1]["is_impossible"] is True


def test_errors(tmp_path):
    with pytest.raises(UserError, match="not a folder"):
        import_data(tmp_path / "nope", tmp_path / "out")
    with pytest.raises(UserError, match="none of the task data sets"):
        import_data(tmp_path, tmp_path / "out")
    with pytest.raises(UserError, match="unknown data set"):
        import_data(tmp_path, tmp_path / "out", ["belebele"])


def test_small_synthetic_source(tmp_path):
    """The file formats, on a hand-made source folder: raw TSV (a cell starting with a quote is text), DYK's
    CSV quoting, 8TAGS' '<label> <sentence>'."""
    src = tmp_path / "src"
    (src / "klej" / "klej_polemo2.0-in").mkdir(parents=True)
    (src / "klej" / "klej_polemo2.0-in" / "train.tsv").write_text(
        'sentence\ttarget\n" Cytat " - powiedział .\t__label__meta_zero\n', encoding="utf-8")
    (src / "klej" / "klej_polemo2.0-in" / "dev.tsv").write_text("sentence\ttarget\nDobrze .\t__label__meta_plus_m\n",
                                                               encoding="utf-8")
    (src / "klej" / "klej_dyk").mkdir(parents=True)
    (src / "klej" / "klej_dyk" / "train.tsv").write_text(
        'q_id\tquestion\tanswer\ttarget\nq1\t"kto napisał ""Lalkę""?"\tBolesław Prus\t1\nq2\tpyt\todp\t0\n',
        encoding="utf-8")
    (src / "8tags").mkdir()
    (src / "8tags" / "train.txt").write_text("0 Film o wojnie .\n6 Mecz .\n", encoding="utf-8")
    (src / "8tags" / "dev.txt").write_text("7 Nowy telefon .\n", encoding="utf-8")
    counts = import_data(src, tmp_path / "out")
    assert counts == {"polemo2-in": {"train": 1, "test": 1}, "8tags": {"train": 2, "test": 1},
                      "dyk": {"train": 1, "test": 1}}
    out = tmp_path / "out"
    assert read(out / "polemo2-in" / "train.jsonl") == [{"sentence": '" Cytat " - powiedział .',
                                                         "target": "__label__meta_zero"}]
    assert read(out / "dyk" / "test.jsonl")[0]["question"] == 'kto napisał "Lalkę"?'
    assert read(out / "dyk" / "test.jsonl")[0]["target"] == 1
    assert read(out / "8tags" / "test.jsonl") == [{"sentence": "Nowy telefon .", "label": 7}]


@needs_shared
def test_shared_folder_converts_and_loads(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    counts = import_data(SHARED_TASKS, tmp_path)
    assert set(counts) == {"polemo2-in", "polemo2-out", "8tags", "dyk", "ppc", "psc", "cbd", "klej-ner", "poquad"}
    assert counts["polemo2-in"] == {"train": 5783, "test": 723}  # KLEJ dev is the local test
    assert counts["8tags"]["test"] == 5000 and counts["ppc"]["test"] == 1000
    assert 900 <= counts["dyk"]["test"] <= 1100 and 900 <= counts["cbd"]["test"] <= 1100
    assert sum(counts["poquad"].values()) == 3690

    from gniazdo.eval.runner import load_tasks
    from gniazdo.eval.scores import SUITES

    loaded = load_tasks(SUITES["pl-leaderboard"], tmp_path, skip_missing=True)["tasks"]
    # Belebele and PolQA are not in the shared folder: left out, the rest load
    assert set(loaded) == {n for n in SUITES["pl-leaderboard"] if "belebele" not in n and "polqa" not in n}
    ner = loaded["polish_klej_ner_multiple_choice"]
    labels = {ner.doc_to_target(d) for d in ner.eval_docs}
    assert labels == set(range(6))  # every NKJP type maps onto a choice
    dyk = loaded["polish_dyk_multiple_choice"]
    doc = dyk.eval_docs[0]
    assert not doc["question"].startswith('"') and dyk.doc_to_text(doc).startswith(f'Pytanie: "{doc["question"]}"')
    assert {dyk.doc_to_target(d) for d in dyk.eval_docs} == {0, 1}
    assert {loaded["polish_cbd_regex"].doc_to_target(d) for d in loaded["polish_cbd_regex"].eval_docs} == {"0", "1"}
    tags = loaded["polish_8tags_regex"]
    assert {tags.doc_to_target(d) for d in tags.eval_docs} == set("ABCDEFGH")
    poquad = loaded["polish_poquad_open_book"]
    assert poquad.doc_to_text(poquad.eval_docs[0]).startswith("Tytuł: ")
    with pytest.raises(UserError, match="no local data"):
        load_tasks(["polish_belebele_mc"], tmp_path)
