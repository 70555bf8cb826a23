"""Turn a training checkpoint into a Hugging Face folder (``LlamaForCausalLM`` / ``MistralForCausalLM``) with
the tokenizer the shards were made with."""

from __future__ import annotations

from pathlib import Path

import torch.distributed.checkpoint as dcp

from gniazdo.errors import UserError
from gniazdo.model import ModelConfig, Transformer, save_pretrained
from gniazdo.train.checkpoint import latest_checkpoint, single_process_ok, verify_checkpoint


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint folder, or a run folder (its latest checkpoint)."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"checkpoint not found: {path}")
    if (path / "checkpoints").is_dir():
        found = latest_checkpoint(path / "checkpoints")
        if found is None:
            raise UserError(f"{path}: the run has no checkpoint yet")
        return found
    return path


def load_trained_model(checkpoint: str | Path) -> tuple[Transformer, dict]:
    """The model of a checkpoint (verified first), on CPU in fp32, and its trainer state."""
    path = resolve_checkpoint(checkpoint)
    state = verify_checkpoint(path)
    model = Transformer(ModelConfig(**state["model_config"]))
    sd = {"model": model.state_dict()}
    with single_process_ok():
        dcp.load(sd, checkpoint_id=str(path / "state"))
    model.load_state_dict(sd["model"])
    return model.eval(), state


def export_hf(checkpoint: str | Path, out: str | Path, tokenizer: str | Path | None = None,
              dtype: str | None = None) -> Path:
    """Write ``out`` loadable by ``transformers.AutoModelForCausalLM.from_pretrained``; the tokenizer is the
    one recorded in the checkpoint unless ``tokenizer`` names another folder."""
    model, state = load_trained_model(checkpoint)
    tok_dir = Path(tokenizer) if tokenizer else Path(state["tokenizer"]["path"]).parent
    if not (tok_dir / "tokenizer.json").is_file():
        raise UserError(f"tokenizer not found in {tok_dir} (give --tokenizer)")
    path = save_pretrained(model, out, dtype=dtype, tokenizer_dir=tok_dir)
    template = state.get("template")
    if template:  # a fine-tuned model is served with the chat template it was trained on
        from gniazdo.sft.templates import write_template

        write_template(path, template["name"] if isinstance(template, dict) else template)
    return path
