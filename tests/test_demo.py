from __future__ import annotations

import json

import pytest

from gniazdo.corpus import read_documents
from gniazdo.demo import run_demo
from gniazdo.resources import sample_path


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    results = run_demo(out, progress=False, train_steps=30, sft_epochs=1, dpop_epochs=1)
    return out, results


def test_demo_pipeline_on_the_sample_corpus(demo):
    out, results = demo
    stats = results["pipeline"]
    truth = {t["id"]: t for t in map(json.loads, sample_path("ground_truth.jsonl").read_text().splitlines())}
    kept = list(read_documents([out / "corpus"]))
    ids = {d.meta["id"] for d in kept}
    assert ids and ids.isdisjoint({i for i, t in truth.items() if t["duplicate_of"]})  # exact copies never survive
    assert all(truth[i]["language"] == "pl" for i in ids)  # English and German are filtered out
    assert ids.isdisjoint({i for i, t in truth.items() if t["junk_kind"] == "too_short"})
    junk = {i for i, t in truth.items() if t["junk"] and t["junk_kind"] != "mojibake"}  # mojibake is repaired
    assert len(ids & junk) / len(ids) < 0.5 * len(junk) / len(truth)  # the filters at least halve the junk share
    pii_values = [p["value"] for t in truth.values() for p in t["pii"]]
    assert not any(v in d.text for d in kept for v in pii_values)  # all PII replaced
    assert all(d.meta["quality"] in ("HIGH", "MEDIUM", "LOW") and "words" in d.meta for d in kept)
    names = [s["name"] for s in stats["steps"]]
    assert names == ["read", "normalize", "anonymize", "language", "metrics", "quality", "heuristics", "exact_dedup",
                     "near_dedup"]
    language = stats["steps"][3]["dropped"]
    assert language.get("language_en", 0) + language.get("language_de", 0) >= 15
    assert set(stats["quality"]) <= {"HIGH", "MEDIUM", "LOW"} and abs(sum(stats["quality"].values()) - 1) < 1e-9
    assert (out / "corpus" / "sample.jsonl.zst").exists() and (out / "corpus" / "config.resolved.yaml").exists()


def test_demo_near_dedup_report(demo):
    _, results = demo
    scores = results["near_dedup"]
    assert set(scores) == {"minhash", "simhash", "cosine", "majority vote (pipeline)"}
    pipeline = scores["majority vote (pipeline)"]
    assert pipeline["true"] > 0 and pipeline["precision"] >= 0.95 and pipeline["recall"] >= 0.9


def test_demo_tokenizer_and_shards(demo):
    out, results = demo
    tok = results["tokenizer"]
    assert 1.0 < tok["fertility"] < 4.0
    assert tok["tokens"]["train"]["tokens"] > 10_000
    assert (out / "tokenizer" / "tokenizer.json").exists() and list((out / "shards").glob("train-*.tok"))


def test_demo_pretrains_and_exports(demo):
    out, results = demo
    training = results["training"]
    assert training["last_loss"] < training["first_loss"]
    assert training["architecture"] == "LlamaForCausalLM" and training["continuation"].strip()
    assert (out / "hf" / "model.safetensors").is_file() and (out / "hf" / "tokenizer.json").is_file()


def test_demo_training_config_file_matches_the_demo():
    """configs/train/tiny-cpu.yaml is the demo's run as a file: same model, data shape and optimiser."""
    from pathlib import Path

    import yaml

    from gniazdo.demo import demo_train_config

    path = Path(__file__).resolve().parents[1] / "configs" / "train" / "tiny-cpu.yaml"
    cfg, demo = yaml.safe_load(path.read_text()), demo_train_config(Path("x"), Path("y"), 200)
    assert cfg["model"] == demo["model"] and cfg["data"]["seq_len"] == demo["data"]["seq_len"]
    assert cfg["max_steps"] == demo["max_steps"] and cfg["optim"]["lr"] == demo["optim"]["lr"]


def test_demo_finetunes_and_aligns(demo):
    out, results = demo
    finetune = results["finetune"]
    assert list(finetune["answers"]) == ["before SFT", "after SFT", "after DPOP"]
    assert (out / "sft-hf" / "model.safetensors").is_file() and (out / "dpop-hf" / "model.safetensors").is_file()
    assert "reward_accuracy" in finetune["dpop"] and finetune["dpop"]["loss"] > 0
    config = (out / "dpop-hf" / "tokenizer_config.json").read_text(encoding="utf-8")
    assert "im_start" in config  # served with the ChatML template it was tuned on


def test_demo_evaluates_on_leaderboard_tasks(demo):
    out, results = demo
    board = results["eval"]
    assert (out / "eval" / "results.json").is_file() and (out / "eval" / "leaderboard.md").is_file()
    assert board  # one row per task and the averages


def test_demo_ends_with_the_commands_to_chat_with_its_model(demo):
    out, results = demo
    generate, serve = results["chat_commands"]
    assert generate.startswith("gniazdo generate --model ") and generate.endswith(" --chat")
    assert serve == f"gniazdo serve --model {out / 'dpop-hf'}"
