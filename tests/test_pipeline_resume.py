"""Kill a pipeline run with SIGKILL midway, re-run it, and compare with an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import write_jsonl
from gniazdo.corpus import read_documents

SLOW_STEP = '''
import time
from gniazdo.pipeline import Step

class Slow(Step):
    name = "slow"
    def run(self, docs):
        for doc in docs:
            time.sleep(0.004)
            doc.meta["slow"] = True
            yield doc
'''


def make_inputs(root: Path) -> None:
    for f in range(24):
        recs = [{"id": f"{f}-{i}", "text": f"tekst {i % 13} " + "słowo " * (i % 9 + 1) + ("kopia" if i % 4 else str(f))}
                for i in range(40)]
        write_jsonl(root / f"in-{f:02d}.jsonl", recs)


def pipeline_yaml(tmp: Path, out: Path) -> Path:
    p = tmp / f"{out.name}.yaml"
    p.write_text(f"""
input: {{paths: ["{tmp / 'in'}/*.jsonl"]}}
output: {{path: "{out}", name: c, shard_size: 2000}}
steps:
  - step: slow_step:Slow
  - step: length_filter
    min_words: 3
  - step: exact_dedup
workers: 2
""")
    return p


def run_cli(tmp: Path, cfg: Path, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": f"{tmp}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.Popen([sys.executable, "-m", "gniazdo", "data", "run", str(cfg), "--no-progress"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, **kw)


def snapshot(out: Path):
    index = json.loads((out / "c.index.json").read_text())
    docs = [(d.id, d.text, d.meta) for s in index["shards"] for d in read_documents([out / s["archive"]])]
    manifests = [json.loads((out / s["archive"].replace(".jsonl.zst", ".manifest")).read_text())["stats"]
                 for s in index["shards"]]
    stats = json.loads((out / "stats.json").read_text())
    counts = [{k: v for k, v in s.items() if k != "seconds"} for s in stats["steps"]]
    excluded = sorted((p.name, len(list(read_documents([p])))) for p in (out / "excluded").rglob("*.jsonl.zst"))
    return docs, manifests, index["stats"], counts, excluded


def test_sigkill_midway_then_rerun_equals_uninterrupted_run(tmp_path):
    (tmp_path / "slow_step.py").write_text(SLOW_STEP)
    make_inputs(tmp_path / "in")

    clean = run_cli(tmp_path, pipeline_yaml(tmp_path, tmp_path / "clean"))
    assert clean.wait(timeout=120) == 0, clean.stderr.read().decode()

    out = tmp_path / "killed"
    proc = run_cli(tmp_path, pipeline_yaml(tmp_path, out))
    done = out / ".gniazdo" / "stage0" / "done"
    deadline = time.time() + 60
    while time.time() < deadline and len(list(done.glob("*.json")) if done.exists() else []) < 6:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole group: the main process and its workers
    proc.wait()
    finished = len(list(done.glob("*.json")))
    assert 6 <= finished < 24, "the kill should land midway through stage 0"
    assert not (out / "stats.json").exists()

    again = run_cli(tmp_path, pipeline_yaml(tmp_path, out))
    assert again.wait(timeout=120) == 0, again.stderr.read().decode()
    assert snapshot(out) == snapshot(tmp_path / "clean")
    leftovers = [p for p in out.rglob("*") if ".tmp" in p.name]
    assert leftovers == []
