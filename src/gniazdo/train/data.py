"""Pre-training data: fixed-length windows of the token shards, shuffled per epoch, each rank its own slice.

The stream of all train tokens (memory-mapped, see ``gniazdo.shards.TokenShards``) is cut into windows of
``seq_len + 1`` tokens (inputs and the next-token targets), window k starting at ``k * seq_len``. Epoch e visits
the windows in the order of a permutation seeded by (seed, e). One optimizer step takes the next
``world * micro_batch * grad_accum`` windows of that order; rank r gets the r-th contiguous slice of them, cut into
``grad_accum`` micro-batches. So the set of windows of a step does not depend on the world size or on how it is
split into micro-batches, and the position in the data is two integers (epoch, index) saved in checkpoints.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from gniazdo.errors import UserError
from gniazdo.shards import TokenShards

IGNORE = -100  # label of positions that do not count in the loss (torch's cross_entropy ignore_index)


@dataclass
class Batch:
    """One micro-batch: token ids, next-token labels (``IGNORE`` where nothing is learned), optional per-token
    loss weights, document ids (packed rows) and objective-specific tensors."""

    input_ids: torch.Tensor
    labels: torch.Tensor
    weights: torch.Tensor | None = None
    document_ids: torch.Tensor | None = None
    extra: dict[str, torch.Tensor] = field(default_factory=dict)  # objective-specific (e.g. reference log-probs)

    def to(self, device: torch.device) -> Batch:
        move = (lambda t: None if t is None else t.to(device, non_blocking=True))
        return Batch(move(self.input_ids), move(self.labels), move(self.weights), move(self.document_ids),
                     {k: move(v) for k, v in self.extra.items()})

    @property
    def n_targets(self) -> int:
        return int((self.labels != IGNORE).sum())

    @property
    def n_positions(self) -> int:
        return self.labels.numel()


@dataclass
class DataPosition:
    epoch: int = 0
    index: int = 0  # windows of this epoch's order already consumed (by all ranks together)

    def as_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "index": self.index}


def open_shards(folder: str | Path, split: str) -> TokenShards | None:
    """The ``split`` shards of a `gniazdo tokenize` folder, or None when it has none (e.g. no val split)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"token shards folder not found: {folder}")
    if not any(folder.glob(f"{split}-*.tok")):
        return None
    shards = TokenShards(folder, prefix=split)
    return shards if shards.n_tokens else None


def shards_meta(folder: str | Path) -> dict:
    """``meta.json`` of a shards folder (tokenizer hash, vocabulary size, eos id...)."""
    path = Path(folder) / "meta.json"
    if not path.is_file():
        raise UserError(f"{folder}: no meta.json (not a folder written by `gniazdo tokenize`)")
    return json.loads(path.read_text(encoding="utf-8"))


class WindowSource:
    """Windows of ``seq_len + 1`` tokens of one token stream."""

    unit = "windows"

    def __init__(self, shards: TokenShards, seq_len: int, document_masking: bool) -> None:
        self.shards, self.seq_len, self.document_masking = shards, seq_len, document_masking
        self.n_items = self.n_windows = (shards.n_tokens - 1) // seq_len

    def fingerprint(self) -> dict:
        return {"seq_len": self.seq_len}

    def batch(self, windows: np.ndarray) -> Batch:
        T = self.seq_len
        rows = np.stack([self.shards.window(int(k) * T, T + 1) for k in windows]).astype(np.int64)
        tokens = torch.from_numpy(rows)
        doc_ids = None
        if self.document_masking:
            marks = np.zeros((len(windows), T), dtype=np.int64)
            for r, k in enumerate(windows):
                starts = self.shards.doc_starts_in(int(k) * T, T)
                marks[r, starts[starts > 0]] = 1  # a new document begins here: the next id
            doc_ids = torch.from_numpy(np.cumsum(marks, axis=1))
        return Batch(tokens[:, :-1].contiguous(), tokens[:, 1:].contiguous(), None, doc_ids)


