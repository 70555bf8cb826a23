"""Item sources for fine-tuning: SFT rows (``gniazdo sft prepare``) and preference pairs (``gniazdo prefs
prepare`` / ``reference``), turned into fixed-shape batches for ``StepData``.

Rows are right-padded to the dataset's ``max_len`` (fixed shapes: no recompilation, stable memory). Padding gets
label IGNORE and weight 0; with packed rows it also gets its own document id, so real tokens never attend to it
and it never attends to them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from gniazdo.errors import UserError
from gniazdo.train.data import IGNORE, Batch


def _pad(rows: list[np.ndarray], length: int, value: float, dtype) -> np.ndarray:
    out = np.full((len(rows), length), value, dtype=dtype)
    for r, row in enumerate(rows):
        out[r, :len(row)] = row
    return out


class SFTSource:
    """Rows of a prepared SFT split: masked labels, per-token weights, document ids when packed."""

    unit = "rows"

    def __init__(self, folder: str | Path, split: str = "train") -> None:
        from gniazdo.sft.dataset import SFTDataset

        self.data = SFTDataset(folder, split=split)
        self.n_items = self.data.n_rows
        self.length = int(self.data.max_len) - 1  # inputs of a max_len row
        self.pad_id = int(self.data.meta["tokenizer"].get("pad_id") or 0)
        self.packed = bool(self.data.meta.get("pack"))

    def fingerprint(self) -> dict:
        return {"max_len": int(self.data.max_len), "pack": self.packed}

    def batch(self, indices: np.ndarray) -> Batch:
        rows = [self.data.row(int(i)) for i in indices]
        L = self.length
        ids = _pad([r["input_ids"] for r in rows], L, self.pad_id, np.int64)
        labels = _pad([r["labels"] for r in rows], L, IGNORE, np.int64)
        weights = _pad([r["weights"] for r in rows], L, 0.0, np.float32)
        doc = None
        if self.packed:
            # padding is one more "document" after the last real one
            doc = _pad([r["document_ids"] for r in rows], L, -1, np.int64)
            fill = np.array([r["document_ids"][-1] + 1 if len(r["document_ids"]) else 0 for r in rows])
            doc = np.where(doc < 0, fill[:, None], doc)
        return Batch(torch.from_numpy(ids), torch.from_numpy(labels), torch.from_numpy(weights),
                     None if doc is None else torch.from_numpy(doc))


class PreferenceSource:
    """Pairs of a prepared preference split: a batch holds the chosen rows, then the rejected rows, and the
    reference model's summed log-probs of both in ``extra["ref"]`` ([pairs, 2])."""

    unit = "pairs"

    def __init__(self, folder: str | Path, split: str = "train", need_reference: bool = True) -> None:
        from gniazdo.prefs.dataset import PreferenceDataset

        self.data = PreferenceDataset(folder, split=split)
        if need_reference and not self.data.has_reference:
            raise UserError(f"{folder}: no reference log-probs; run `gniazdo prefs reference` first "
                            "(or use objective orpo, which needs none)")
        self.n_items = self.data.n_pairs
        self.max_len = int(self.data.meta["max_len"])
        self.pad_id = int(self.data.meta["tokenizer"].get("pad_id") or 0)

    def fingerprint(self) -> dict:
        return {"max_len": self.max_len}

    def batch(self, indices: np.ndarray) -> Batch:
        pairs = [self.data.pair(int(i)) for i in indices]
        rows = [p["chosen"] for p in pairs] + [p["rejected"] for p in pairs]
        L = self.max_len - 1
        ids = _pad([r["input_ids"] for r in rows], L, self.pad_id, np.int64)
        labels = _pad([r["labels"] for r in rows], L, IGNORE, np.int64)
        batch = Batch(torch.from_numpy(ids), torch.from_numpy(labels))
        if self.data.has_reference:
            ref = np.array([[p["ref_chosen"], p["ref_rejected"]] for p in pairs], dtype=np.float64)
            batch.extra["ref"] = torch.from_numpy(ref)
        return batch
