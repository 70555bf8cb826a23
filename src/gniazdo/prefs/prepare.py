"""``gniazdo prefs prepare``: preference pairs → memory-mappable token sequences, done once, offline.

    from gniazdo.prefs import prepare_prefs
    meta = prepare_prefs("tok/pl32k", ["prefs.jsonl"], "prefs/", max_len=1024, template="chatml")

Input: JSONL (.gz/.zst too), one pair a line (the format of ``resources/sample/preferences.jsonl``)::

    {"prompt": "Jaka jest stolica Australii?", "chosen": "Canberra ...", "rejected": "Sydney ..."}
    {"messages": [{"role": "system", ...}, {"role": "user", ...}, ...], "chosen": "...", "rejected": "..."}

``chosen``/``rejected`` are assistant replies; ``messages`` is the conversation so far and ends with a user turn
(``prompt`` may come with an optional ``system``). Other keys are ignored. A bad record is a one-line UserError
naming file:line, or (``strict=False``) skipped and counted by reason.

Each pair becomes two sequences, prompt + chosen and prompt + rejected, rendered by the chat template
(:mod:`gniazdo.sft.templates`: the whole text is tokenized at once, as a server would). The learned tokens are the
final answer and its end marker only (earlier assistant turns are context); the sequence ends there. The prompt
tokens of both sequences are identical (a pair whose prompts tokenize differently, e.g. an answer starting with
a line break that merges into the header, is dropped and counted). Longer than ``max_len``: ``drop`` the pair, or
``truncate_prompt``: keep the last ``max_len - longest answer`` prompt tokens (dropped after all when the answer
alone does not fit). A pair goes to val when a hash of its prompt and the seed falls below ``val_fraction``: all
pairs of one prompt land in the same split, so val never sees a training prompt.

Output (read with :class:`~gniazdo.prefs.dataset.PreferenceDataset`)::

    out/meta.json  out/config.resolved.yaml
    out/{train,val}/tokens.npy   uint16 (vocab <= 65,536) or uint32: all sequences back to back
                    learn.npy    uint8 per token: 1 on the answer and its end marker
                    pairs.npy    int64 [n, 4]: chosen start, chosen end, rejected start, rejected end
                    texts.jsonl  {"prompt", "chosen", "rejected"} per pair: the rendered text (after truncation);
                                 prompt + answer is what a reference server is sent, the answer part is learned

The text lives beside the tokens (rather than being re-rendered from the source JSONL later) so a reference
server sees exactly the pairs that were kept, truncated the same way, even when the inputs have moved.
The folder is built under a temp name next to ``out`` and swapped into place whole (a killed run leaves the old
one intact; a re-run drops reference log-probs computed for the old data).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from gniazdo.errors import UserError
from gniazdo.prefs.dataset import FORMAT, VERSION
from gniazdo.prepared import build_folder, special_token_id

TRUNCATION = ("drop", "truncate_prompt")
BATCH = 128  # pairs per tokenizer call (their texts are encoded in parallel)


# -- reading ----------------------------------------------------------------------------------------------
def parse_pair(rec: Any) -> tuple[list[dict[str, str]], str, str]:
    """A record → (prompt messages, chosen, rejected); raises ``BadRecord`` with a short reason."""
    from gniazdo.sft.conversations import BadRecord, validate_conversation

    if not isinstance(rec, dict):
        raise BadRecord("not_an_object", f"expected a JSON object, got {type(rec).__name__}")
    for key in ("chosen", "rejected"):
        if not isinstance(rec.get(key), str) or not rec[key].strip():
            raise BadRecord("bad_answer", f"'{key}' must be a non-empty string")
    if ("prompt" in rec) == ("messages" in rec):
        raise BadRecord("no_prompt", "needs exactly one of 'prompt' and 'messages' "
                                     f"(keys: {', '.join(sorted(rec))})")
    if "prompt" in rec:
        if not isinstance(rec["prompt"], str) or not rec["prompt"].strip():
            raise BadRecord("bad_prompt", "'prompt' must be a non-empty string")
        system = rec.get("system")
        if system is not None and not isinstance(system, str):
            raise BadRecord("bad_prompt", "'system' must be a string")
        messages = ([{"role": "system", "content": system}] if system else []) + \
                   [{"role": "user", "content": rec["prompt"]}]
    else:
        messages = rec["messages"]
        if not isinstance(messages, list) or not messages:
            raise BadRecord("bad_prompt", "'messages' must be a non-empty list")
        # the conversation's own checks (roles, text content), with the chosen answer as its assistant turn
        validate_conversation({"messages": [*messages, {"role": "assistant", "content": rec["chosen"]}]})
        if messages[-1]["role"] != "user":
            raise BadRecord("bad_prompt", f"'messages' must end with a user turn, not {messages[-1]['role']}")
        messages = [{"role": m["role"], "content": m["content"]} for m in messages]
    if rec["chosen"] == rec["rejected"]:
        raise BadRecord("identical", "'chosen' and 'rejected' are the same text")
    return messages, rec["chosen"], rec["rejected"]


def read_pairs(files: Sequence[Path], strict: bool, bad: list[Counter]) -> Iterator[tuple[Any, int, int]]:
    """(parsed pair, file index, line number) for every valid record; bad ones raise (strict) or are counted."""
    from gniazdo.fileio import iter_lines
    from gniazdo.sft.conversations import BadRecord

    for f, path in enumerate(files):
        for line_no, raw in enumerate(iter_lines(path), 1):
            if not raw.strip():
                continue
            try:
                try:
                    rec = json.loads(raw)
                except (ValueError, UnicodeDecodeError) as e:
                    raise BadRecord("bad_json", f"not valid JSON ({str(e).splitlines()[0]})") from None
                yield parse_pair(rec), f, line_no
            except BadRecord as e:
                if strict:
                    raise UserError(f"{path}:{line_no}: {e}") from None
                bad[f][e.reason] += 1


# -- one pair -------------------------------------------------------------------------------------------------
class _Sequence:
    """One rendered sequence cut into prompt and answer, in tokens and in characters."""

    def __init__(self, text: str, answer: tuple[int, int], ids: Sequence[int], offsets: Sequence[tuple[int, int]]):
        starts = np.fromiter((o[0] for o in offsets), dtype=np.int64, count=len(offsets))
        a, b = answer
        # the template cuts tokens at the answer's edges, so the answer is exactly the tokens starting in [a, b)
        self.p = int(np.searchsorted(starts, a, side="left"))
        end = int(np.searchsorted(starts, b, side="left"))
        self.ids = np.asarray(ids, dtype=np.int64)
        self.prompt_ids, self.answer_ids = self.ids[:self.p], self.ids[self.p:end]
        self.starts = starts
        self.prompt_text, self.answer_text = text[:a], text[a:b]


def _pair(template, tokenizer, pairs: list[tuple[list, str, str]]) -> list[tuple[_Sequence, _Sequence] | str]:
    """Render and tokenize pairs: (chosen, rejected) sequences, or the reason a pair can't be used."""
    from gniazdo.sft.conversations import BadRecord

    out: list[Any] = []
    rendered: list[tuple[str, tuple[int, int]]] = []
    for messages, chosen, rejected in pairs:
        try:
            r = [template.render_text([*messages, {"role": "assistant", "content": ans}])
                 for ans in (chosen, rejected)]
        except BadRecord as e:  # valid record, but this template can't format it (markers, turn order)
            out.append(e)
            continue
        rendered.extend((text, spans[-1]) for text, spans in r)  # the last span is the answer being judged
        out.append(None)
    encs = iter(tokenizer.encode_batch([t for t, _ in rendered], add_special_tokens=False))
    spans = iter(rendered)
    result: list[Any] = []
    for item in out:
        if item is not None:
            result.append(item)
            continue
        seqs = []
        for _ in range(2):
            enc, (text, span) = next(encs), next(spans)
            seqs.append(_Sequence(text, span, enc.ids, enc.offsets))
        c, r = seqs
        same = c.prompt_text == r.prompt_text and np.array_equal(c.prompt_ids, r.prompt_ids)
        result.append((c, r) if same else "dropped_prompt_differs")
    return result


