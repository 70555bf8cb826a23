"""End to end on a tiny random model: the MC suite through lm-eval's hf backend, the live evaluation, the CLI,
the demo helper. Offline: fixture data (``--data-dir``), a tokenizer trained on the sample corpus."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from gniazdo.eval.scores import SUITES, TASKS, normalize

FIXTURES = Path(__file__).parent / "fixtures" / "data"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A random 2-layer model saved as a Hugging Face folder, with its tokenizer."""
    from transformers import AutoTokenizer

    from gniazdo import resources
    from gniazdo.model import Transformer, model_config, save_pretrained
    from gniazdo.tokenizer import TokenizerTrainConfig, train_tokenizer

    root = tmp_path_factory.mktemp("tiny")
    tok = train_tokenizer(TokenizerTrainConfig(corpus=[str(resources.sample_path("corpus.jsonl"))], vocab_size=1000,
                                               out=str(root / "tok"), progress=False))
    vocab = len(AutoTokenizer.from_pretrained(str(tok)))
    torch.manual_seed(0)
    model = Transformer(model_config("tiny", vocab_size=vocab, dim=64, n_layers=2, n_heads=4, n_kv_heads=2,
                                     ffn_dim=128))
    return save_pretrained(model, root / "model", tokenizer_dir=tok)


@pytest.fixture(scope="module")
def mc_run(tiny_model, tmp_path_factory):
    from gniazdo.eval.runner import EvalConfig, run_eval

    out = tmp_path_factory.mktemp("run") / "mc"
    cfg = EvalConfig(model=str(tiny_model), out=str(out), suite="pl-mc", limit=3, data_dir=str(FIXTURES),
                     batch_size="4", device="cpu")
    return out, run_eval(cfg)


def test_mc_suite_end_to_end(mc_run):
    out, results = mc_run
    for name in ("results.json", "leaderboard.md", "leaderboard.png", "config.resolved.yaml"):
        assert (out / name).is_file(), name
    assert (out / "leaderboard.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    on_disk = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert on_disk["leaderboard"] == results["leaderboard"]
    assert on_disk["config"]["suite"] == "pl-mc" and on_disk["config"]["limit"] == 3
    board = results["leaderboard"]
    assert list(board["tasks"]) == SUITES["pl-mc"]  # all ten: the fixtures include Belebele and PolQA
    for name, row in board["tasks"].items():
        assert 0.0 <= row["value"] <= 100.0 and 0.0 <= row["baseline"] < 100.0
        assert row["normalized"] == pytest.approx(normalize(row["value"], row["baseline"]))
        lm = results["lm_eval"]["results"][name]
        assert row["value"] == pytest.approx(100 * lm[TASKS[name].metric])
        assert 0.0 <= lm["acc_norm,none"] <= 1.0
        assert results["lm_eval"]["n-samples"][name]["effective"] <= 3
    assert results["baselines"]["polemo2_in_multiple_choice"] == {"value": 41.6, "source": "leaderboard"}
    # KLEJ NER's baseline comes from the fixture's gold labels: persName, placeName, time -> 1/3
    assert results["baselines"]["polish_klej_ner_multiple_choice"] == {"value": pytest.approx(100 / 3),
                                                                        "source": "data"}
    mean = sum(r["normalized"] for r in board["tasks"].values()) / 10
    assert board["average"] == pytest.approx(mean) == pytest.approx(board["average_mc"])
    assert board["average_gen"] is None
    md = (out / "leaderboard.md").read_text(encoding="utf-8")
    assert "| PolEmo2 IN (`polemo2_in_multiple_choice`) | MC | acc |" in md and "average, all tasks (10)" in md


def test_live_evaluation_matches_the_hf_backend(mc_run, tiny_model):
    """The trainer's path (our Transformer in memory, no checkpoint) gives lm-eval's hf backend's accuracy."""
    from gniazdo.eval.lm import evaluate_live
    from gniazdo.model import from_pretrained

    _, results = mc_run
    model = from_pretrained(tiny_model)
    model.train()
    rng = torch.get_rng_state()
    py_rng = random.getstate()
    names = ["polemo2-in", "polish_8tags_multiple_choice", "dyk", "klej-ner", "ppc"]
    live = evaluate_live(model, tiny_model, names, limit=3, batch_size=2, data_dir=FIXTURES)
    assert set(live) == {f"{n}/acc" for n in names}
    full = {"polemo2-in": "polemo2_in_multiple_choice", "dyk": "polish_dyk_multiple_choice",
            "klej-ner": "polish_klej_ner_multiple_choice", "ppc": "polish_ppc_multiple_choice"}
    for name in names:
        assert live[f"{name}/acc"] == pytest.approx(results["lm_eval"]["results"][full.get(name, name)]["acc,none"])
    assert model.training  # put back in train mode
    assert torch.equal(torch.get_rng_state(), rng) and random.getstate() == py_rng  # the trainer's RNG untouched
    again = evaluate_live(model, tiny_model, list(reversed(names)), limit=3, batch_size=3, data_dir=FIXTURES)
    assert again == live  # deterministic, whatever the batch size and the order asked
    suite = evaluate_live(model, tiny_model, ["pl-mc"], limit=3, batch_size=4, data_dir=FIXTURES)
    assert suite == {f"{n}/acc": pytest.approx(results["lm_eval"]["results"][n]["acc,none"]) for n in SUITES["pl-mc"]}


def test_live_evaluation_refuses_generative_tasks(tiny_model):
    from gniazdo.errors import UserError
    from gniazdo.eval.lm import evaluate_live
    from gniazdo.model import from_pretrained

    with pytest.raises(UserError, match="unknown task"):
        evaluate_live(from_pretrained(tiny_model), tiny_model, ["polemo2_in"], data_dir=FIXTURES)


def test_loglikelihoods_match_hflm(tiny_model):
    """Request by request, our scorer equals HFLM's on the same weights (incl. empty context, batching)."""
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    from gniazdo.eval.lm import GniazdoLM
    from gniazdo.model import from_pretrained

    pairs = [("Opinia: \"Dobry lekarz .\"\nSentyment:", " Pozytywny"), ("Kategoria:", " Sport"),
             ("Zdanie A: \"x\"\nPrawidłowa odpowiedź:", " B"), ("", "Ala ma kota"),
             ("Długi kontekst " * 20, " i krótka odpowiedź")]
    reqs = [Instance(request_type="loglikelihood", doc={}, arguments=p, idx=i) for i, p in enumerate(pairs)]
    ours = GniazdoLM(model=from_pretrained(tiny_model), tokenizer=str(tiny_model), batch_size=2).loglikelihood(reqs)
    theirs = HFLM(pretrained=str(tiny_model), device="cpu", batch_size=3, dtype="float32").loglikelihood(reqs)
    for (a, ga), (b, gb) in zip(ours, theirs):
        assert math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-3) and ga == gb


