"""``gniazdo sft prepare``: conversations → memory-mappable training rows, done once, offline.

    from gniazdo.sft import SFTPrepareConfig, prepare_sft
    meta = prepare_sft(SFTPrepareConfig(tokenizer="tok/pl32k", data=["chat.jsonl"], out="sft/", pack=True))

Each conversation is rendered with a chat template (:mod:`gniazdo.sft.templates`) into token ids, a learn mask
and a weight (the record's ``weight`` × its file's weight). Longer than ``max_len``: ``drop`` it, or
``truncate`` it (dropped after all when no learned token is left). A conversation goes to val when a hash of its
index (in reading order) and the seed falls below ``val_fraction``.

Rows: without packing, one conversation per row. With packing, whole conversations are packed into rows of at
most ``max_len`` tokens by *best-fit decreasing*: conversations in a seeded random order, stably sorted longest
first, each put into the fullest row it still fits in (else a new row); the rows are then shuffled with the seed.
Best fit fills rows at least as well as first fit and runs in O(n log max_len). Conversations are never split,
so every one keeps its whole context; the same seed gives the same rows.

Output (see :mod:`gniazdo.sft.dataset` for reading it)::

    out/meta.json  out/stats.json  out/lengths.png  out/config.resolved.yaml
    out/{train,val}/tokens.npy   uint16 (vocab <= 65,536) or uint32: the rows' tokens, back to back
                    learn.npy    uint8 per token: 1 where the loss is taken (assistant content + end marker)
                    weights.npy  float32 per token: the conversation's weight
                    rows.npy     int64 [n_rows, 2]: start, end offsets into tokens
                    doc_starts.npy  int64: start offset of every conversation (sorted)
                    doc_index.npy   int64: each conversation's index in reading order (aligned with doc_starts)

The folder is built under a temp name next to ``out`` and renamed into place, so a re-run replaces a finished
folder whole and a killed run leaves the old one intact. ``val/`` exists only when val has conversations.
"""

from __future__ import annotations

import shutil
from bisect import bisect_left, insort
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any, Iterator, Literal

import numpy as np
from pydantic import Field

from gniazdo.config import Config, save_resolved
from gniazdo.errors import UserError
from gniazdo.fileio import write_json_atomic
from gniazdo.prepared import build_folder, special_token_id
from gniazdo.sft.conversations import BadRecord, load_conversations, weight_of
from gniazdo.sft.templates import ChatTemplate, get_template

FORMAT = "gniazdo-sft"
VERSION = 1
BATCH = 256  # conversations per tokenizer call (encoded in parallel)
ARRAYS = ("tokens", "learn", "weights", "rows", "doc_starts", "doc_index")

Weight = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class SFTPrepareConfig(Config):
    tokenizer: str  # tokenizer folder (tokenizer.json) or file
    data: list[str] = Field(min_length=1)  # conversation JSONL files (.gz/.zst), globs or folders
    out: str
    template: Literal["chatml", "mistral"] = "chatml"
    max_len: int = Field(4096, ge=8)  # tokens of a row
    pack: bool = False
    truncation: Literal["drop", "truncate"] = "drop"  # truncating cuts answers off before their end marker
    weights: dict[str, Weight] = Field(default_factory=dict)  # input file (path or name) → weight multiplier
    val_fraction: float = Field(0.0, ge=0, lt=1)
    seed: int = 0
    progress: bool = True


