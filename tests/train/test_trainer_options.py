"""Trainer switches: precision, activation checkpointing, compile fall-back, continued pre-training from HF."""

from __future__ import annotations

import math

import pytest
import torch

from gniazdo.config import validate
from gniazdo.errors import UserError
from gniazdo.train import TrainConfig, Trainer

from .conftest import train_config, train_losses


def make(tmp_path, shards, name="run", **over) -> Trainer:
    over = {"max_steps": 3, "eval.at_end": False, "eval.interval": 0, **over}
    return Trainer(validate(TrainConfig, train_config(tmp_path / name, shards, **over)))


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_on_cpu(tmp_path, shards, precision):
    make(tmp_path, shards, precision=precision).fit()
    fp32 = tmp_path / "fp32"
    make(tmp_path, shards, name="fp32").fit()
    low, ref = train_losses(tmp_path / "run"), train_losses(fp32)
    assert all(math.isfinite(v) for v in low.values())
    assert abs(low[1] - ref[1]) < 0.05  # same weights, same batch: only rounding differs


def test_activation_checkpointing_changes_nothing(tmp_path, shards):
    make(tmp_path, shards, name="plain").fit()
    make(tmp_path, shards, name="ckpt", activation_checkpointing=True).fit()
    a, b = train_losses(tmp_path / "plain"), train_losses(tmp_path / "ckpt")
    assert all(abs(a[s] - b[s]) < 1e-6 for s in a)


def _broken_compile(model, mode):
    if mode is False:
        return

    def fail(*args, **kwargs):
        raise RuntimeError("inductor exploded")

    for block in model.layers:
        block._compiled_call_impl = fail


def test_compile_failure_is_an_error_unless_auto(tmp_path, shards, monkeypatch):
    import gniazdo.train.trainer as trainer_module

    monkeypatch.setattr(trainer_module, "maybe_compile", _broken_compile)
    with pytest.raises(UserError, match="torch.compile failed: inductor exploded"):
        make(tmp_path, shards, name="strict", compile=True).fit()
    make(tmp_path, shards, name="auto", compile="auto").fit()
    auto = [line for line in (tmp_path / "auto" / "metrics.jsonl").read_text().splitlines() if "inductor" in line]
    assert auto and "eager" in auto[0]
    make(tmp_path, shards, name="eager").fit()
    assert train_losses(tmp_path / "auto") == train_losses(tmp_path / "eager")


def test_continued_pretraining_from_hf(tmp_path, shards):
    """init_from an HF folder: the first loss is that HF model's loss on the first batch."""
    transformers = pytest.importorskip("transformers")
    import json

    vocab = json.loads((shards / "meta.json").read_text())["tokenizer"]["vocab_size"]
    torch.manual_seed(0)
    hf = transformers.LlamaForCausalLM(transformers.LlamaConfig(
        vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=128))
    hf.save_pretrained(tmp_path / "hf")
    t = make(tmp_path, shards, **{"model.init_from": str(tmp_path / "hf"), "model.preset": None, "max_steps": 1})
    batch = t.data.next_step(1)[0][0]
    t.data.position.index = 0
    with torch.no_grad():
        logits = hf(batch.input_ids).logits  # (HF's own `labels=` would shift our already-shifted labels again)
        expected = torch.nn.functional.cross_entropy(logits.flatten(0, 1), batch.labels.flatten()).item()
    t.fit()
    assert abs(train_losses(tmp_path / "run")[1] - expected) < 1e-4


def test_in_training_leaderboard_tasks(tmp_path, shards):
    """MC tasks scored on the live model through lm-eval, logged as eval lines and plotted; no checkpoint."""
    pytest.importorskip("lm_eval")
    import json

    from gniazdo.eval.tasks import SAMPLE_DATA_DIR

    t = make(tmp_path, shards, max_steps=2, **{"eval.tasks": ["8tags", "ppc"], "eval.tasks_interval": 1,
                                                "eval.tasks_limit": 3, "eval.tasks_data_dir": str(SAMPLE_DATA_DIR),
                                                "checkpoint.interval": 0, "log.plot": True})
    t.fit()
    rec = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    scored = [r for r in rec if r["kind"] == "eval" and "8tags/acc" in r]
    assert [r["step"] for r in scored] == [1]  # step 2 is the last: no task eval there unless at_end
    assert 0.0 <= scored[0]["8tags/acc"] <= 1.0 and 0.0 <= scored[0]["ppc/acc"] <= 1.0
    assert (tmp_path / "run" / "training.png").stat().st_size > 0
    assert not (tmp_path / "run" / "checkpoints" / "step-00000001").exists()
