"""Shared fixtures of the preference-data tests (imported by each test module): a tiny tokenizer trained on the
sample corpus and a tiny random model saved with it, both built once per module."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import write_jsonl  # noqa: F401 (re-exported: the tests here import it from this package)

from gniazdo.resources import sample_path


@pytest.fixture(scope="session")
def tok_dir(tmp_path_factory) -> Path:
    from gniazdo.tokenizer import TokenizerTrainConfig, train_tokenizer

    out = tmp_path_factory.mktemp("prefs-tok") / "tok"
    return Path(train_tokenizer(TokenizerTrainConfig(corpus=[str(sample_path("corpus.jsonl"))], vocab_size=1000,
                                                     out=str(out), progress=False)))


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory, tok_dir) -> Path:
    """A tiny random Llama with O(1) weights (default init would give near-uniform, vacuous log-probs)."""
    import torch

    from gniazdo.model import Transformer, model_config, save_pretrained

    torch.manual_seed(0)
    model = Transformer(model_config("tiny", vocab_size=1000, dim=64, n_layers=2, n_heads=4, n_kv_heads=2,
                                     ffn_dim=128, max_seq_len=4096))
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1 + (1.0 if "norm" in name else 0.0))
    return save_pretrained(model, tmp_path_factory.mktemp("prefs-model") / "ref", tokenizer_dir=tok_dir)


def sample_records() -> list[dict]:
    with open(sample_path("preferences.jsonl"), encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
