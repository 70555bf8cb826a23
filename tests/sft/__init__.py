"""Tests of gniazdo.sft. Helpers shared by the test modules (a tiny tokenizer, conversation files)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

_TOKENIZERS: dict[str, Path] = {}


def tiny_tokenizer(root: Path, template: str = "chatml") -> Path:
    """A 1000-token byte-level BPE trained on the sample corpus (once per session), with ``template``'s
    chat_template in its tokenizer_config.json."""
    from gniazdo.resources import sample_path
    from gniazdo.sft.templates import write_template
    from gniazdo.tokenizer import TokenizerTrainConfig, train_tokenizer

    if "base" not in _TOKENIZERS:
        cfg = TokenizerTrainConfig(corpus=[str(sample_path("corpus.jsonl"))], vocab_size=1000,
                                   out=str(root / "tok-base"), progress=False)
        _TOKENIZERS["base"] = train_tokenizer(cfg)
    if template not in _TOKENIZERS:
        out = root / f"tok-{template}"
        shutil.copytree(_TOKENIZERS["base"], out)
        write_template(out, template)
        _TOKENIZERS[template] = out
    return _TOKENIZERS[template]


def sample_conversations() -> list[dict]:
    from gniazdo.resources import sample_path

    with open(sample_path("instructions.jsonl"), encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def conv(*turns: str, system: str | None = None, weight: float | None = None) -> dict:
    """A conversation from alternating user/assistant texts."""
    messages = [{"role": "system", "content": system}] if system is not None else []
    messages += [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(turns)]
    return {"messages": messages} if weight is None else {"messages": messages, "weight": weight}
