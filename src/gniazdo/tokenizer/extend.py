"""Adapt an existing byte-level BPE tokenizer to Polish by appending new tokens (the Bielik v3 way).

Every existing token keeps its id; ``add`` new tokens, learned from a Polish corpus, and their merges are appended
after the highest existing id (special tokens included), so a model's embedding matrix only has to grow. Next to
the new ``tokenizer.json`` goes ``new_tokens.json``: for each new id, the old ids its text splits into with the
base tokenizer, to initialise the new embedding rows as the mean of those rows.

How: train a plain BPE (HF ``tokenizers``) on the corpus with the base's normalizer and pre-tokenizer, then walk
its merges in order, keeping those whose result is not in the base vocabulary and whose two parts already exist
(in the base or added before). Merges appended last have the lowest priority, so a kept token can be unreachable
(the base's own merges split its text differently); such tokens are dropped and the walk repeated, so every added
token at least encodes its own text to itself.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any, Iterable

from tokenizers import Tokenizer, pre_tokenizers, trainers

from gniazdo.errors import UserError
from gniazdo.fileio import write_json_atomic

_WORD = re.compile(r"\w+")
_COPIED = ("tokenizer_config.json", "special_tokens_map.json")
_MAX_PRUNE_ROUNDS = 12
_MAX_RETRAINS = 3


def fertility(tokenizer: Tokenizer, texts: Iterable[str]) -> float:
    """Tokens per ``\\w+`` word over ``texts`` (no special tokens added); 0.0 when there are no words."""
    texts = list(texts)
    words = sum(len(_WORD.findall(t)) for t in texts)
    if not words:
        return 0.0
    tokens = sum(len(e.ids) for e in tokenizer.encode_batch(texts, add_special_tokens=False))
    return tokens / words


def _load_base(base_dir: str | Path) -> tuple[Path, dict[str, Any]]:
    base = Path(base_dir)
    path = base if base.is_file() else base / "tokenizer.json"
    if not path.exists():
        if base.is_dir() and (base / "tokenizer.model").exists():
            raise UserError(f"{base}: only a SentencePiece tokenizer.model; extending SentencePiece tokenizers "
                            "(Mistral, Llama 2) is not supported yet, only HF byte-level BPE tokenizer.json")
        raise UserError(f"{path}: no tokenizer.json")
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{path}: not a readable tokenizer.json ({e})") from e
    model = spec.get("model") or {}
    if model.get("type") != "BPE" or not isinstance(model.get("vocab"), dict):
        raise UserError(f"{path}: model type {model.get('type')!r}; only BPE tokenizers can be extended")
    if model.get("continuing_subword_prefix") or model.get("end_of_word_suffix"):
        raise UserError(f"{path}: BPE with subword prefix/suffix is not supported, only byte-level BPE")
    if "ByteLevel" not in json.dumps(spec.get("pre_tokenizer")):
        raise UserError(f"{path}: pre-tokenizer is not byte-level; only byte-level BPE tokenizers "
                        "(GPT-2, Llama 3, Qwen style) can be extended")
    return path, spec


def _train_merges(spec: dict[str, Any], corpus: list[str], vocab_size: int) -> list[tuple[str, str]]:
    """Merges, in order, of a fresh BPE trained on ``corpus`` with the base's normalizer and pre-tokenizer."""
    blank = {k: spec.get(k) for k in ("normalizer", "pre_tokenizer", "decoder")}
    blank.update(version="1.0", truncation=None, padding=None, added_tokens=[], post_processor=None,
                 model={"type": "BPE", "vocab": {}, "merges": []})
    tok = Tokenizer.from_str(json.dumps(blank))
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus, trainer=trainer)
    merges = json.loads(tok.to_str())["model"]["merges"]
    return [tuple(m) if isinstance(m, list) else tuple(m.split(" ", 1)) for m in merges]


def _select(merges: list[tuple[str, str]], known: set[str], banned: set[str], n: int) -> list[tuple[str, str]]:
    """The first ``n`` merges (in training order) that make a new token from reachable parts."""
    added: set[str] = set()
    out = []
    for a, b in merges:
        result = a + b
        if result in known or result in added or result in banned:
            continue
        if (a in known or a in added) and (b in known or b in added):
            added.add(result)
            out.append((a, b))
            if len(out) == n:
                break
    return out


