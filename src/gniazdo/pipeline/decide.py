"""The three phases of a :class:`GlobalFilter`: signatures per task, one decision, filtering per task.

1. **Signatures** (end of stage k, per task): each surviving document's key (16 bytes, as two uint64),
   score and id are written beside the stage's intermediate file.
2. **Decide** (one process): all keys in corpus order; per key the document with the highest score survives,
   the first among equals. Per task it writes what the next stage needs: a keep mask, the survivors'
   duplicate counts, and for each removed document the id of its survivor. Memory: ~24 bytes per document
   plus one task's ids at a time.
3. **Filter** (start of stage k+1, per task): apply the mask, annotating survivors and removed copies.
"""

from __future__ import annotations

import json
from array import array
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import orjson

from gniazdo.corpus.jsonl import JsonlWriter
from gniazdo.document import Document
from gniazdo.fileio import atomic_open, iter_lines, write_json_atomic
from gniazdo.pipeline.step import GlobalFilter


class SignatureWriter:
    """Collects (key, score, id) of a task's documents; :meth:`commit` writes them atomically."""

    def __init__(self, step: GlobalFilter, prefix: Path) -> None:
        self.step = step
        self.prefix = prefix
        self.keys = bytearray()
        self.scores = array("d")
        self.ids = JsonlWriter(prefix.with_suffix(".ids.jsonl"))

    def add(self, doc: Document) -> None:
        self.keys += self.step.key(doc)[:16].ljust(16, b"\0")
        self.scores.append(float(self.step.score(doc)))
        self.ids.write_record(doc.id)

    def commit(self) -> None:
        self.ids.close()
        with atomic_open(self.prefix.with_suffix(".sig.npz")) as f:
            np.savez(f, keys=np.frombuffer(bytes(self.keys), dtype=np.uint64).reshape(-1, 2),
                     scores=np.frombuffer(self.scores, dtype=np.float64))

    def abort(self) -> None:
        self.ids.abort()


def decide(prefixes: list[Path], done: Path) -> None:
    """Choose the survivor of every key over all tasks (in task order) and write each task's decision."""
    if done.exists():
        return
    sigs = [np.load(p.with_suffix(".sig.npz")) for p in prefixes]
    sizes = [len(s["scores"]) for s in sigs]
    keys = np.concatenate([s["keys"] for s in sigs]) if sigs else np.zeros((0, 2), np.uint64)
    scores = np.concatenate([s["scores"] for s in sigs]) if sigs else np.zeros(0)
    n = len(scores)
    index = np.arange(n)
    order = np.lexsort((index, -scores, keys[:, 1], keys[:, 0]))  # by key, best score first, then corpus order
    sorted_keys = keys[order]
    starts = np.ones(n, dtype=bool)
    starts[1:] = (sorted_keys[1:] != sorted_keys[:-1]).any(axis=1)
    group = np.cumsum(starts) - 1
    survivor = np.empty(n, dtype=np.int64)
    survivor[order] = order[starts][group]
    dup_count = np.empty(n, dtype=np.int32)
    dup_count[order] = (np.bincount(group) - 1)[group]
    write_decisions(prefixes, sizes, survivor, dup_count, done)


def task_sizes(prefixes: list[Path]) -> list[int]:
    return [len(np.load(p.with_suffix(".sig.npz"))["scores"]) for p in prefixes]


def write_decisions(prefixes: list[Path], sizes: list[int], survivor: np.ndarray, dup_count: np.ndarray,
                    done: Path) -> None:
    """Per task: the keep mask, the survivors' duplicate counts and each removed document's survivor id."""
    keep = survivor == np.arange(len(survivor))
    offsets = np.cumsum([0, *sizes])
    needed_ids = _ids_of(prefixes, offsets, np.unique(survivor[~keep]))
    for i, prefix in enumerate(prefixes):
        lo, hi = offsets[i], offsets[i + 1]
        removed = {int(j - lo): needed_ids[int(survivor[j])] for j in np.nonzero(~keep[lo:hi])[0] + lo}
        with atomic_open(prefix.with_suffix(".decision.npz")) as f:
            np.savez(f, keep=keep[lo:hi], dup_count=np.where(keep[lo:hi], dup_count[lo:hi], 0))
        write_json_atomic(prefix.with_suffix(".survivors.json"), removed)
    write_json_atomic(done, {"documents": int(len(survivor)), "kept": int(keep.sum())})


def _ids_of(prefixes: list[Path], offsets: np.ndarray, wanted: np.ndarray) -> dict[int, str]:
    """Ids of the documents at the global indices ``wanted`` (sorted), reading one task's ids at a time."""
    out: dict[int, str] = {}
    for i, prefix in enumerate(prefixes):
        local = wanted[(wanted >= offsets[i]) & (wanted < offsets[i + 1])] - offsets[i]
        if len(local) == 0:
            continue
        want = set(local.tolist())
        for j, line in enumerate(iter_lines(prefix.with_suffix(".ids.jsonl"))):
            if j in want:
                out[int(offsets[i] + j)] = orjson.loads(line)
    return out


def apply_decision(docs: Iterator[Document], step: GlobalFilter, prefix: Path,
                   drop: Callable[[Document, str], None]) -> Iterator[Document]:
    """Stage k+1's source: the previous stage's documents with the decision applied."""
    decision = np.load(prefix.with_suffix(".decision.npz"))
    keep, dup_count = decision["keep"], decision["dup_count"]
    survivors = {int(k): v for k, v in json.loads(prefix.with_suffix(".survivors.json").read_text()).items()}
    for i, doc in enumerate(docs):
        if keep[i]:
            if dup_count[i]:
                step.mark_survivor(doc, int(dup_count[i]))
            yield doc
        else:
            step.mark_duplicate(doc, survivors[i])
            drop(doc, step.reason)
