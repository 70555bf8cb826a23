from __future__ import annotations

import json

from gniazdo.corpus import read_documents
from gniazdo.demo import run_demo
from gniazdo.resources import sample_path


def test_demo_runs_offline_and_removes_exact_dups(tmp_path):
    results = run_demo(tmp_path / "demo", progress=False)
    stats = results["pipeline"]
    truth = {t["id"]: t for t in map(json.loads, sample_path("ground_truth.jsonl").read_text().splitlines())}
    out = list(read_documents([tmp_path / "demo" / "corpus"]))
    ids = {d.meta["id"] for d in out}
    dups = {i for i, t in truth.items() if t["duplicate_of"]}
    assert ids.isdisjoint(dups)
    assert ids | dups >= {i for i, t in truth.items() if t["junk_kind"] != "too_short"}
    assert stats["steps"][-1]["dropped"]["exact_dup"] == len(dups)
    assert (tmp_path / "demo" / "corpus" / "sample.jsonl.zst").exists()
