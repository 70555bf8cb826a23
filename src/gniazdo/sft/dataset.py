"""Read a prepared SFT folder (``gniazdo sft prepare``) without loading it: every array is memory-mapped.

    ds = SFTDataset("sft/", split="train")
    r = ds.row(0)   # input_ids, labels, weights, document_ids, position_ids: numpy arrays of len(row) - 1

Shifting: the target of position p is token p + 1. A conversation's first token (``<|im_start|>`` / ``<s>``) is
never learned, so in a packed row no target crosses from one conversation into the next, and ``document_ids``
(the conversation's number within the row) keep attention inside each conversation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gniazdo import prepared
from gniazdo.errors import UserError
from gniazdo.sft.prepare import ARRAYS, FORMAT, VERSION

IGNORE = -100  # the label of a position without loss (torch's cross_entropy ignore_index)


def read_meta(folder: str | Path) -> dict[str, Any]:
    """``meta.json`` of a prepared folder, checked to be ours and of a version we read."""
    return prepared.read_meta(folder, FORMAT, VERSION, "gniazdo sft prepare")


class SFTDataset:
    """One split of a prepared SFT folder; ``row(i)`` gives row ``i`` as next-token training arrays."""

    def __init__(self, folder: str | Path, split: str = "train") -> None:
        self.folder = Path(folder)
        self.meta = read_meta(self.folder)
        self.split = split
        path = self.folder / split
        if not path.is_dir():
            n = self.meta.get("splits", {}).get(split, {}).get("conversations", 0)
            raise UserError(f"{self.folder}: no '{split}' split" + (" (it has no conversations)" if not n else ""))
        try:
            arrays = {name: np.load(path / f"{name}.npy", mmap_mode="r") for name in ARRAYS}
        except (OSError, ValueError) as e:
            raise UserError(f"{path}: cannot read the arrays ({str(e).splitlines()[0]}); re-run 'gniazdo sft "
                            "prepare'") from None
        self.tokens, self.learn, self.weights = arrays["tokens"], arrays["learn"], arrays["weights"]
        self.rows, self.doc_starts, self.doc_index = arrays["rows"], arrays["doc_starts"], arrays["doc_index"]
        if not (len(self.tokens) == len(self.learn) == len(self.weights)) or len(self.doc_starts) != len(self.doc_index):
            raise UserError(f"{path}: arrays of different lengths; re-run 'gniazdo sft prepare'")
        self.max_len = int(self.meta["max_len"])

    @property
    def n_rows(self) -> int:
        return len(self.rows)

    def __len__(self) -> int:
        return self.n_rows

    def row_lengths(self) -> np.ndarray:
        """Tokens of every row (the inputs of row i are one fewer)."""
        return np.asarray(self.rows[:, 1] - self.rows[:, 0])

    def row(self, i: int) -> dict[str, np.ndarray]:
        """Row ``i``: ``input_ids`` (int64) = tokens[:-1]; ``labels`` (int64) = tokens[1:] where learned, else
        -100; ``weights`` (float32) = the target's conversation weight, 0 where the label is -100;
        ``document_ids`` (int64) = 0, 0, ..., 1, 1, ... the conversation of each input within the row;
        ``position_ids`` (int64) = each input's position within its conversation."""
        if not -self.n_rows <= i < self.n_rows:
            raise IndexError(f"row {i} of {self.n_rows}")
        start, end = (int(x) for x in self.rows[i])
        tokens = np.asarray(self.tokens[start:end], dtype=np.int64)
        learn = np.asarray(self.learn[start + 1:end], dtype=bool)
        labels = np.where(learn, tokens[1:], IGNORE)
        weights = np.where(learn, self.weights[start + 1:end], 0).astype(np.float32)
        # conversations starting inside [start, end): their offsets give each position's document
        first, last = np.searchsorted(self.doc_starts, [start, end])
        starts = np.asarray(self.doc_starts[first:last])
        pos = np.arange(start, end - 1)
        doc = np.searchsorted(starts, pos, side="right") - 1
        return {"input_ids": tokens[:-1], "labels": labels, "weights": weights,
                "document_ids": doc.astype(np.int64), "position_ids": (pos - starts[doc]).astype(np.int64)}

    __getitem__ = row