def test_generative_tasks_smoke(tiny_model, tmp_path):
    """Generation, the letter regex, the F1 and Levenshtein metrics, through lm-eval's hf backend."""
    from gniazdo.eval.runner import EvalConfig, run_eval

    results = run_eval(EvalConfig(model=str(tiny_model), out=str(tmp_path / "gen"), suite="pl-gen",
                                  tasks=["dyk", "cbd", "poquad"], limit=1, data_dir=str(FIXTURES), batch_size="1",
                                  device="cpu", model_args="max_length=256"))
    lm = results["lm_eval"]["results"]
    assert set(lm) == {"polish_dyk_regex", "polish_cbd_regex", "polish_poquad_open_book"}
    assert {"exact_match,score-first", "f1,score-first"} <= set(lm["polish_dyk_regex"])
    assert {"exact_match,none", "levenshtein,none"} <= set(lm["polish_poquad_open_book"])
    assert results["leaderboard"]["average_mc"] is None and results["leaderboard"]["average_gen"] is not None
    assert results["baselines"]["polish_poquad_open_book"]["value"] == 0.0


def test_greedy_generation_matches_hflm(tiny_model):
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    from gniazdo.eval.lm import GniazdoLM
    from gniazdo.model import from_pretrained

    reqs = [Instance(request_type="generate_until", doc={}, idx=0,
                     arguments=("Pytanie: gdzie leży Hel?\nOdpowiedź:", {"until": ["\n\n"], "max_gen_toks": 6,
                                                                         "do_sample": False}))]
    ours = GniazdoLM(model=from_pretrained(tiny_model), tokenizer=str(tiny_model)).generate_until(reqs)
    theirs = HFLM(pretrained=str(tiny_model), device="cpu", batch_size=1, dtype="float32").generate_until(reqs)
    assert ours == theirs and len(ours[0]) > 0


def test_cli_runs_compares_and_reports_errors(tiny_model, mc_run, tmp_path):
    from gniazdo.cli import cli

    out = tmp_path / "cli"
    r = CliRunner().invoke(cli, ["eval", "--model", str(tiny_model), "--suite", "pl-mc", "--tasks", "8tags,dyk",
                                 "--limit", "2", "--data-dir", str(FIXTURES), "--batch-size", "2", "--device", "cpu",
                                 "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "8TAGS" in r.output and "average, all tasks" in r.output
    board = json.loads((out / "results.json").read_text(encoding="utf-8"))["leaderboard"]
    assert list(board["tasks"]) == ["polish_8tags_multiple_choice", "polish_dyk_multiple_choice"]
    r = CliRunner().invoke(cli, ["eval", "compare", str(mc_run[0]), str(out), "--out", str(tmp_path / "cmp")])
    assert r.exit_code == 0, r.output
    assert "| task | kind | metric | mc | cli |" in r.output
    assert (tmp_path / "cmp" / "compare.png").is_file() and (tmp_path / "cmp" / "compare.md").is_file()


def test_demo_eval_on_the_shipped_sample(tiny_model, tmp_path):
    from rich.console import Console

    from gniazdo.eval import DEMO_TASKS, demo_eval

    console = Console(record=True, width=120)
    results = demo_eval(str(tiny_model), str(tmp_path / "demo"), limit=2, console=console)
    assert len(results["leaderboard"]["tasks"]) == len(DEMO_TASKS)
    assert "PolEmo2 IN" in console.export_text() and (tmp_path / "demo" / "leaderboard.png").is_file()
