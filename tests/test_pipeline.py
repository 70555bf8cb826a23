from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import zstandard

from conftest import write_jsonl
from gniazdo.config import load_config, read_yaml
from gniazdo.corpus import read_documents
from gniazdo.errors import UserError
from gniazdo.pipeline import PipelineConfig, run_pipeline
from gniazdo.pipeline.load import load_pipeline


def make_corpus(root: Path, files: int = 6, per_file: int = 20) -> list[dict]:
    """Files of documents where every 5th document repeats one from an earlier file (exact duplicates)."""
    records = []
    for f in range(files):
        recs = []
        for i in range(per_file):
            if f and i % 5 == 0:
                text = records[(f * 7 + i) % len(records)]["text"]
            else:
                text = f"Plik {f}, dokument {i}. " + " ".join(["słowo"] * (3 + (f * per_file + i) % 25))
            recs.append({"id": f"f{f}-{i}", "text": text, "src": f})
        write_jsonl(root / f"part-{f:02d}.jsonl", recs)
        records += recs
    return records


def config(root: Path, out: Path, workers: int = 1, **extra) -> PipelineConfig:
    data = {"input": {"paths": [str(root / "*.jsonl")]}, "output": {"path": str(out), "name": "c"},
            "steps": [{"step": "length_filter", "min_words": 8}, {"step": "exact_dedup"}], "workers": workers}
    data.update(extra)
    return PipelineConfig.model_validate(data)


def output_docs(out: Path):
    index = json.loads((out / "c.index.json").read_text())
    return [(d.id, d.text, d.meta) for s in index["shards"] for d in read_documents([out / s["archive"]])]


def expected(records, min_words=8):
    """What length_filter(min_words) then exact_dedup should keep, computed independently."""
    seen, keep = set(), []
    for r in records:
        if len(re.findall(r"\w+", r["text"])) < min_words or r["text"] in seen:
            continue
        seen.add(r["text"])
        keep.append(r)
    return keep


def test_pipeline_filters_dedups_and_reports(tmp_path):
    records = make_corpus(tmp_path / "in")
    stats = run_pipeline(config(tmp_path / "in", tmp_path / "out"), progress=False)
    want = expected(records)
    got = output_docs(tmp_path / "out")
    assert [g[0] for g in got] == [r["id"] for r in want]
    assert all(g[2]["id"] == g[0] and g[2]["src"] == int(g[0][1]) for g in got)  # input id kept in meta.id
    names = [s["name"] for s in stats["steps"]]
    assert names == ["read", "length_filter", "exact_dedup"]
    read, length, dedup = stats["steps"]
    assert read["docs_in"] == read["docs_out"] == len(records) == stats["documents_in"]
    assert length["docs_in"] == len(records) and dedup["docs_out"] == len(want) == stats["documents_out"]
    assert length["docs_out"] - dedup["docs_out"] == dedup["dropped"]["exact_dup"]
    assert read["docs_out"] - length["docs_out"] == length["dropped"]["too_few_words"]
    excluded = list(read_documents([tmp_path / "out" / "excluded" / "exact_dup"]))
    assert len(excluded) == dedup["dropped"]["exact_dup"]
    assert json.loads((tmp_path / "out" / "stats.json").read_text())["documents_out"] == len(want)
    resolved = read_yaml(tmp_path / "out" / "config.resolved.yaml")
    assert resolved["steps"][0] == {"step": "length_filter", "min_words": 8}
    index = json.loads((tmp_path / "out" / "c.index.json").read_text())
    assert index["stats"]["documents"] == len(want)


def test_many_workers_and_byte_range_tasks_give_the_same_output(tmp_path):
    make_corpus(tmp_path / "in")
    run_pipeline(config(tmp_path / "in", tmp_path / "one"), progress=False)
    stats = run_pipeline(config(tmp_path / "in", tmp_path / "two", workers=2,
                                input={"paths": [str(tmp_path / "in" / "*.jsonl")], "task_size": 700}),
                         progress=False)
    assert stats["tasks"] > 12  # files were split into byte ranges
    assert output_docs(tmp_path / "two") == output_docs(tmp_path / "one")


def test_rerun_skips_finished_tasks_and_refuses_another_config(tmp_path):
    make_corpus(tmp_path / "in")
    first = run_pipeline(config(tmp_path / "in", tmp_path / "out"), progress=False)
    marker = tmp_path / "out" / ".gniazdo" / "stage0" / "done" / "00000.json"
    mtime = marker.stat().st_mtime_ns
    again = run_pipeline(config(tmp_path / "in", tmp_path / "out"), progress=False)
    assert marker.stat().st_mtime_ns == mtime
    assert again["steps"] == first["steps"]
    with pytest.raises(UserError, match="holds another run"):
        run_pipeline(config(tmp_path / "in", tmp_path / "out", steps=[]), progress=False)


