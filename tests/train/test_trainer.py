"""The trainer on one CPU process: it learns, its step does not depend on how the batch is split, it resumes
exactly, it refuses bad input with one line."""

from __future__ import annotations

import json
import math
import shutil

import pytest
import torch

from gniazdo.config import validate
from gniazdo.errors import UserError
from gniazdo.train import TrainConfig, Trainer

from .conftest import train_config, train_losses


def make(tmp_path, shards, name="run", **over) -> Trainer:
    return Trainer(validate(TrainConfig, train_config(tmp_path / name, shards, **over)))


def test_loss_falls_and_outputs_are_written(tmp_path, shards):
    last = make(tmp_path, shards, max_steps=30, **{"eval.interval": 10, "checkpoint.interval": 10,
                                                   "log.plot": True}).fit()
    losses = train_losses(tmp_path / "run")
    assert sorted(losses) == list(range(1, 31))
    assert losses[30] < losses[1] - 0.4  # from ~ln(1000): a tiny model learns the frequent tokens first
    assert last["val_loss"] < math.log(1000)
    assert math.isclose(last["val_ppl"], math.exp(last["val_loss"]), rel_tol=1e-9)
    run = tmp_path / "run"
    assert (run / "config.resolved.yaml").is_file() and (run / "training.png").stat().st_size > 0
    kept = sorted(p.name for p in (run / "checkpoints").glob("step-*"))
    assert kept[-1] == "step-00000030" and len(kept) <= 3  # keep_last 2, plus the best
    rec = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rec if r["kind"] == "train"]
    assert all(r["tokens"] == 4 * 32 for r in train) and all(r["lr"] > 0 for r in train)
    assert {"grad_norm", "tokens_per_s", "data_wait_frac", "eta_s"} <= train[-1].keys()


def test_split_of_a_step_does_not_change_it(tmp_path, shards):
    """micro 4 x accum 1 == micro 2 x accum 2 == micro 1 x accum 4: the loss is normalised by the step's tokens."""
    runs = {}
    for mb, acc in ((4, 1), (2, 2), (1, 4)):
        make(tmp_path, shards, name=f"r{mb}", micro_batch_size=mb, grad_accum=acc, max_steps=4,
             **{"eval.interval": 0, "eval.at_end": False}).fit()
        runs[(mb, acc)] = train_losses(tmp_path / f"r{mb}")
    base = runs[(4, 1)]
    for other in runs.values():
        assert all(abs(other[s] - base[s]) < 1e-5 for s in base)


def test_resume_is_exact_in_process(tmp_path, shards):
    make(tmp_path, shards, name="full", max_steps=6).fit()
    full = train_losses(tmp_path / "full")
    make(tmp_path, shards, name="part", max_steps=6, **{"checkpoint.interval": 3}).fit()
    part = tmp_path / "part"
    shutil.rmtree(part / "checkpoints" / "step-00000006")
    (part / "checkpoints" / "latest").write_text("step-00000003\n")
    make(tmp_path, shards, name="part", max_steps=6).fit()
    assert train_losses(part) == full  # bit for bit, and no duplicated steps in metrics.jsonl


def test_corrupt_checkpoint_is_refused(tmp_path, shards):
    make(tmp_path, shards, max_steps=3).fit()
    ck = tmp_path / "run" / "checkpoints" / "step-00000003"
    victim = next(p for p in (ck / "state").iterdir() if p.suffix == ".distcp")
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    with pytest.raises(UserError, match="corrupt checkpoint: checksum of state/"):
        make(tmp_path, shards, max_steps=6)


def test_shards_of_another_tokenizer_are_refused(tmp_path, shards):
    make(tmp_path, shards, max_steps=3).fit()
    other = tmp_path / "other-shards"
    shutil.copytree(shards, other)
    meta = json.loads((other / "meta.json").read_text())
    meta["tokenizer"]["sha256"] = "0" * 64
    (other / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(UserError, match="another tokenizer"):
        Trainer(validate(TrainConfig, train_config(tmp_path / "run", other, max_steps=6)))


def test_config_errors_are_one_line(tmp_path, shards):
    with pytest.raises(UserError, match="unknown key 'optim.learning_rate'"):
        validate(TrainConfig, train_config(tmp_path, shards, **{"optim.learning_rate": 1.0}))
    with pytest.raises(UserError, match="give max_steps or epochs"):
        cfg = train_config(tmp_path, shards)
        del cfg["max_steps"]
        validate(TrainConfig, cfg)
    with pytest.raises(UserError, match="seq_len 512 is longer"):
        make(tmp_path, shards, **{"data.seq_len": 512})
    with pytest.raises(UserError, match="freeze: unknown part"):
        make(tmp_path, shards, freeze=["attention"])


def test_resume_never_refuses_to_overwrite(tmp_path, shards):
    make(tmp_path, shards, max_steps=3).fit()
    with pytest.raises(UserError, match="already holds checkpoints"):
        make(tmp_path, shards, **{"checkpoint.resume": "never"})


def test_freeze_keeps_parts_fixed(tmp_path, shards):
    t = make(tmp_path, shards, max_steps=2, freeze=["embeddings", "layers.0"], **{"eval.at_end": False})
    before = {k: v.clone() for k, v in t.raw.state_dict().items()}
    t.fit()
    after = t.raw.state_dict()
    assert torch.equal(before["embed_tokens.weight"], after["embed_tokens.weight"])
    assert torch.equal(before["layers.0.mlp.up_proj.weight"], after["layers.0.mlp.up_proj.weight"])
    assert not torch.equal(before["layers.1.mlp.up_proj.weight"], after["layers.1.mlp.up_proj.weight"])


def test_adaptive_lr_scales_with_target_share(tmp_path, shards):
    t = make(tmp_path, shards, max_steps=1, **{"loss.adaptive_lr": True, "schedule.kind": "constant",
                                                "schedule.warmup_steps": 0})
    batches, _ = t.data.next_step(1)
    batches[0].labels[:2] = -100  # half the rows learn nothing
    stats = t.train_step(batches)
    assert stats["targets"] == 2 * 32
    assert math.isclose(stats["lr"], 3e-3 * math.sqrt(0.5), rel_tol=1e-9)


def test_weighted_ce_normalisations(tmp_path, shards):
    from gniazdo.train.objective import CausalLM, token_losses

    t = make(tmp_path, shards, max_steps=1)
    batch = t.data.next_step(1)[0][0]
    batch.weights = torch.ones_like(batch.labels, dtype=torch.float32)
    batch.weights[0] = 3.0
    with torch.no_grad():
        ce = token_losses(t.model, batch)
        for weighting, expected in (("none", ce.sum() / ce.numel()),
                                    ("mean", (ce * batch.weights).sum() / batch.weights.sum()),
                                    ("openchat", (ce * batch.weights).sum() / ce.numel())):
            obj = CausalLM(weighting)
            got = obj.loss_sum(t.model, batch)[0] / obj.denominator(batch)
            assert torch.allclose(got, expected, rtol=1e-6), weighting


def test_document_masking_batches(tmp_path, shards):
    t = make(tmp_path, shards, max_steps=2, **{"data.document_masking": True})
    batch = t.data.next_step(1)[0][0]
    assert batch.document_ids is not None and batch.document_ids.shape == batch.input_ids.shape
    eos = t.meta["tokenizer"]["eos_id"]
    # a new document id starts right after each </s>
    rows, cols = torch.nonzero(batch.input_ids[:, :-1] == eos, as_tuple=True)
    assert all(batch.document_ids[r, c + 1] == batch.document_ids[r, c] + 1 for r, c in zip(rows, cols))
    t.fit()
