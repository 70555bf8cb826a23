"""SFT on the trainer: packed rows give each conversation's own per-token losses, weights scale the loss as
specified, resume mid-epoch is exact, the exported model carries its chat template."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from gniazdo.config import validate
from gniazdo.resources import sample_path
from gniazdo.train import TrainConfig, Trainer
from gniazdo.train.objective import CausalLM, token_losses
from gniazdo.train.sources import SFTSource

from .conftest import TINY_MODEL, train_losses, with_overrides


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, shards):
    """Packed and unpacked SFT folders of the sample instructions, with the train fixtures' tokenizer."""
    from gniazdo.sft import SFTPrepareConfig, prepare_sft

    tok = json.loads((shards / "meta.json").read_text())["tokenizer"]["path"]
    root = tmp_path_factory.mktemp("sft")
    out = {}
    for pack in (True, False):
        out[pack] = root / ("packed" if pack else "plain")
        prepare_sft(SFTPrepareConfig(tokenizer=str(tok).removesuffix("/tokenizer.json"),
                                     data=[str(sample_path("instructions.jsonl"))], out=str(out[pack]), max_len=256,
                                     pack=pack, val_fraction=0.1, seed=0, progress=False))
    return out


def sft_config(out, prepared, **over) -> TrainConfig:
    cfg = {"objective": "sft", "out": str(out), "device": "cpu", "seed": 5, "micro_batch_size": 2, "max_steps": 6,
           "model": {"preset": "tiny", "overrides": {**TINY_MODEL, "max_seq_len": 256}},
           "data": {"prepared": str(prepared)}, "optim": {"lr": 2e-3}, "schedule": {"warmup_steps": 1},
           "eval": {"interval": 3, "batches": 2}, "checkpoint": {"interval": 3},
           "log": {"interval": 1, "console": False, "plot": False}}
    return validate(TrainConfig, with_overrides(cfg, **over))


def test_packed_row_equals_each_conversation_alone(tmp_path, prepared):
    t = Trainer(sft_config(tmp_path / "run", prepared[True]))
    source = SFTSource(prepared[True])
    row = max(range(source.n_items), key=lambda i: len(set(source.data.row(i)["document_ids"])))
    r = source.data.row(row)
    assert len(set(r["document_ids"])) >= 2
    t.raw.eval()
    with torch.no_grad():
        packed = token_losses(t.raw, source.batch(np.array([row])))[0]
        n = len(r["input_ids"])
        for doc in np.unique(r["document_ids"]):
            where = np.flatnonzero(r["document_ids"] == doc)
            alone_ids = torch.from_numpy(r["input_ids"][where])[None]
            logits = t.raw(alone_ids)
            labels = torch.from_numpy(r["labels"][where])
            alone = torch.nn.functional.cross_entropy(logits[0], labels, ignore_index=-100, reduction="none")
            assert torch.allclose(packed[:n][where], alone, atol=1e-5)


def test_masking_and_weights_scale_losses(tmp_path, prepared):
    t = Trainer(sft_config(tmp_path / "run", prepared[False]))
    batch = t.data.next_step(1)[0][0]
    learned = batch.labels != -100
    assert learned.any() and (~learned).any() and (batch.weights[~learned] == 0).all()
    batch.weights[0] *= 3.0
    with torch.no_grad():
        ce = token_losses(t.model, batch)
        w = batch.weights * learned
        got = {k: (CausalLM(k).loss_sum(t.model, batch)[0] / CausalLM(k).denominator(batch)).item()
               for k in ("none", "mean", "openchat")}
    assert got["none"] == pytest.approx((ce * learned).sum().item() / learned.sum().item(), rel=1e-6)
    assert got["mean"] == pytest.approx((ce * w).sum().item() / w.sum().item(), rel=1e-6)
    assert got["openchat"] == pytest.approx((ce * w).sum().item() / learned.sum().item(), rel=1e-6)


@pytest.mark.parametrize("pack", [True, False])
def test_sft_resume_mid_epoch_is_exact(tmp_path, prepared, pack):
    full = tmp_path / "full"
    Trainer(sft_config(full, prepared[pack], **{"loss.weighting": "mean", "loss.adaptive_lr": True})).fit()
    part = tmp_path / "part"
    Trainer(sft_config(part, prepared[pack], **{"loss.weighting": "mean", "loss.adaptive_lr": True})).fit()
    shutil.rmtree(part / "checkpoints" / "step-00000006")
    (part / "checkpoints" / "latest").write_text("step-00000003\n")
    t = Trainer(sft_config(part, prepared[pack], **{"loss.weighting": "mean", "loss.adaptive_lr": True}))
    assert t.step == 3 and t.data.position.epoch == 0 and 0 < t.data.position.index < t.data.n_items
    t.fit()
    assert train_losses(part) == train_losses(full)


def test_sft_export_carries_the_template(tmp_path, prepared):
    transformers = pytest.importorskip("transformers")
    from gniazdo.train import export_hf

    Trainer(sft_config(tmp_path / "run", prepared[True], max_steps=2)).fit()
    out = export_hf(tmp_path / "run", tmp_path / "hf")
    tok = transformers.AutoTokenizer.from_pretrained(str(out))
    text = tok.apply_chat_template([{"role": "user", "content": "Hej"}], tokenize=False, add_generation_prompt=True)
    assert text == "<|im_start|>user\nHej<|im_end|>\n<|im_start|>assistant\n"
