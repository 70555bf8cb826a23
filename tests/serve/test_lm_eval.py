"""lm-evaluation-harness's ``local-completions`` backend against the server scores a multiple-choice task as its
``hf`` backend does on the same checkpoint: same accuracy, same log-likelihood per choice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gniazdo.infer import Engine
from gniazdo.serve.app import create_app
from gniazdo.serve.config import ServeConfig

from . import running

FIXTURES = Path(__file__).resolve().parents[1] / "eval" / "fixtures" / "data"
TASK = "polish_8tags_multiple_choice"


def samples(out: Path) -> dict[int, list]:
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text(encoding="utf-8").splitlines()]
    return {r["doc_id"]: r["resps"] for r in rows}


def test_local_completions_matches_the_hf_backend(tiny_checkpoint, tmp_path):
    pytest.importorskip("tenacity")  # lm-eval[api]
    from gniazdo.eval.runner import EvalConfig, run_eval

    common = dict(suite="pl-mc", tasks=["8tags"], limit=3, data_dir=str(FIXTURES), log_samples=True,
                  bootstrap_iters=0)
    hf = run_eval(EvalConfig(model=str(tiny_checkpoint), out=str(tmp_path / "hf"), batch_size="4", device="cpu",
                             **common))
    app = create_app(ServeConfig(), {"tiny": Engine(tiny_checkpoint)})
    with running(app) as url:
        served = run_eval(EvalConfig(server=url, server_model="tiny", tokenizer=str(tiny_checkpoint),
                                     out=str(tmp_path / "server"), batch_size="2", **common))
    ours, theirs = served["lm_eval"]["results"][TASK], hf["lm_eval"]["results"][TASK]
    assert ours["acc,none"] == pytest.approx(theirs["acc,none"], abs=1e-6)
    assert ours["acc_norm,none"] == pytest.approx(theirs["acc_norm,none"], abs=1e-6)
    a, b = samples(tmp_path / "server"), samples(tmp_path / "hf")
    assert a.keys() == b.keys() and len(a) == 3
    for doc in a:
        for [(ll_a, greedy_a)], [(ll_b, greedy_b)] in zip(a[doc], b[doc]):
            assert ll_a == pytest.approx(ll_b, abs=1e-3) and greedy_a == greedy_b
