"""Named model shapes: a starting point that any field can override (``model_config("1b", vocab_size=48000)``)."""

from __future__ import annotations

from typing import Any

from gniazdo.config import validate
from gniazdo.errors import UserError
from gniazdo.model.model import ModelConfig

PRESETS: dict[str, dict[str, Any]] = {
    # Smoke tests and CPU demos: ~6.5M parameters with an 8k vocabulary, embedding shared with the output.
    "tiny": dict(vocab_size=8192, dim=256, n_layers=6, n_heads=8, n_kv_heads=4, ffn_dim=688, max_seq_len=512,
                 tie_embeddings=True),
    # GPT-2-small-sized Llama (ffn ~ 8/3 * dim, as SwiGLU keeps the MLP's parameter count of a 4x GELU MLP).
    "125m": dict(vocab_size=32000, dim=768, n_layers=12, n_heads=12, ffn_dim=2048, max_seq_len=2048),
    # Llama-3.2-1B's body (16 layers, GQA 32/8, ffn 4 * dim): 1.1B parameters with a 32k vocabulary. (TinyLlama's
    # ffn 5632 would give only 0.85B at this depth.)
    "1b": dict(vocab_size=32000, dim=2048, n_layers=16, n_heads=32, n_kv_heads=8, ffn_dim=8192, max_seq_len=4096),
    # Mistral-7B-v0.1 (Llama sentencepiece ids: <s>=1, </s>=2, no pad).
    "mistral-7b": dict(arch="mistral", vocab_size=32000, dim=4096, n_layers=32, n_heads=32, n_kv_heads=8,
                       ffn_dim=14336, max_seq_len=32768, rope_theta=10000.0, sliding_window=4096,
                       bos_id=1, eos_id=2, pad_id=None),
    # Bielik 11B v2: Mistral-7B-v0.2 depth-upscaled to 50 layers; v0.2 dropped the sliding window and raised
    # rope_theta to 1e6. The vocabulary is Mistral's plus 128 added special tokens.
    "bielik-11b": dict(arch="mistral", vocab_size=32128, dim=4096, n_layers=50, n_heads=32, n_kv_heads=8,
                       ffn_dim=14336, max_seq_len=32768, rope_theta=1_000_000.0, sliding_window=None,
                       bos_id=1, eos_id=2, pad_id=None),
}


def model_config(name: str, **overrides: Any) -> ModelConfig:
    """The preset ``name`` with ``overrides`` applied; a bad name or field is a one-line UserError."""
    if name not in PRESETS:
        raise UserError(f"unknown model preset '{name}' (valid: {', '.join(PRESETS)})")
    return validate(ModelConfig, {**PRESETS[name], **overrides}, source=f"model preset '{name}'")
