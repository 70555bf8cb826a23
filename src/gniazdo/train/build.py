"""Building the model a run trains: from a preset or an HF checkpoint, sized to the shards' tokenizer, with
frozen parts and an optional ``torch.compile``."""

from __future__ import annotations

import re
import warnings
from typing import Any

from torch import nn

from gniazdo.errors import UserError
from gniazdo.model import ModelConfig, Transformer, from_pretrained, model_config
from gniazdo.train.config import TrainConfig


def build_model(cfg: TrainConfig, meta: dict[str, Any]) -> tuple[ModelConfig, Transformer]:
    """The model to train: ``model.init_from`` (continued pre-training, e.g. Mistral 7B -> Bielik) or a preset
    with ``model.overrides``; the vocabulary comes from the shards' tokenizer unless overridden."""
    tok = meta["tokenizer"]
    if cfg.model.init_from:
        model = from_pretrained(cfg.model.init_from, dtype="float32")
        model.train()
        if model.cfg.vocab_size < tok["vocab_size"]:
            raise UserError(f"{cfg.model.init_from}: vocabulary of {model.cfg.vocab_size} is smaller than the "
                            f"shards' tokenizer ({tok['vocab_size']})")
    else:
        if cfg.model.preset is None:
            raise UserError("model.preset or model.init_from is needed")
        overrides = {"vocab_size": tok["vocab_size"], "eos_id": tok["eos_id"], **cfg.model.overrides}
        model = Transformer(model_config(cfg.model.preset, **overrides))
    if cfg.data.seq_len > model.cfg.max_seq_len:
        raise UserError(f"data.seq_len {cfg.data.seq_len} is longer than the model's max_seq_len "
                        f"{model.cfg.max_seq_len}")
    return model.cfg, model


_LAYER_RANGE = re.compile(r"layers\.(\d+)(?:-(\d+))?$")


def apply_freeze(model: Transformer, specs: list[str]) -> None:
    """Freeze ``embeddings``, ``lm_head``, ``norm``, ``layers.N`` or ``layers.A-B`` (inclusive)."""
    for spec in specs:
        if spec == "embeddings":
            parts: list[nn.Module] = [model.embed_tokens]
        elif spec == "lm_head":
            if model.lm_head is None:
                warnings.warn("lm_head is tied to the embeddings: freezing lm_head freezes the embeddings too")
            parts = [model.lm_head if model.lm_head is not None else model.embed_tokens]
        elif spec == "norm":
            parts = [model.norm]
        elif m := _LAYER_RANGE.match(spec):
            lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
            if not 0 <= lo <= hi < len(model.layers):
                raise UserError(f"freeze: '{spec}' is outside layers 0-{len(model.layers) - 1}")
            parts = list(model.layers[lo:hi + 1])
        else:
            raise UserError(f"freeze: unknown part '{spec}' (valid: embeddings, lm_head, norm, layers.N, layers.A-B)")
        for part in parts:
            part.requires_grad_(False)
    if specs and not any(p.requires_grad for p in model.parameters()):
        raise UserError("freeze: every parameter is frozen, nothing would train")


def check_tokenizer(expected: dict[str, Any], got: dict[str, Any], where: str, what: str = "the train shards") -> None:
    """Refuse data made with another tokenizer than ``what`` was (the tokenizer file's sha256 differs)."""
    a, b = expected.get("tokenizer", {}).get("sha256"), got.get("tokenizer", {}).get("sha256")
    if a and b and a != b:
        raise UserError(f"{where}: shards were made with another tokenizer (sha256 {b[:12]}) than {what} "
                        f"({a[:12]})")


def maybe_compile(model: Transformer, mode: Any) -> None:
    """Compile each block in place (keeps parameter names, composes with FSDP2). Compilation happens at the
    first forward; ``undo_compile`` reverts to eager when ``compile: auto`` and that fails."""
    if mode is False:
        return
    for block in model.layers:
        block.compile()


def undo_compile(model: Transformer) -> None:
    for block in model.layers:
        block._compiled_call_impl = None  # what nn.Module.compile() set; None restores the eager call