# -- writing --------------------------------------------------------------------------------------------------
class _SplitWriter:
    """A split's arrays, appended to raw temp files as pairs come (nothing big stays in memory), then turned
    into .npy files."""

    def __init__(self, folder: Path, dtype: np.dtype) -> None:
        folder.mkdir(parents=True)
        self.folder, self.dtype = folder, dtype
        self.tokens = open(folder / ".tokens.raw", "wb")
        self.learn = open(folder / ".learn.raw", "wb")
        self.texts = open(folder / "texts.jsonl", "w", encoding="utf-8")
        self.pairs: list[tuple[int, int, int, int]] = []
        self.n = 0
        self.learned = 0

    def _add(self, prompt: np.ndarray, answer: np.ndarray) -> tuple[int, int]:
        start = self.n
        self.tokens.write(np.concatenate([prompt, answer]).astype(self.dtype).tobytes())
        self.learn.write(np.concatenate([np.zeros(len(prompt), np.uint8), np.ones(len(answer), np.uint8)]).tobytes())
        self.n += len(prompt) + len(answer)
        self.learned += len(answer)
        return start, self.n

    def add(self, prompt: np.ndarray, prompt_text: str, chosen: _Sequence, rejected: _Sequence) -> None:
        self.pairs.append((*self._add(prompt, chosen.answer_ids), *self._add(prompt, rejected.answer_ids)))
        self.texts.write(json.dumps({"prompt": prompt_text, "chosen": chosen.answer_text,
                                     "rejected": rejected.answer_text}, ensure_ascii=False) + "\n")

    def close(self) -> dict[str, int]:
        for f in (self.tokens, self.learn, self.texts):
            f.close()
        for name, dtype in (("tokens", self.dtype), ("learn", np.uint8)):
            raw = self.folder / f".{name}.raw"
            data = np.fromfile(raw, dtype=dtype)
            np.save(self.folder / f"{name}.npy", data)
            del data
            raw.unlink()
        np.save(self.folder / "pairs.npy", np.asarray(self.pairs, dtype=np.int64).reshape(-1, 4))
        return {"pairs": len(self.pairs), "tokens": self.n, "learned_tokens": self.learned}