def pack_rows(lengths: np.ndarray, max_len: int, seed: int) -> list[list[int]]:
    """Best-fit decreasing packing of items of ``lengths`` (each <= max_len) into rows of at most ``max_len``;
    returns the rows (lists of item indices) in a seeded random order. Deterministic for a seed."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(lengths))
    order = order[np.argsort(-np.asarray(lengths)[order], kind="stable")]  # ties stay in the random order
    rows: list[list[int]] = []
    free: dict[int, list[int]] = {}  # remaining room → rows with that much room
    rooms: list[int] = []  # the keys of ``free``, sorted: at most max_len of them, so bisect/insort are cheap
    for i in order.tolist():
        n = int(lengths[i])
        k = bisect_left(rooms, n)  # the smallest room that fits = the fullest row that fits
        if k == len(rooms):
            r, room = len(rows), max_len - n
            rows.append([i])
        else:
            room0 = rooms[k]
            r = free[room0].pop()
            if not free[room0]:
                del free[room0]
                rooms.pop(k)
            rows[r].append(i)
            room = room0 - n
        if room > 0:
            if room not in free:
                free[room] = []
                insort(rooms, room)
            free[room].append(r)
    return [rows[j] for j in rng.permutation(len(rows)).tolist()]


def _file_weights(cfg: SFTPrepareConfig, files: list[Path]) -> list[float]:
    """The weight of each input file: ``cfg.weights`` keys match a file's path or name; a key matching no
    file is an error (a typo would silently weigh 1)."""
    weights = [1.0] * len(files)
    for key, w in cfg.weights.items():
        hits = [i for i, f in enumerate(files) if key in (str(f), f.name) or Path(key).resolve() == f.resolve()]
        if not hits:
            raise UserError(f"weights: '{key}' is none of the inputs ({', '.join(f.name for f in files)})")
        for i in hits:
            weights[i] = w
    return weights


class _Scratch:
    """Conversations appended to flat temp files as they are tokenized (nothing big stays in memory); packing
    then copies them into rows from memory maps."""

    def __init__(self, folder: Path, dtype: np.dtype) -> None:
        folder.mkdir(parents=True)
        self.folder, self.dtype = folder, dtype
        self._stack = ExitStack()
        self.files = {name: self._stack.enter_context(open(folder / name, "wb")) for name in ("t", "l", "w")}
        self.offset = 0
        self.convs: list[tuple[int, int, int, str]] = []  # (offset, length, index, split)

    def add(self, ids: np.ndarray, learn: np.ndarray, weight: float, index: int, split: str) -> None:
        self.files["t"].write(ids.astype(self.dtype).tobytes())
        self.files["l"].write(learn.astype(np.uint8).tobytes())
        self.files["w"].write(np.full(len(ids), weight, dtype=np.float32).tobytes())
        self.convs.append((self.offset, len(ids), index, split))
        self.offset += len(ids)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        self._stack.close()
        if self.offset == 0:
            return np.zeros(0, self.dtype), np.zeros(0, np.uint8), np.zeros(0, np.float32)
        return (np.memmap(self.folder / "t", dtype=self.dtype, mode="r"),
                np.memmap(self.folder / "l", dtype=np.uint8, mode="r"),
                np.memmap(self.folder / "w", dtype=np.float32, mode="r"))


def _progress(enabled: bool):
    if not enabled:
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    transient=True)


def _batches(files: list[Path], skipped: list[Counter]) -> Iterator[list[tuple[dict, int, int]]]:
    """Batches of (conversation, file index, line number); bad records are counted per file."""
    batch: list[tuple[dict, int, int]] = []
    for f, path in enumerate(files):
        for conv, line_no in load_conversations(path, strict=False, skipped=skipped[f]):
            batch.append((conv, f, line_no))
            if len(batch) == BATCH:
                yield batch
                batch = []
    if batch:
        yield batch


def _tokenize_all(cfg: SFTPrepareConfig, template: ChatTemplate, tokenizer, files: list[Path],
                  file_weights: list[float], scratch: _Scratch) -> tuple[list[dict], np.ndarray]:
    """Read, render, tokenize, truncate and split every conversation into ``scratch``. Returns per-file counts
    and every valid conversation's token length before truncation."""
    from gniazdo.shards.mixture import unit_hash

    per_file = [Counter() for _ in files]
    skipped = [Counter() for _ in files]
    lengths: list[int] = []
    index = 0  # valid conversations in reading order: the key of the val split
    bar = _progress(cfg.progress)
    with bar if bar is not None else ExitStack():
        task = bar.add_task("tokenizing conversations", total=None) if bar is not None else None
        for batch in _batches(files, skipped):
            rendered, ok = [], []
            for conv, f, line_no in batch:
                try:
                    rendered.append(template.render_text(conv["messages"]))
                    ok.append((conv, f))
                except BadRecord as e:  # the record is fine but this template can't format it
                    skipped[f][e.reason] += 1
            for (conv, f), (ids, learn) in zip(ok, template.encode(rendered, tokenizer)):
                counts = per_file[f]
                counts["conversations"] += 1
                lengths.append(len(ids))
                split = "val" if unit_hash(cfg.seed, "sft-val", str(index)) < cfg.val_fraction else "train"
                index += 1
                if len(ids) > cfg.max_len:
                    if cfg.truncation == "drop":
                        counts["dropped_too_long"] += 1
                        continue
                    ids, learn = ids[:cfg.max_len], learn[:cfg.max_len]
                    if not learn.any():
                        counts["dropped_nothing_learned"] += 1
                        continue
                    counts["truncated"] += 1
                counts["kept"] += 1
                counts["tokens"] += len(ids)
                counts["learned_tokens"] += int(learn.sum())
                scratch.add(ids, learn, weight_of(conv) * file_weights[f], index - 1, split)
            if bar is not None:
                bar.advance(task, len(batch))
    files_meta = [{"path": str(p), "weight": w, "bad_records": dict(s), "bad": sum(s.values()), **dict(c)}
                  for p, w, s, c in zip(files, file_weights, skipped, per_file)]
    return files_meta, np.asarray(lengths, dtype=np.int64)