class StepData:
    """The train items of a source (windows, SFT rows, preference pairs) for one rank: ``next_step()`` gives
    this rank's micro-batches of the next step. A source has ``n_items``, ``batch(indices) -> Batch`` and
    ``fingerprint()`` (what a checkpoint's data position is only valid for)."""

    def __init__(self, source, micro_batch: int, seed: int, rank: int = 0, world: int = 1) -> None:
        self.source = source
        self.micro_batch, self.seed, self.rank, self.world = micro_batch, seed, rank, world
        self.position = DataPosition()
        self._order_epoch, self._order = -1, np.zeros(0, np.int64)

    @property
    def n_items(self) -> int:
        return self.source.n_items

    n_windows = n_items  # the name for pre-training

    def items_per_step(self, grad_accum: int) -> int:
        return self.world * self.micro_batch * grad_accum

    windows_per_step = items_per_step

    def steps_per_epoch(self, grad_accum: int) -> int:
        return self.n_items // self.items_per_step(grad_accum)

    def order(self, epoch: int) -> np.ndarray:
        if epoch != self._order_epoch:
            self._order = np.random.default_rng([self.seed, epoch]).permutation(self.n_items)
            self._order_epoch = epoch
        return self._order

    def next_step(self, grad_accum: int) -> tuple[list[Batch], bool]:
        """This rank's ``grad_accum`` micro-batches of the next step, and whether the step ends an epoch.
        The tail of an epoch too short for a whole step is skipped (the next epoch reshuffles everything)."""
        per_step = self.items_per_step(grad_accum)
        if self.steps_per_epoch(grad_accum) == 0:
            raise UserError(f"{self.n_items} {self.source.unit} are fewer than one step needs ({per_step}); use "
                            "more data or a smaller micro_batch_size / grad_accum")
        if self.position.index + per_step > self.n_items:
            self.position = DataPosition(self.position.epoch + 1, 0)
        pos = self.position
        step_items = self.order(pos.epoch)[pos.index:pos.index + per_step]
        mine = step_items[self.rank * self.micro_batch * grad_accum:(self.rank + 1) * self.micro_batch * grad_accum]
        batches = [self.source.batch(mine[i:i + self.micro_batch]) for i in range(0, len(mine), self.micro_batch)]
        self.position = DataPosition(pos.epoch, pos.index + per_step)
        epoch_end = self.position.index + per_step > self.n_items
        return batches, epoch_end

    def state(self) -> dict:
        return {**self.position.as_dict(), "n_items": self.n_items, **self.source.fingerprint(), "seed": self.seed}

    def load_state(self, state: dict) -> None:
        mine = {"n_items": self.n_items, **self.source.fingerprint()}
        theirs = {k: state.get(k) for k in mine}
        if theirs != mine:
            raise UserError(f"the checkpoint's data ({theirs}) is not this data ({mine})")
        self.position = DataPosition(int(state["epoch"]), int(state["index"]))


def PretrainData(shards: TokenShards, seq_len: int, micro_batch: int, seed: int, rank: int = 0, world: int = 1,
                 document_masking: bool = False) -> StepData:
    """Windows of the train token stream (see the module docstring)."""
    return StepData(WindowSource(shards, seq_len, document_masking), micro_batch, seed, rank, world)


def val_batches(source, micro_batch: int, n_batches: int, rank: int, world: int) -> list[Batch]:
    """The first ``n_batches`` micro-batches of validation items for this rank (items r, r + world, ...,
    in order, always the same ones). Every rank gets the same number of batches of the same sizes: with FSDP each
    forward is a collective, so a rank with one batch more would wait forever. May be none on a tiny val split."""
    usable = source.n_items // world * world
    mine = np.arange(rank, usable, world)[:n_batches * micro_batch]
    return [source.batch(mine[i:i + micro_batch]) for i in range(0, len(mine), micro_batch)]