def _extended(spec: dict[str, Any], chosen: list[tuple[str, str]], first_id: int) -> dict[str, Any]:
    model = spec["model"]
    pairs = model["merges"] and isinstance(model["merges"][0], list)
    vocab = dict(model["vocab"])
    for i, (a, b) in enumerate(chosen):
        vocab[a + b] = first_id + i
    new_merges = [[a, b] if pairs else f"{a} {b}" for a, b in chosen]
    return {**spec, "model": {**model, "vocab": vocab, "merges": list(model["merges"]) + new_merges}}


def extend_tokenizer(base_dir: str | Path, corpus: list[str], add: int, out_dir: str | Path,
                     limit_docs: int | None = None) -> dict[str, Any]:
    """Append up to ``add`` tokens learned from ``corpus`` to the byte-level BPE tokenizer in ``base_dir``.

    Writes ``out_dir/tokenizer.json``, ``out_dir/new_tokens.json`` ({new id: [old ids]}) and copies
    tokenizer_config.json / special_tokens_map.json when present. Returns a report: sizes, the id range of the
    new tokens and the corpus fertility (tokens per word) before and after.
    """
    if add < 1:
        raise UserError(f"add must be at least 1 (got {add})")
    base_path, spec = _load_base(base_dir)
    out = Path(out_dir)
    if out.resolve() == base_path.parent.resolve():
        raise UserError(f"{out}: output directory must differ from the base tokenizer's directory")
    corpus = [t for t in (corpus[:limit_docs] if limit_docs is not None else corpus) if t]
    if not corpus:
        raise UserError("empty corpus: nothing to learn new tokens from")

    base_tok = Tokenizer.from_str(json.dumps(spec))
    vocab: dict[str, int] = spec["model"]["vocab"]
    specials = spec.get("added_tokens") or []
    known = set(vocab) | {t["content"] for t in specials}
    first_id = max([*vocab.values(), *(t["id"] for t in specials)]) + 1

    size = 256 + 4 * add + 1000
    banned: set[str] = set()
    for _ in range(_MAX_RETRAINS + 1):
        merges = _train_merges(spec, corpus, size)
        for _ in range(_MAX_PRUNE_ROUNDS):
            chosen = _select(merges, known, banned, add)
            new_spec = _extended(spec, chosen, first_id)
            new_tok = Tokenizer.from_str(json.dumps(new_spec))
            unreachable = {a + b for a, b in chosen
                           if [t.id for t in new_tok.model.tokenize(a + b)] != [new_spec["model"]["vocab"][a + b]]}
            if not unreachable:
                break
            banned |= unreachable
        exhausted = len(merges) < size - 256  # the trainer ran out of pairs: a bigger vocab brings nothing new
        if len(chosen) == add or exhausted:
            break
        size *= 2
    if unreachable:  # pruning rounds ran out: drop the rest, and whatever was built from them
        kept: set[str] = set()
        for a, b in chosen:
            if a + b not in unreachable and (a in known or a in kept) and (b in known or b in kept):
                kept.add(a + b)
        chosen = [(a, b) for a, b in chosen if a + b in kept]
    new_spec = _extended(spec, chosen, first_id)
    new_tok = Tokenizer.from_str(json.dumps(new_spec))

    decomposition = {str(first_id + i): [t.id for t in base_tok.model.tokenize(a + b)]
                     for i, (a, b) in enumerate(chosen)}
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "tokenizer.json", new_spec)  # the base file, edited: keeps its merges format
    write_json_atomic(out / "new_tokens.json", decomposition)
    for name in _COPIED:
        if (base_path.parent / name).exists():
            shutil.copyfile(base_path.parent / name, out / name)

    return {
        "base": str(base_path),
        "out_dir": str(out),
        "base_vocab_size": base_tok.get_vocab_size(with_added_tokens=True),
        "vocab_size": new_tok.get_vocab_size(with_added_tokens=True),
        "requested": add,
        "added": len(chosen),
        "first_new_id": first_id,
        "last_new_id": first_id + len(chosen) - 1,
        "dropped_unreachable": len(banned),
        "docs": len(corpus),
        "fertility_before": round(fertility(base_tok, corpus), 4),
        "fertility_after": round(fertility(new_tok, corpus), 4),
        "examples": [new_tok.decode([first_id + i]) for i in range(min(20, len(chosen)))],
    }