def _settings(tok_sha: str, file_shas: list[str], **kw: Any) -> dict[str, Any]:
    """What decides the prepared data: equal settings → an existing folder can be reused."""
    return {"tokenizer_sha256": tok_sha, "data_sha256": file_shas, **kw}


def _reusable(out: Path, settings: dict[str, Any]) -> dict[str, Any] | None:
    try:
        meta = json.loads((out / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("version") != VERSION:
        return None
    if meta.get("settings") != settings:
        return None
    if not all((out / s / "pairs.npy").is_file() for s in ("train", "val")):
        return None
    return meta


# -- the whole preparation ------------------------------------------------------------------------------------
def prepare_prefs(tokenizer_dir: str | Path, data_files: Sequence[str | Path], out: str | Path, max_len: int = 1024,
                  template: str = "chatml", val_fraction: float = 0.0, seed: int = 0, truncation: str = "drop",
                  strict: bool = True, reuse: bool = False, progress: bool = True) -> dict[str, Any]:
    """Render, tokenize, mask, truncate and split preference pairs into ``out``; returns meta.json's content.

    ``reuse``: when ``out`` already holds a folder prepared from the same data (by content) with the same
    tokenizer and settings, keep it (and its reference log-probs) and return its meta.
    """
    from gniazdo.config import save_resolved
    from gniazdo.corpus import expand_inputs
    from gniazdo.fileio import write_json_atomic
    from gniazdo.sft.templates import get_template
    from gniazdo.shards.format import dtype_for
    from gniazdo.shards.mixture import unit_hash
    from gniazdo.shards.writer import _load_tokenizer, sha256_of

    if truncation not in TRUNCATION:
        raise UserError(f"unknown truncation '{truncation}' (valid: {', '.join(TRUNCATION)})")
    if max_len < 8:
        raise UserError(f"max_len must be at least 8, got {max_len}")
    if not 0.0 <= val_fraction < 1.0:
        raise UserError(f"val_fraction must be in [0, 1), got {val_fraction}")
    chat = get_template(template)
    tokenizer, tok_file = _load_tokenizer(tokenizer_dir)
    chat.check_tokenizer(tokenizer, where=str(tok_file))
    vocab_size = tokenizer.get_vocab_size(with_added_tokens=True)
    dtype = dtype_for(vocab_size)
    files = expand_inputs([str(f) for f in data_files], explicit_format=True)
    tok_sha = sha256_of(tok_file)
    settings = _settings(tok_sha, [sha256_of(f) for f in files], template=template, max_len=max_len,
                         truncation=truncation, val_fraction=val_fraction, seed=seed, strict=strict)
    out = Path(out)
    if reuse and (meta := _reusable(out, settings)) is not None:
        return meta
    with build_folder(out, FORMAT, "gniazdo prefs prepare") as tmp:
        writers = {s: _SplitWriter(tmp / s, dtype) for s in ("train", "val")}
        counts: Counter = Counter()
        bad = [Counter() for _ in files]
        batch: list[tuple[Any, int, int]] = []

        def flush() -> None:
            for (pair, f, line_no), res in zip(batch, _pair(chat, tokenizer, [p for p, _, _ in batch])):
                if not isinstance(res, tuple):  # a reason: a BadRecord from the template, or a dropped pair
                    if isinstance(res, str):
                        counts[res] += 1
                    elif strict:
                        raise UserError(f"{files[f]}:{line_no}: {res}")
                    else:  # counted as a bad record, not as a read pair
                        bad[f][res.reason] += 1
                        counts["read"] -= 1
                    continue
                c, r = res
                prompt, prompt_text = c.prompt_ids, c.prompt_text
                longest = max(len(c.answer_ids), len(r.answer_ids))
                if len(prompt) + longest > max_len:
                    keep = max_len - longest
                    if truncation == "drop" or keep < 1:
                        counts["dropped_too_long"] += 1
                        continue
                    # the text of the kept tokens starts where the first kept token starts
                    prompt_text = prompt_text[int(c.starts[len(prompt) - keep]):]
                    prompt = prompt[len(prompt) - keep:]
                    counts["truncated_prompt"] += 1
                split = "val" if unit_hash(seed, "prefs-val", c.prompt_text) < val_fraction else "train"
                writers[split].add(prompt, prompt_text, c, r)
                counts["kept"] += 1
            batch.clear()

        with _progress(progress) as bar:
            task = bar.add_task("tokenizing pairs", total=None)
            for item in read_pairs(files, strict, bad):
                counts["read"] += 1
                batch.append(item)
                if len(batch) == BATCH:
                    flush()
                    bar.advance(task, BATCH)
            flush()
        splits = {s: w.close() for s, w in writers.items()}
        if not counts["kept"]:
            raise UserError(f"no preference pairs left in {', '.join(map(str, files))}: "
                            f"{counts['dropped_too_long']} too long (max_len {max_len}), "
                            f"bad records {dict(sum(bad, Counter())) or 0}")
        all_bad = sum(bad, Counter())
        meta = {
            "format": FORMAT, "version": VERSION,
            "tokenizer": {"path": str(tok_file), "sha256": tok_sha, "vocab_size": vocab_size,
                          "pad_id": special_token_id(tokenizer, tok_file, "pad_token", "<pad>"),
                          "eos_id": special_token_id(tokenizer, tok_file, "eos_token", "</s>")},
            "template": {"name": chat.name, "end_token": chat.end_token, "end_id": chat.end_id(tokenizer),
                         "chat_template": chat.chat_template},
            "dtype": np.dtype(dtype).name, "max_len": max_len, "truncation": truncation,
            "val_fraction": val_fraction, "seed": seed,
            "counts": {"read": counts["read"] + sum(all_bad.values()), "kept": counts["kept"],
                       "train": splits["train"]["pairs"], "val": splits["val"]["pairs"],
                       "truncated_prompt": counts["truncated_prompt"], "dropped_too_long": counts["dropped_too_long"],
                       "dropped_prompt_differs": counts["dropped_prompt_differs"],
                       "bad": sum(all_bad.values()), "bad_records": dict(all_bad)},
            "splits": splits,
            "files": [{"path": str(p), "sha256": sha, "bad_records": dict(b)}
                      for p, sha, b in zip(files, settings["data_sha256"], bad)],
            "settings": settings,
            "reference": None,
        }
        write_json_atomic(tmp / "meta.json", meta)
        save_resolved({"tokenizer": str(tokenizer_dir), "data": [str(f) for f in data_files], "out": str(out),
                       "max_len": max_len, "template": template, "val_fraction": val_fraction, "seed": seed,
                       "truncation": truncation, "strict": strict}, tmp)
    return meta


def _progress(enabled: bool):
    import sys

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=Console(stderr=True), disable=not (enabled and sys.stderr.isatty()), transient=True)