def test_step_errors_name_the_key(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("input: {paths: [x.jsonl]}\noutput: {path: out}\nsteps:\n  - step: length_filter\n")
    assert load_pipeline(p, ["steps.0.min_words=30"]).steps[0]["min_words"] == 30
    with pytest.raises(UserError, match=r"unknown key 'steps.0.min_wordz' \(valid: max_chars, max_words, "
                                        r"min_chars, min_words\)"):
        load_pipeline(p, ["steps.0.min_wordz=30"])
    with pytest.raises(UserError, match=r"steps.0.min_words: .*integer"):
        load_pipeline(p, ["steps.0.min_words=dużo"])
    with pytest.raises(UserError, match=r"unknown step .lenght_filter. \(valid: .*exact_dedup, .*length_filter"):
        load_pipeline(p, ["steps.0.step=lenght_filter"])
    with pytest.raises(UserError, match=r"unknown key 'output.fromat'"):
        load_pipeline(p, ["output.fromat=jsonl"])
    with pytest.raises(UserError, match=r"output.format: Input should be 'speakleash', 'parquet' or 'jsonl'"):
        load_pipeline(p, ["output.format=xml"])


def write_bad_inputs(root: Path) -> None:
    root.mkdir(parents=True)
    lines = [json.dumps({"text": "dobry dokument numer jeden"}).encode(),
             b'{"text": "urwany',
             b'{"text": "z\xff\xfe zepsutym utf-8"}',
             json.dumps({"tekst": "bez pola text"}).encode(),
             b"[1, 2]",
             json.dumps({"text": "dobry dokument numer dwa"}).encode()]
    (root / "a.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    (root / "b.jsonl.zst").write_bytes(b"")
    good = zstandard.ZstdCompressor().compress(
        b"".join(json.dumps({"text": f"dokument {i} {os.urandom(150).hex()}"}).encode() + b"\n" for i in range(1000)))
    (root / "c.jsonl.zst").write_bytes(good[: len(good) // 2])


def test_bad_input_is_counted_logged_and_skipped(tmp_path):
    write_bad_inputs(tmp_path / "in")
    cfg = PipelineConfig.model_validate({"input": {"paths": [str(tmp_path / "in")]},
                                         "output": {"path": str(tmp_path / "out")}})
    stats = run_pipeline(cfg, progress=False)
    errors = [json.loads(l) for l in (tmp_path / "out" / "errors.jsonl").read_text().splitlines()]
    where = [(Path(e["file"]).name, e["line"]) for e in errors]
    assert where[:5] == [("a.jsonl", 2), ("a.jsonl", 3), ("a.jsonl", 4), ("a.jsonl", 5), ("b.jsonl.zst", 0)]
    assert where[5][0] == "c.jsonl.zst" and "truncated" in errors[5]["reason"]
    assert "malformed JSON" in errors[0]["reason"] and errors[0]["raw"] == '{"text": "urwany\n'
    assert "invalid UTF-8" in errors[1]["reason"] and "\\xff" in errors[1]["raw"]
    assert errors[2]["reason"] == "text field 'text' missing"
    assert stats["errors"] == 6
    texts = [d.text for d in read_documents([tmp_path / "out"])]
    assert texts[:2] == ["dobry dokument numer jeden", "dobry dokument numer dwa"]
    assert 0 < len(texts) - 2 < 1000  # the intact part of the truncated archive is kept
    assert stats["documents_in"] == len(texts) + 6


def test_strict_stops_at_first_bad_record(tmp_path):
    write_bad_inputs(tmp_path / "in")
    cfg = PipelineConfig.model_validate({"input": {"paths": [str(tmp_path / "in")]},
                                         "output": {"path": str(tmp_path / "out")}, "strict": True})
    with pytest.raises(UserError, match=r"a.jsonl:2: malformed JSON"):
        run_pipeline(cfg, progress=False)


def test_steps_are_importable_classes_usable_without_the_executor():
    from gniazdo.data.exact_dedup import ExactDedup
    from gniazdo.data.length_filter import LengthFilter
    from gniazdo.document import Document

    docs = [Document("a", "Ala ma kota"), Document("b", "kot"), Document("c", "ALA  ma kota")]
    f = LengthFilter(min_words=2)
    dropped = []
    f.exclude = lambda doc, reason: dropped.append((doc.id, reason))
    assert [d.id for d in f.run(iter(docs))] == ["a", "c"]
    assert dropped == [("b", "too_few_words")]
    assert ExactDedup(normalize=True).key(docs[0]) == ExactDedup(normalize=True).key(docs[2])
    assert ExactDedup(normalize=False).key(docs[0]) != ExactDedup(normalize=False).key(docs[2])
    with pytest.raises(Exception):
        LengthFilter(min_wordz=2)


@pytest.mark.parametrize("keep, survivors", [("first", ["a1", "b1"]), ("longest", ["a2", "b1"]),
                                             ("quality", ["a3", "b1"])])
def test_exact_dedup_survivor_rules_across_tasks(tmp_path, keep, survivors):
    write_jsonl(tmp_path / "in" / "1.jsonl", [{"id": "a1", "text": "Ala ma kota.", "quality": "LOW"},
                                              {"id": "b1", "text": "Inny tekst.", "quality": "LOW"}])
    write_jsonl(tmp_path / "in" / "2.jsonl", [{"id": "a2", "text": "ala  ma KOTA. ", "quality": "MEDIUM"},
                                              {"id": "a3", "text": "Ala ma kota.", "quality": "HIGH"}])
    cfg = PipelineConfig.model_validate({"input": {"paths": [str(tmp_path / "in")]},
                                         "output": {"path": str(tmp_path / "out"), "name": "c"},
                                         "steps": [{"step": "exact_dedup", "keep": keep}], "workers": 2})
    stats = run_pipeline(cfg, progress=False)
    kept = list(read_documents([tmp_path / "out"]))
    assert sorted(d.id for d in kept) == survivors
    winner = next(d for d in kept if d.id.startswith("a"))
    assert winner.meta["dup_count"] == 2 and "dup_count" not in next(d for d in kept if d.id == "b1").meta
    removed = list(read_documents([tmp_path / "out" / "excluded" / "exact_dup"]))
    assert sorted(d.id for d in removed) == sorted({"a1", "a2", "a3"} - {winner.id})
    assert all(d.meta["duplicate_of"] == winner.id for d in removed)
    assert stats["steps"][-1]["dropped"] == {"exact_dup": 2}
