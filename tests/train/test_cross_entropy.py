"""The block-wise fp32 cross-entropy equals torch's on values and gradients, whatever the logits' dtype, with the
eager and with the compiled block kernels."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gniazdo.train import cross_entropy as ce_module
from gniazdo.train.cross_entropy import cross_entropy


def _check(dtype: torch.dtype, fused: bool = False) -> None:
    g = torch.Generator().manual_seed(0)
    logits = (torch.randn(30, 50, generator=g) * 4).to(dtype).requires_grad_()
    targets = torch.randint(0, 50, (30,), generator=g)
    weights = torch.rand(30, generator=g, dtype=torch.float64 if dtype == torch.float64 else torch.float32)

    ours = cross_entropy(logits, targets, fused)
    (gours,) = torch.autograd.grad((ours * weights).sum(), logits)
    ref = F.cross_entropy(logits.to(torch.promote_types(dtype, torch.float32)), targets, reduction="none")
    (gref,) = torch.autograd.grad((ref * weights).sum(), logits)

    assert ours.dtype == ref.dtype and gours.dtype == dtype
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(ours, ref, rtol=0, atol=tol)
    # bf16 gradients: both sides round the same fp32 values to bf16 (one rounding step apart at most)
    torch.testing.assert_close(gours.float(), gref.float(), rtol=0, atol=tol if dtype != torch.bfloat16 else 1e-2)
    assert ours.min() > 0.1  # real losses, not a vacuous comparison


@pytest.fixture
def small_blocks(monkeypatch):
    # several blocks, the last one short
    monkeypatch.setattr(ce_module, "_blocks", lambda logits: [slice(s, s + 7) for s in range(0, logits.shape[0], 7)])


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
def test_values_and_gradients_equal_torch(dtype, small_blocks):
    _check(dtype)


def test_compiled_kernels_equal_torch(small_blocks):
    for dtype in (torch.float32, torch.bfloat16):
        _check(dtype, fused=True)
    assert ce_module._compiled is not None


def test_no_rows():
    logits = torch.zeros(0, 10, requires_grad=True)
    out = cross_entropy(logits, torch.zeros(0, dtype=torch.long))
    assert out.shape == (0,)
    out.sum().backward()
    assert logits.grad.shape == (0, 10)
