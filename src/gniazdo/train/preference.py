"""Preference objectives on (chosen, rejected) pairs: DPO, DPO-Positive (Smaug's and ALLaMo's forms), IPO, ORPO.

A batch holds the B chosen rows, then the B rejected rows (``gniazdo.train.sources.PreferenceSource``). The
policy's log-probability of an answer is the sum of its tokens' log-probs (labels != IGNORE); the reference's is
precomputed (``gniazdo prefs reference``), so training holds one model. Each objective returns the *sum* of its
per-pair losses; the trainer divides by the number of pairs in the whole step.

    dpo   -log σ(β·Δ),  Δ = (π_c − ref_c) − (π_r − ref_r)
    dpop  -log σ(β·(Δ − λ·max(0, ref_c − π_c)))                       (Smaug, arXiv:2402.13228)
          -log σ(β_c·(π_c − ref_c) − β_r·(π_r − ref_r) − λ·max(0, ref_c − π_c))   (ALLaMo, with beta_chosen/rejected)
    ipo   (Δ̄ − 1/(2β))²,  Δ̄ with log-ratios averaged over each answer's tokens (as TRL and the IPO authors do)
    orpo  NLL_c − β·log σ(log odds(p̄_c) − log odds(p̄_r)),  p̄ = exp(mean token log-prob), NLL_c = −mean log p_c
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gniazdo.train.config import PrefsSection
from gniazdo.train.cross_entropy import cross_entropy
from gniazdo.train.data import IGNORE, Batch


def answer_logps(model: nn.Module, batch: Batch, fused: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed log-prob of each row's labelled tokens [2B] (fp32) and their counts [2B]."""
    mask = batch.labels != IGNORE
    logits = model(batch.input_ids, document_ids=batch.document_ids, logits_at=mask)  # [N, V]: the answers only
    logp = -cross_entropy(logits, batch.labels[mask], fused)
    return logp.new_zeros(batch.labels.shape).masked_scatter(mask, logp).sum(1), mask.sum(1).clamp(min=1).float()


class PreferenceLoss:
    """One of dpo | dpop | ipo | orpo, with the hyper-parameters of the ``prefs`` config section."""

    def __init__(self, name: str, cfg: PrefsSection) -> None:
        self.name, self.cfg = name, cfg
        self.fused_loss = False  # torch.compile'd log-prob kernels (build_objective: with ``compile``)

    @property
    def needs_reference(self) -> bool:
        return self.name != "orpo"

    def denominator(self, batch: Batch) -> float:
        return float(batch.input_ids.shape[0] // 2)

    def loss_sum(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        logps, counts = answer_logps(model, batch, self.fused_loss)
        pi_c, pi_r = logps.chunk(2)
        n_c, n_r = counts.chunk(2)
        if self.name == "orpo":
            losses, metrics = self.orpo(pi_c, pi_r, n_c, n_r)
        else:
            ref = batch.extra["ref"].to(logps.dtype)
            losses, metrics = self.pairwise(pi_c, pi_r, ref[:, 0], ref[:, 1], n_c, n_r)
        metrics.update({"logps_chosen": float(pi_c.detach().sum()), "logps_rejected": float(pi_r.detach().sum())})
        return losses.sum(), metrics

    def pairwise(self, pi_c, pi_r, ref_c, ref_r, n_c, n_r) -> tuple[torch.Tensor, dict[str, float]]:
        """Per-pair losses of the reference-based objectives, and summed metrics."""
        c = self.cfg
        ratio_c, ratio_r = pi_c - ref_c, pi_r - ref_r
        penalty = torch.clamp(ref_c - pi_c, min=0.0)
        if self.name == "dpo":
            losses = -F.logsigmoid(c.beta * (ratio_c - ratio_r))
        elif self.name == "dpop":
            if c.beta_chosen is not None or c.beta_rejected is not None:
                bc, br = c.beta_chosen or c.beta, c.beta_rejected or c.beta
                losses = -F.logsigmoid(bc * ratio_c - br * ratio_r - c.dpop_lambda * penalty)
            else:
                losses = -F.logsigmoid(c.beta * (ratio_c - ratio_r - c.dpop_lambda * penalty))
        elif self.name == "ipo":
            losses = (ratio_c / n_c - ratio_r / n_r - 1.0 / (2.0 * c.beta)) ** 2
        else:
            raise ValueError(f"unknown preference objective {self.name!r}")
        reward_c, reward_r = (c.beta * ratio_c).detach(), (c.beta * ratio_r).detach()
        return losses, {"reward_chosen": float(reward_c.sum()), "reward_rejected": float(reward_r.sum()),
                        "reward_accuracy": float((reward_c > reward_r).float().sum()),
                        "reward_margin": float((reward_c - reward_r).sum()),
                        "dpop_penalty": float(penalty.detach().sum())}

    def orpo(self, pi_c, pi_r, n_c, n_r) -> tuple[torch.Tensor, dict[str, float]]:
        mean_c, mean_r = pi_c / n_c, pi_r / n_r
        # log odds = log p − log(1 − p), with log(1 − p) = log(−expm1(log p)) for accuracy near p = 1
        log_odds = (mean_c - torch.log(-torch.expm1(mean_c))) - (mean_r - torch.log(-torch.expm1(mean_r)))
        ratio = F.logsigmoid(log_odds)
        losses = -mean_c - self.cfg.beta * ratio
        return losses, {"orpo_log_odds": float(log_odds.detach().sum()), "nll_chosen": float(-mean_c.detach().sum()),
                        "reward_accuracy": float((log_odds > 0).float().sum())}
