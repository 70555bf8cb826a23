from __future__ import annotations

import json

from gniazdo.cli import main
from gniazdo.corpus import read_documents
from gniazdo.dedup.corpus import DedupConfig, dedup_corpus
from gniazdo.resources import sample_path


def test_dedup_corpus_writes_survivors_excluded_and_report(tmp_path):
    out = tmp_path / "out"
    summary = dedup_corpus(DedupConfig(inputs=[str(sample_path("corpus.jsonl"))], out=str(out), keep="longest",
                                       report=True))
    truth = {t["id"]: t for t in map(json.loads, sample_path("ground_truth.jsonl").read_text().splitlines())}
    copies = {i for i, t in truth.items() if t["duplicate_of"] or t["near_duplicate_of"]}
    kept = list(read_documents([out / "corpus.jsonl.zst"]))
    removed = list(read_documents([out / "excluded" / "near_dup"]))
    assert summary["documents"] == 265 == len(kept) + len(removed)
    assert len(removed) == len(copies) == summary["removed"]
    by_id = {d.id: d for d in kept}
    for doc in removed:  # each removed copy points to a kept survivor of its cluster, no shorter than it
        survivor = by_id[doc.meta["duplicate_of"]]
        assert survivor.meta["dup_cluster_size"] >= 2 and len(survivor.text) >= len(doc.text)
    assert set(summary["experts"]) == {"minhash", "simhash", "cosine"}
    assert summary["agreement"]["minhash"]["minhash"] == 1.0
    assert (out / "cluster_sizes.png").stat().st_size > 1000 and (out / "config.resolved.yaml").exists()


def test_dedup_cli_with_overrides(tmp_path, capsys):
    out = tmp_path / "o"
    main(["dedup", str(sample_path("corpus.jsonl")), "--out", str(out), "--experts", "minhash,cosine",
          "--vote", "all", "near.cosine.threshold=0.85"])
    assert "kept" in capsys.readouterr().out
    resolved = (out / "config.resolved.yaml").read_text()
    assert "threshold: 0.85" in resolved and "- minhash" in resolved
    summary = json.loads((out / "dedup.json").read_text())
    assert set(summary["experts"]) == {"minhash", "cosine"} and summary["removed"] > 10


def test_near_dedup_pipeline_step_across_tasks(tmp_path):
    from gniazdo.pipeline import PipelineConfig, run_pipeline

    docs = [json.loads(line) for line in sample_path("corpus.jsonl").read_text().splitlines()]
    for k in range(3):  # three input files: three tasks, so the vote is global across tasks
        (tmp_path / "in").mkdir(exist_ok=True)
        (tmp_path / "in" / f"{k}.jsonl").write_text("\n".join(json.dumps(d, ensure_ascii=False)
                                                              for d in docs[k::3]), encoding="utf-8")
    cfg = PipelineConfig.model_validate({"input": {"paths": [str(tmp_path / "in")]},
                                         "output": {"path": str(tmp_path / "out"), "name": "c"},
                                         "steps": [{"step": "exact_dedup"},
                                                   {"step": "near_dedup", "keep": "longest"}],
                                         "workers": 2})
    stats = run_pipeline(cfg, progress=False)
    truth = {t["id"]: t for t in map(json.loads, sample_path("ground_truth.jsonl").read_text().splitlines())}
    kept = list(read_documents([tmp_path / "out"]))
    near = list(read_documents([tmp_path / "out" / "excluded" / "near_dup"]))
    exact = list(read_documents([tmp_path / "out" / "excluded" / "exact_dup"]))
    removed = {d.id for d in near} | {d.id for d in exact}
    copies = {i for i, t in truth.items() if t["duplicate_of"] or t["near_duplicate_of"]}
    assert len(removed) == len(copies) and len(kept) == 265 - len(copies)
    survivors = {d.id: d for d in kept}
    for d in near:
        s = survivors[d.meta["duplicate_of"]]
        assert s.meta["dup_cluster_id"] == s.id and s.meta["dup_cluster_size"] >= 2 and len(s.text) >= len(d.text)
    assert stats["steps"][-1]["name"] == "near_dedup" and stats["steps"][-1]["dropped"] == {"near_dup": len(near)}


