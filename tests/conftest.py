from __future__ import annotations

import json
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "pl"
BENCHMARK_SM = SHARED / "corpus" / "spichlerz" / "benchmark_sm.jsonl.zst"


def needs_shared(path: Path):
    return pytest.mark.skipif(not path.exists(), reason=f"shared data not present: {path}")


def write_jsonl(path: Path, records: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n")
    return path