def _write_split(folder: Path, convs: list[tuple[int, int, int]], rows: list[list[int]],
                 src: tuple[np.ndarray, np.ndarray, np.ndarray], dtype: np.dtype) -> dict[str, int]:
    """Lay ``rows`` (lists of indices into ``convs``) out back to back in ``folder``'s arrays."""
    from numpy.lib.format import open_memmap

    folder.mkdir(parents=True)
    n_tokens = sum(n for _, n, _ in convs)
    n_convs = len(convs)
    out = {
        "tokens": open_memmap(folder / "tokens.npy", "w+", dtype, (n_tokens,)),
        "learn": open_memmap(folder / "learn.npy", "w+", np.uint8, (n_tokens,)),
        "weights": open_memmap(folder / "weights.npy", "w+", np.float32, (n_tokens,)),
    }
    row_bounds = np.zeros((len(rows), 2), dtype=np.int64)
    doc_starts = np.zeros(n_convs, dtype=np.int64)
    doc_index = np.zeros(n_convs, dtype=np.int64)
    pos = d = 0
    for r, row in enumerate(rows):
        row_bounds[r, 0] = pos
        for c in row:
            offset, n, index = convs[c]
            for name, arr in zip(("tokens", "learn", "weights"), src):
                out[name][pos:pos + n] = arr[offset:offset + n]
            doc_starts[d], doc_index[d] = pos, index
            pos, d = pos + n, d + 1
        row_bounds[r, 1] = pos
    for arr in out.values():
        arr.flush()
    learned = int(np.count_nonzero(out["learn"])) if n_tokens else 0
    del out  # close the memory maps before the folder is renamed
    np.save(folder / "rows.npy", row_bounds)
    np.save(folder / "doc_starts.npy", doc_starts)
    np.save(folder / "doc_index.npy", doc_index)
    return {"conversations": n_convs, "rows": len(rows), "tokens": n_tokens, "learned_tokens": learned}


def prepare_sft(cfg: SFTPrepareConfig) -> dict[str, Any]:
    """Tokenize, mask, weigh, split and (optionally) pack conversations into ``cfg.out``; returns meta.json."""
    from gniazdo.corpus import expand_inputs
    from gniazdo.shards.format import dtype_for
    from gniazdo.shards.writer import _load_tokenizer, sha256_of

    template = get_template(cfg.template)
    tokenizer, tok_file = _load_tokenizer(cfg.tokenizer)
    template.check_tokenizer(tokenizer, where=str(tok_file))
    vocab_size = tokenizer.get_vocab_size(with_added_tokens=True)
    dtype = dtype_for(vocab_size)
    files = expand_inputs(cfg.data, explicit_format=True)
    file_weights = _file_weights(cfg, files)
    out = Path(cfg.out).absolute()  # absolute: "." has no name to put a temp folder beside
    with build_folder(out, FORMAT, "gniazdo sft prepare") as tmp:
        scratch = _Scratch(tmp / ".scratch", dtype)
        files_meta, lengths = _tokenize_all(cfg, template, tokenizer, files, file_weights, scratch)
        src = scratch.arrays()
        totals = Counter()
        for fm in files_meta:
            totals.update({k: v for k, v in fm.items() if isinstance(v, int)})
        if not scratch.convs:
            bad = Counter()
            for fm in files_meta:
                bad.update(fm["bad_records"])
            hint = " (raw instruction records? run 'gniazdo sft convert' first)" if bad.get("no_messages") else ""
            raise UserError(f"no conversations left in {', '.join(map(str, files))}: "
                            f"{totals['dropped_too_long'] + totals['dropped_nothing_learned']} too long, bad records "
                            f"{dict(bad) or 0}{hint}")
        splits = {}
        for split in ("train", "val"):
            convs = [(o, n, i) for o, n, i, s in scratch.convs if s == split]
            if not convs:
                splits[split] = {"conversations": 0, "rows": 0, "tokens": 0, "learned_tokens": 0}
                continue
            if cfg.pack:
                rows = pack_rows(np.array([n for _, n, _ in convs]), cfg.max_len, cfg.seed)
            else:
                rows = [[c] for c in range(len(convs))]
            splits[split] = _write_split(tmp / split, convs, rows, src, dtype)
        del src
        shutil.rmtree(scratch.folder)
        meta = _meta(cfg, template, tokenizer, tok_file, sha256_of(tok_file), vocab_size, dtype, files_meta, splits)
        write_json_atomic(tmp / "meta.json", meta)
        write_json_atomic(tmp / "stats.json", _stats(lengths, splits, cfg))
        _plot_lengths(lengths, cfg.max_len, tmp / "lengths.png")
        save_resolved(cfg, tmp)
    return meta


