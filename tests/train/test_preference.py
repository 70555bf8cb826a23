"""Preference losses: DPO and IPO equal TRL's DPOTrainer (loss and gradients), DPOP equals its formula by hand,
ORPO its definition; a policy equal to its reference starts at log 2."""

from __future__ import annotations

import math
from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from gniazdo.model import Transformer, model_config
from gniazdo.train.config import PrefsSection
from gniazdo.train.data import IGNORE, Batch
from gniazdo.train.preference import PreferenceLoss, answer_logps

V, PROMPT, ANSWER, B = 97, 5, 7, 3


def pair_batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """[2B, L] token ids (chosen rows, then rejected), the completion mask and an attention mask; the rejected
    answers are shorter (right padding) so length normalisation matters."""
    g = torch.Generator().manual_seed(seed)
    L = PROMPT + ANSWER
    ids = torch.randint(4, V, (2 * B, L), generator=g)
    ids[B:, :PROMPT] = ids[:B, :PROMPT]  # the same prompt
    completion = torch.zeros(2 * B, L, dtype=torch.long)
    completion[:, PROMPT:] = 1
    attention = torch.ones(2 * B, L, dtype=torch.long)
    for r in range(B, 2 * B):
        cut = L - 1 - (r - B)  # rejected answers 1..B tokens shorter
        ids[r, cut:], completion[r, cut:], attention[r, cut:] = 0, 0, 0
    return ids, completion, attention


def ours_batch(ids, completion, ref) -> Batch:
    labels = ids[:, 1:].masked_fill(completion[:, 1:] == 0, IGNORE)
    batch = Batch(ids[:, :-1].contiguous(), labels.contiguous())
    batch.extra["ref"] = ref
    return batch


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    transformers = pytest.importorskip("transformers")
    from gniazdo.model import save_pretrained

    torch.manual_seed(0)
    ours = Transformer(model_config("tiny", vocab_size=V, dim=32, n_layers=2, n_heads=4, n_kv_heads=2, ffn_dim=64,
                                    max_seq_len=64))
    folder = tmp_path_factory.mktemp("pref") / "hf"
    save_pretrained(ours, folder)
    hf = transformers.AutoModelForCausalLM.from_pretrained(str(folder), attn_implementation="eager")
    return ours, hf


def trl_loss(hf, loss_type: str, beta: float, ids, completion, attention, ref) -> torch.Tensor:
    trl = pytest.importorskip("trl")
    from trl.trainer.utils import add_fused_lm_head

    if not getattr(hf, "_gniazdo_fused", False):
        add_fused_lm_head(hf, outputs=("log_probs", "entropy", "mean_logits", "is_top1"))
        hf._gniazdo_fused = True
    accel = SimpleNamespace(device=torch.device("cpu"), gather_for_metrics=lambda t: t, gather=lambda t: t)
    fake = SimpleNamespace(model=hf, accelerator=accel, aux_loss_enabled=False, ld_alpha=None,
                           precompute_ref_logps=True, f_divergence_type="reverse_kl", loss_types=[loss_type],
                           loss_weights=[1.0], beta=beta, use_weighting=False, label_smoothing=0.0,
                           _metrics={"train": defaultdict(list), "eval": defaultdict(list)}, _total_train_tokens=0,
                           _tp_size=1)
    inputs = {"input_ids": ids, "attention_mask": attention, "completion_mask": completion,
              "ref_chosen_logps": ref[:, 0], "ref_rejected_logps": ref[:, 1]}
    return trl.DPOTrainer._compute_loss(fake, hf, inputs, False)