def test_incremental_index_matches_earlier_corpora(tmp_path):
    docs = [json.loads(line) for line in sample_path("corpus.jsonl").read_text().splitlines()]
    truth = {t["id"]: t for t in map(json.loads, sample_path("ground_truth.jsonl").read_text().splitlines())}
    originals = [d for d in docs if not (truth[d["id"]]["duplicate_of"] or truth[d["id"]]["near_duplicate_of"])]
    copies = [d for d in docs if truth[d["id"]]["duplicate_of"] or truth[d["id"]]["near_duplicate_of"]]
    for name, part in (("a", originals), ("b", copies)):
        (tmp_path / f"{name}.jsonl").write_text("\n".join(json.dumps(d, ensure_ascii=False) for d in part))
    index = tmp_path / "index"
    first = dedup_corpus(DedupConfig(inputs=[str(tmp_path / "a.jsonl")], out=str(tmp_path / "o1"), index=str(index)))
    assert first["removed"] == 0 and first["indexed_before"] == 0
    second = dedup_corpus(DedupConfig(inputs=[str(tmp_path / "b.jsonl")], out=str(tmp_path / "o2"),
                                      index=str(index)))
    assert second["indexed_before"] == len(originals)
    # every copy is matched to an earlier document of its own truth cluster
    assert set(second["matched_earlier"]) == {d["id"] for d in copies}
    for new, earlier in second["matched_earlier"].items():
        t = truth[new]
        assert earlier == (t["duplicate_of"] or t["near_duplicate_of"]) or \
            truth[earlier].get("duplicate_of") == (t["duplicate_of"] or t["near_duplicate_of"])
    from gniazdo.dedup.index import DedupIndex
    from gniazdo.dedup.run import NearDedupParams
    assert len(DedupIndex(index, NearDedupParams())) == len(originals)  # copies were not added
    # re-running the second corpus (as after a kill) gives the same answer, and the index does not grow
    again = dedup_corpus(DedupConfig(inputs=[str(tmp_path / "b.jsonl")], out=str(tmp_path / "o2"),
                                     index=str(index)))
    assert again["matched_earlier"] == second["matched_earlier"]
    assert len(DedupIndex(index, NearDedupParams())) == len(originals)
    rerun_first = dedup_corpus(DedupConfig(inputs=[str(tmp_path / "a.jsonl")], out=str(tmp_path / "o1"),
                                           index=str(index)))
    assert rerun_first["removed"] == 0 and len(DedupIndex(index, NearDedupParams())) == len(originals)
    import pytest
    from gniazdo.errors import UserError
    with pytest.raises(UserError, match="other dedup settings"):
        DedupIndex(index, NearDedupParams(vote="all"))


def test_out_of_core_run_equals_in_memory_within_a_small_budget(tmp_path):
    docs = [json.loads(line) for line in sample_path("corpus.jsonl").read_text().splitlines()]
    src = tmp_path / "in.jsonl"
    # the sample three times with new ids: exact copies across the repeats, ~1.2 MB of input
    src.write_text("\n".join(json.dumps({**d, "id": f"{d['id']}#{k}"}, ensure_ascii=False)
                             for k in range(3) for d in docs), encoding="utf-8")
    near = {"experts": ["minhash", "simhash"], "vote": "any"}  # cosine's idf differs by design (first batch)
    mem = dedup_corpus(DedupConfig(inputs=[str(src)], out=str(tmp_path / "mem"), near=near))
    budget_mb = 0.01  # 10 KB; batches of 8 documents keep the MinHash signatures (8 KB) inside it
    ooc = dedup_corpus(DedupConfig(inputs=[str(src)], out=str(tmp_path / "ooc"), near=near, memory_mb=budget_mb,
                                   batch_docs=8))
    assert src.stat().st_size > 100 * budget_mb * 2**20  # the corpus is far larger than the budget
    stats = ooc["out_of_core"]
    assert stats["partitions"] > 1 and stats["peak_bytes"] <= stats["budget_bytes"]
    assert (ooc["kept"], ooc["removed"]) == (mem["kept"], mem["removed"])
    a = [(d.id, d.meta.get("dup_cluster_size")) for d in read_documents([tmp_path / "mem" / "corpus.jsonl.zst"])]
    b = [(d.id, d.meta.get("dup_cluster_size")) for d in read_documents([tmp_path / "ooc" / "corpus.jsonl.zst"])]
    assert a == b
    assert not (tmp_path / "ooc" / ".work").exists()
    two = dedup_corpus(DedupConfig(inputs=[str(src)], out=str(tmp_path / "two"), near=near, memory_mb=budget_mb,
                                   batch_docs=100, workers=2))
    c = [(d.id, d.meta.get("dup_cluster_size")) for d in read_documents([tmp_path / "two" / "corpus.jsonl.zst"])]
    assert c == a  # two signing processes: the same result


def test_out_of_core_on_an_empty_corpus(tmp_path):
    (tmp_path / "empty.jsonl").write_text("\n")
    summary = dedup_corpus(DedupConfig(inputs=[str(tmp_path / "empty.jsonl")], out=str(tmp_path / "o"), memory_mb=1))
    assert (summary["documents"], summary["kept"]) == (0, 0)
    assert summary == {**summary, "removed": 0}


def test_out_of_core_with_an_index_matches_the_in_memory_run(tmp_path):
    docs = [json.loads(line) for line in sample_path("corpus.jsonl").read_text().splitlines()]
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps(d, ensure_ascii=False) for d in docs[:130]))
    (tmp_path / "b.jsonl").write_text("\n".join(json.dumps(d, ensure_ascii=False) for d in docs[130:]))
    results = {}
    for mode, extra in (("mem", {}), ("ooc", {"memory_mb": 0.05, "batch_docs": 20})):
        index = str(tmp_path / f"index-{mode}")
        dedup_corpus(DedupConfig(inputs=[str(tmp_path / "a.jsonl")], out=str(tmp_path / f"{mode}1"), index=index,
                                 near={"experts": ["minhash", "simhash"]}, **extra))
        results[mode] = dedup_corpus(DedupConfig(inputs=[str(tmp_path / "b.jsonl")], out=str(tmp_path / f"{mode}2"),
                                                 index=index, near={"experts": ["minhash", "simhash"]}, **extra))
    assert results["ooc"]["indexed_before"] == results["mem"]["indexed_before"] > 0
    assert results["ooc"]["matched_earlier"] == results["mem"]["matched_earlier"] != {}
    assert results["ooc"]["kept"] == results["mem"]["kept"]
