"""Shared helpers: a tiny checkpoint folder (model + tokenizer trained on the sample corpus)."""

from __future__ import annotations

from pathlib import Path

import torch

TINY = dict(dim=64, n_layers=2, n_heads=4, n_kv_heads=2, ffn_dim=128)


def tokenizer_dir(root: Path) -> Path:
    from gniazdo.resources import sample_path
    from gniazdo.tokenizer import TokenizerTrainConfig, train_tokenizer

    out = root / "tok"
    if not (out / "tokenizer.json").is_file():
        train_tokenizer(TokenizerTrainConfig(corpus=[str(sample_path("corpus.jsonl"))], vocab_size=1000,
                                             out=str(out), progress=False))
    return out


def randomize(model: torch.nn.Module, seed: int = 0, std: float = 0.2) -> torch.nn.Module:
    # The default init gives near-uniform logits: greedy choices would hang on rounding. O(1) logits instead.
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.randn(p.shape, generator=g) * std + (1.0 if "norm" in name else 0.0))
    return model


def checkpoint(root: Path, name: str = "model", seed: int = 0, **overrides) -> Path:
    """A saved tiny model (tied embeddings, 1000-token vocabulary) with its tokenizer and chat template."""
    from gniazdo.model import Transformer, model_config, save_pretrained

    tok = tokenizer_dir(root)
    model = randomize(Transformer(model_config("tiny", vocab_size=1000, **{**TINY, **overrides})), seed)
    return save_pretrained(model, root / name, tokenizer_dir=tok)
