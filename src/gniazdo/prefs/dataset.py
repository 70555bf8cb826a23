"""Read a prepared preference folder (``gniazdo prefs prepare``) without loading it: every array is memory-mapped.

A split folder (``OUT/train``, ``OUT/val``) holds:

* ``tokens.npy`` (uint16 or uint32): every sequence, back to back;
* ``learn.npy`` (uint8, same length): 1 on the tokens the loss is taken on (the answer and its end marker);
* ``pairs.npy`` (int64 [n, 4]): chosen start, chosen end, rejected start, rejected end (offsets into tokens);
* ``ref_logps.npy`` (float64 [n, 2], optional): the reference model's summed log-probs of chosen and rejected;
* ``texts.jsonl`` (one line per pair): the rendered prompt and answers as text, for reference servers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from gniazdo import prepared
from gniazdo.errors import UserError

FORMAT = "gniazdo-prefs"
VERSION = 1
IGNORE = -100  # the label of a token that carries no loss (torch's cross_entropy default ignore_index)


def read_meta(folder: str | Path) -> dict[str, Any]:
    """``meta.json`` of a prepared folder, checked to be ours and of a version we read."""
    return prepared.read_meta(folder, FORMAT, VERSION, "gniazdo prefs prepare")


def sequence(tokens: np.ndarray, learn: np.ndarray, start: int, end: int) -> dict[str, np.ndarray]:
    """One sequence as next-token training arrays: ``input_ids`` = tokens[:-1], ``labels`` = tokens[1:] where
    the token is learned, else -100 (both int64, length end - start - 1)."""
    t = np.asarray(tokens[start:end], dtype=np.int64)
    keep = np.asarray(learn[start + 1:end], dtype=bool)
    return {"input_ids": t[:-1], "labels": np.where(keep, t[1:], IGNORE)}


class PreferenceDataset:
    """One split of a prepared folder. ``pair(i)`` gives the chosen and rejected sequences of pair ``i`` (and the
    reference log-probs when ``reference`` has been run)."""

    def __init__(self, folder: str | Path, split: str = "train") -> None:
        self.folder = Path(folder)
        self.meta = read_meta(self.folder)
        self.split = split
        self.path = self.folder / split
        if not (self.path / "pairs.npy").is_file():
            raise UserError(f"{self.folder}: no '{split}' split (found: {', '.join(self.splits) or 'none'})")
        self.tokens = np.load(self.path / "tokens.npy", mmap_mode="r")
        self.learn = np.load(self.path / "learn.npy", mmap_mode="r")
        self.pairs = np.load(self.path / "pairs.npy", mmap_mode="r")
        ref = self.path / "ref_logps.npy"
        self.ref_logps = np.load(ref, mmap_mode="r") if ref.is_file() else None
        if self.ref_logps is not None and self.ref_logps.shape != (len(self.pairs), 2):
            raise UserError(f"{ref}: shape {list(self.ref_logps.shape)} does not match {len(self.pairs)} pairs "
                            f"(re-run 'gniazdo prefs reference')")

    @property
    def splits(self) -> list[str]:
        return [s for s in ("train", "val") if (self.folder / s / "pairs.npy").is_file()]

    @property
    def n_pairs(self) -> int:
        return len(self.pairs)

    def __len__(self) -> int:
        return self.n_pairs

    @property
    def has_reference(self) -> bool:
        return self.ref_logps is not None

    def pair(self, i: int) -> dict[str, Any]:
        cs, ce, rs, re_ = (int(x) for x in self.pairs[i])
        out: dict[str, Any] = {"chosen": sequence(self.tokens, self.learn, cs, ce),
                               "rejected": sequence(self.tokens, self.learn, rs, re_)}
        if self.ref_logps is not None:
            out["ref_chosen"], out["ref_rejected"] = float(self.ref_logps[i, 0]), float(self.ref_logps[i, 1])
        return out

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.pair(i)

    def texts(self) -> list[dict[str, str]]:
        """The rendered text of every pair (``prompt``, ``chosen``, ``rejected``), in pair order."""
        path = self.path / "texts.jsonl"
        if not path.is_file():
            raise UserError(f"{path} is missing (re-run 'gniazdo prefs prepare')")
        with open(path, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