@pytest.mark.parametrize("loss_type, name", [("sigmoid", "dpo"), ("ipo", "ipo")])
def test_dpo_and_ipo_equal_trl(models, loss_type, name):
    ours, hf = models
    ids, completion, attention = pair_batch()
    ref = torch.tensor([[-30.0, -35.0], [-41.0, -28.0], [-33.0, -33.5]], dtype=torch.float64)
    beta = 0.1
    hf.zero_grad()
    ours.zero_grad()
    expected = trl_loss(hf, loss_type, beta, ids, completion, attention, ref.float())
    expected.backward()
    obj = PreferenceLoss(name, PrefsSection(beta=beta))
    batch = ours_batch(ids, completion, ref)
    loss_sum, _ = obj.loss_sum(ours, batch)
    got = loss_sum / obj.denominator(batch)
    got.backward()
    assert abs(got.item() - expected.item()) < 1e-5, (got.item(), expected.item())
    for name_hf, p_hf in hf.named_parameters():
        p_ours = dict(ours.named_parameters())[name_hf.removeprefix("model.")]
        assert (p_ours.grad - p_hf.grad).abs().max().item() < 1e-5, name_hf


def test_dpop_formulas_by_hand():
    pi_c, pi_r = torch.tensor([-10.0, -20.0], dtype=torch.float64), torch.tensor([-12.0, -15.0], dtype=torch.float64)
    ref_c, ref_r = torch.tensor([-11.0, -18.0], dtype=torch.float64), torch.tensor([-12.5, -16.0], dtype=torch.float64)
    n = torch.ones(2, dtype=torch.float64)
    smaug = PreferenceLoss("dpop", PrefsSection(beta=0.2, dpop_lambda=5.0))
    losses, metrics = smaug.pairwise(pi_c, pi_r, ref_c, ref_r, n, n)
    for i in range(2):
        delta = (pi_c[i] - ref_c[i]) - (pi_r[i] - ref_r[i])
        penalty = max(0.0, float(ref_c[i] - pi_c[i]))
        assert math.isclose(losses[i].item(), -math.log(1 / (1 + math.exp(-0.2 * (delta - 5.0 * penalty)))),
                            rel_tol=1e-12)
    assert metrics["dpop_penalty"] == pytest.approx(2.0)  # only the second pair's chosen answer lost probability
    allamo = PreferenceLoss("dpop", PrefsSection(beta=0.1, beta_chosen=0.5, beta_rejected=0.1, dpop_lambda=50.0))
    losses, _ = allamo.pairwise(pi_c, pi_r, ref_c, ref_r, n, n)
    x = 0.5 * (pi_c - ref_c) - 0.1 * (pi_r - ref_r) - 50.0 * torch.clamp(ref_c - pi_c, min=0)
    assert torch.allclose(losses, -F.logsigmoid(x))


def test_orpo_definition():
    pi_c, pi_r = torch.tensor([-6.0], dtype=torch.float64), torch.tensor([-9.0], dtype=torch.float64)
    n_c, n_r = torch.tensor([3.0], dtype=torch.float64), torch.tensor([3.0], dtype=torch.float64)
    losses, _ = PreferenceLoss("orpo", PrefsSection(beta=0.25)).orpo(pi_c, pi_r, n_c, n_r)
    pc, pr = math.exp(-2.0), math.exp(-3.0)
    log_odds = math.log(pc / (1 - pc)) - math.log(pr / (1 - pr))
    assert losses.item() == pytest.approx(2.0 - 0.25 * math.log(1 / (1 + math.exp(-log_odds))), rel=1e-12)


def test_policy_equal_to_reference_starts_at_log2(models):
    ours, _ = models
    ids, completion, _ = pair_batch(1)
    batch = ours_batch(ids, completion, None)
    with torch.no_grad():
        logps, _ = answer_logps(ours, batch)
    batch.extra["ref"] = torch.stack(logps.double().chunk(2), dim=1)
    for name in ("dpo", "dpop"):
        obj = PreferenceLoss(name, PrefsSection())
        loss_sum, metrics = obj.loss_sum(ours, batch)
        assert loss_sum.item() / B == pytest.approx(math.log(2), abs=1e-6)
        assert metrics["dpop_penalty"] == pytest.approx(0.0, abs=1e-4)
