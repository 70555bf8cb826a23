"""Shared fixtures for trainer tests: token shards of the package's sample corpus and a tiny model config."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from gniazdo.resources import sample_path

TINY_MODEL = {"dim": 64, "n_layers": 2, "n_heads": 4, "n_kv_heads": 2, "ffn_dim": 128, "max_seq_len": 128}


@pytest.fixture(scope="session")
def shards(tmp_path_factory) -> Path:
    from gniazdo.shards import tokenize_corpus
    from gniazdo.tokenizer import TokenizerTrainConfig, train_tokenizer

    root = tmp_path_factory.mktemp("train-data")
    tok = train_tokenizer(TokenizerTrainConfig(corpus=[str(sample_path("corpus.jsonl"))], vocab_size=1000,
                                               out=str(root / "tok"), progress=False))
    tokenize_corpus(tok, [str(sample_path("corpus.jsonl"))], root / "shards", val_fraction=0.05, seed=0)
    return root / "shards"


def train_config(out: Path, shards: Path, **over) -> dict:
    """A complete tiny pre-training config as a dict (fp32, CPU, deterministic)."""
    cfg = {"out": str(out), "device": "cpu", "seed": 3, "micro_batch_size": 4, "max_steps": 6,
           "model": {"preset": "tiny", "overrides": dict(TINY_MODEL)},
           "data": {"shards": str(shards), "seq_len": 32},
           "optim": {"lr": 3e-3}, "schedule": {"warmup_steps": 2},
           "eval": {"interval": 3, "batches": 2}, "checkpoint": {"interval": 3},
           "log": {"interval": 1, "console": False, "plot": False}}
    return with_overrides(cfg, **over)


def with_overrides(cfg: dict, **over) -> dict:
    """``cfg`` with dotted keys set (``**{"optim.lr": 1e-3}``), creating sections as needed."""
    for key, value in over.items():
        node = cfg
        *path, last = key.split(".")
        for p in path:
            node = node.setdefault(p, {})
        node[last] = value
    return cfg


def write_config(path: Path, cfg: dict) -> Path:
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def train_losses(out: Path) -> dict[int, float]:
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text(encoding="utf-8").splitlines() if x]
    return {r["step"]: r["loss"] for r in lines if r["kind"] == "train"}


def gniazdo_cmd() -> list[str]:
    return [sys.executable, "-m", "gniazdo"]
