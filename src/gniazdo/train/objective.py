"""Training objectives: what a micro-batch's loss is. The trainer owns the loop; an objective only says how to
turn a batch into a *sum* of per-token losses and how many units that sum is divided by.

Returning sums, not means, is what makes the result independent of how a step is split into micro-batches
and ranks: the trainer adds every micro-batch's denominator over the whole step and all ranks first, then divides
each micro-batch's sum by that global number. SFT and preference objectives (next issue) plug in here.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import nn

from gniazdo.train.cross_entropy import cross_entropy
from gniazdo.train.data import IGNORE, Batch


class Objective(Protocol):
    name: str
    fused_loss: bool  # compute the loss with torch.compile'd kernels (with ``compile``; off if compiling fails)

    def denominator(self, batch: Batch) -> float:
        """What this micro-batch adds to the step's divisor (e.g. its number of target tokens)."""

    def loss_sum(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        """The summed loss of the micro-batch (a scalar tensor with grad) and metrics summed over the same units
        as the denominator (the trainer reports each divided by the step's denominator)."""


def token_losses(model: nn.Module, batch: Batch, fused: bool = False) -> torch.Tensor:
    """Per-token cross-entropy [B, T] (0 where the label is IGNORE), computed in fp32 whatever the autocast. Logits
    are computed only where the label is not IGNORE (SFT: not for prompts and padding)."""
    learned = batch.labels != IGNORE
    logits = model(batch.input_ids, document_ids=batch.document_ids, logits_at=learned)
    ce = cross_entropy(logits, batch.labels[learned], fused)
    return ce.new_zeros(batch.labels.shape).masked_scatter(learned, ce)


class CausalLM:
    """Next-token cross-entropy, optionally weighted per token (ALLaMo's weighted CE).

    weighting ``none``: sum(ce) / targets; ``mean``: sum(w * ce) / sum(w) (a weighted mean over the step);
    ``openchat``: sum(w * ce) / targets (weights scale a token's share, the divisor stays the token count,
    as OpenChat's conditioned fine-tuning does). Without weights in the data every weight is 1.
    """

    name = "pretrain"

    def __init__(self, weighting: str = "none") -> None:
        self.weighting = weighting
        self.fused_loss = False  # torch.compile'd loss kernels (build_objective: with ``compile``)

    def _weights(self, batch: Batch) -> torch.Tensor:
        mask = (batch.labels != IGNORE).float()
        if self.weighting == "none" or batch.weights is None:
            return mask
        return batch.weights.float() * mask

    def denominator(self, batch: Batch) -> float:
        if self.weighting == "mean":
            return float(self._weights(batch).sum())
        return float(batch.n_targets)

    def loss_sum(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        losses = token_losses(model, batch, self.fused_loss)
        return (losses * self._weights(batch)).sum(), {}


def build_objective(cfg) -> Objective:
    """The objective of a TrainConfig: pretrain/sft (next-token CE, masked and weighted per the data) or a
    preference loss."""
    if cfg.objective in ("pretrain", "sft"):
        obj = CausalLM(cfg.loss.weighting)
        obj.name = cfg.objective
    else:
        from gniazdo.train.preference import PreferenceLoss

        obj = PreferenceLoss(cfg.objective, cfg.prefs)
    obj.fused_loss = cfg.compile is not False  # the loss compiled along with the blocks
    return obj
