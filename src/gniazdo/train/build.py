"""Building the model a run trains: from a preset or an HF checkpoint, sized to the shards' tokenizer, with
frozen parts and an optional ``torch.compile``."""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from gniazdo.errors import UserError
from gniazdo.model import ModelConfig, Transformer, from_pretrained, model_config
from gniazdo.train.config import TrainConfig
from gniazdo.train.data import PretrainData, StepData, WindowSource, open_shards, shards_meta


@dataclass
class RunData:
    meta: dict[str, Any]  # the data folder's meta.json (its tokenizer: path, sha256, vocab_size, eos_id)
    train: StepData
    val: Any | None  # a source for val_batches, or None
    seq_len: int  # positions per row (for FLOPs and the model's context check)
    where: str  # the data folder, for messages


def build_data(cfg: TrainConfig, rank: int, world: int) -> RunData:
    """Train and val data of the run's objective: token-shard windows (pretrain), SFT rows or preference pairs."""
    if cfg.objective == "pretrain":
        meta = shards_meta(cfg.data.shards)
        train = open_shards(cfg.data.shards, "train")
        if train is None:
            raise UserError(f"{cfg.data.shards}: no train-*.tok shards with tokens")
        if cfg.data.val_shards:
            check_tokenizer(meta, shards_meta(cfg.data.val_shards), cfg.data.val_shards)
        val = open_shards(cfg.data.val_shards or cfg.data.shards, "val")
        mask = cfg.data.document_masking
        return RunData(meta, PretrainData(train, cfg.data.seq_len, cfg.micro_batch_size, cfg.seed, rank, world, mask),
                       WindowSource(val, cfg.data.seq_len, mask) if val is not None else None, cfg.data.seq_len,
                       cfg.data.shards)
    from gniazdo.train.sources import PreferenceSource, SFTSource

    folder = Path(cfg.data.prepared)
    meta = _prepared_meta(folder)
    if cfg.objective == "sft":
        if meta.get("format") != "gniazdo-sft":
            raise UserError(f"{folder}: objective sft needs a `gniazdo sft prepare` folder")
        make = SFTSource
    else:
        if meta.get("format") != "gniazdo-prefs":
            raise UserError(f"{folder}: objective {cfg.objective} needs a `gniazdo prefs` folder")

        def make(f, split):
            return PreferenceSource(f, split, need_reference=cfg.objective != "orpo")
    train_source = make(folder, "train")
    val_source = make(folder, "val") if (folder / "val").is_dir() else None
    if val_source is not None and val_source.n_items == 0:
        val_source = None
    return RunData(meta, StepData(train_source, cfg.micro_batch_size, cfg.seed, rank, world), val_source,
                   int(meta["max_len"]) - 1, str(folder))


def _prepared_meta(folder: Path) -> dict[str, Any]:
    path = folder / "meta.json"
    if not path.is_file():
        raise UserError(f"{folder}: no meta.json (not a prepared fine-tuning folder)")
    return json.loads(path.read_text(encoding="utf-8"))


def build_model(cfg: TrainConfig, meta: dict[str, Any], seq_len: int) -> tuple[ModelConfig, Transformer]:
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
    if seq_len > model.cfg.max_seq_len:
        what = "data.seq_len" if cfg.objective == "pretrain" else "the prepared max_len"
        raise UserError(f"{what} {seq_len} is longer than the model's max_seq_len {model.cfg.max_seq_len}")
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
    model.segment_attention = False  # segment lengths differ every batch: compiled blocks would recompile
    for block in model.layers:
        block.compile()


def undo_compile(model: Transformer) -> None:
    model.segment_attention = True
    for block in model.layers:
        block._compiled_call_impl = None  # what nn.Module.compile() set; None restores the eager call