def _meta(cfg, template, tokenizer, tok_file, sha, vocab_size, dtype, files_meta, splits) -> dict[str, Any]:
    keys = ("conversations", "kept", "truncated", "dropped_too_long", "dropped_nothing_learned", "bad")
    counts = {k: sum(fm.get(k, 0) for fm in files_meta) for k in keys}
    bad = Counter()
    for fm in files_meta:
        bad.update(fm["bad_records"])
    counts["read"] = counts["conversations"] + counts.pop("bad")
    counts["bad_records"] = dict(bad)
    return {
        "format": FORMAT, "version": VERSION,
        "tokenizer": {"path": str(tok_file), "sha256": sha, "vocab_size": vocab_size,
                      "pad_id": special_token_id(tokenizer, tok_file, "pad_token", "<pad>"),
                      "eos_id": special_token_id(tokenizer, tok_file, "eos_token", "</s>")},
        "template": {"name": template.name, "end_token": template.end_token, "end_id": template.end_id(tokenizer),
                     "chat_template": template.chat_template},
        "dtype": np.dtype(dtype).name, "max_len": cfg.max_len, "pack": cfg.pack, "truncation": cfg.truncation,
        "val_fraction": cfg.val_fraction, "seed": cfg.seed,
        "counts": counts, "splits": splits,
        "files": [{k: fm.get(k, 0) for k in ("path", "weight", "conversations", "kept", "truncated",
                                             "dropped_too_long", "dropped_nothing_learned", "bad", "bad_records",
                                             "tokens", "learned_tokens")} for fm in files_meta],
    }


def _stats(lengths: np.ndarray, splits: dict[str, dict[str, int]], cfg: SFTPrepareConfig) -> dict[str, Any]:
    """Length distribution (before truncation) and how well rows are used."""
    q = np.percentile(lengths, [50, 90, 99]) if len(lengths) else [0, 0, 0]
    out: dict[str, Any] = {
        "conversation_tokens": {"min": int(lengths.min()), "mean": round(float(lengths.mean()), 1),
                                "p50": int(q[0]), "p90": int(q[1]), "p99": int(q[2]), "max": int(lengths.max()),
                                "over_max_len": int((lengths > cfg.max_len).sum())},
    }
    for split, s in splits.items():
        if s["rows"]:
            # fill: the share of a batch of max_len rows that is real tokens (the rest is padding)
            out[split] = {"fill": round(s["tokens"] / (s["rows"] * cfg.max_len), 4),
                          "learned_fraction": round(s["learned_tokens"] / s["tokens"], 4),
                          "tokens_per_row": round(s["tokens"] / s["rows"], 1)}
    return out


def _plot_lengths(lengths: np.ndarray, max_len: int, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    fig = Figure(figsize=(7, 4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.hist(lengths, bins=min(60, max(5, len(lengths) // 5)), color="#4c72b0")
    ax.axvline(max_len, color="#c44e52", linestyle="--", label=f"max_len {max_len}")
    ax.set_xlabel("tokens per conversation (before truncation)")
    ax.set_ylabel("conversations")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
