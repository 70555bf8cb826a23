"""CPU-only arrangements of a model's weights for decoding: what makes our engine faster than a plain forward there.

* :func:`cpu_decode_layout`: wide matrices stored column-major (single-row products, batch 1).
* :class:`CpuBlockedLinears`: fp32 weights copied into oneDNN's blocked layout for products of a few rows (a
  batch's decode steps, prompts), swapped in only for the duration of such a forward.

GPUs, bf16/fp16 weights and training never go through this.
"""

from __future__ import annotations

import threading
from typing import Any

import torch
import torch.nn.functional as F

from gniazdo.model.model import Transformer

# The blocked copy doubles the weights' memory: above this (fp32 matrices of ~500M parameters) a CPU server's RAM
# matters more than the ~2x on few-row products.
BLOCKED_MAX_BYTES = 2 * 2**30


def cpu_decode_layout(model: Transformer) -> Transformer:
    """Store the wide matrices (more outputs than inputs, like the output head) column-major, i.e. as the
    transpose of a contiguous [in, out] tensor: same shapes, names and values, another memory order.

    Decoding multiplies one row per sequence by every weight, so on a CPU it is a matrix-vector product that
    streams the weights from memory. For wide matrices the BLAS kernel runs about twice as fast on the
    column-major order (one thread of a 2-core EPYC VM, fp32: 1024x384 in 76 vs 160 us, an 8000x384 head in
    461 vs 1178 us), narrow ones are faster row-major, and products with many rows (prompts) do not care; in
    bf16 both orders run about alike. GPUs are left alone. The stacked q/k/v and gate/up of
    ``Transformer.fuse_projections`` are arranged the same way there.
    """
    with torch.no_grad():
        for module in model.modules():
            weight = getattr(module, "weight", None)
            # (a weight that is not contiguous is already arranged: a view into fused q/k/v or gate/up)
            if (isinstance(weight, torch.nn.Parameter) and weight.dim() == 2 and weight.shape[0] > weight.shape[1]
                    and weight.is_contiguous()):
                weight.data = weight.data.t().contiguous().t()
    return model


class CpuBlockedLinears:
    """The weight matrices (fp32, on a CPU with oneDNN) again, in oneDNN's blocked layout, for products of several
    rows: ``with blocked:`` the model multiplies through them, outside it the model is untouched.

    A decode step of a batch multiplies a few rows (one per sequence) by every weight, a prompt a few hundred.
    MKL's fp32 GEMM, which ``F.linear`` calls, runs such products at about half the speed of oneDNN's kernel on
    weights reordered into its blocked layout (one thread of a 2-core EPYC VM, the 25 products of a decode step
    of the 6-layer dim-384 bench model at batch 8, weights cold as in decoding: 3.9 vs 7.5 ms; its 8000x384 head
    alone 0.84 vs 1.9 ms; 2 rows gain a little, a few hundred about 10 %). A single row (batch 1) stays with MKL
    and :func:`cpu_decode_layout`'s column-major order, faster there than the blocked copy (the 25 products of a
    step at batch 1: 2.5 vs 3.1 ms).

    Inside ``with``, every matrix that ``F.linear`` multiplies by (the ``nn.Linear`` weights, the stacks of
    ``fuse_projections``, the embedding of a tied head) is replaced by a :class:`_BlockedTensor` view of it
    (same storage), whose ``F.linear`` with more than one input row and no gradient goes to
    ``torch.ops.mkldnn._linear_pointwise`` on the blocked copy; any other use is the plain tensor's. Outside,
    the model has its own tensors back, so ``state_dict``, copying, pickling and single-row decoding (no
    dispatch through Python per product, about 3 us each) see nothing of this. The blocked copy of a weight is
    made at its first such product, and again after the weight changed in place: the engine then holds the
    matrices twice. For inference only: inside ``with`` the weights are detached views, out of autograd's reach
    (the engine runs its forwards in inference mode). Results agree with ``F.linear`` up to float rounding
    (another summation order), so a request's greedy tokens may depend on whether it ran alone or in a batch,
    as on any batched engine.
    """

    def __init__(self, model: Transformer) -> None:
        self.model = model
        self._slots = self._find(model, [])
        self._depth = 0  # nested or concurrent `with` (threads): the weights go back when the last one ends
        self._lock = threading.Lock()

    @classmethod
    def for_model(cls, model: Transformer) -> CpuBlockedLinears | None:
        """None where it does not apply: no oneDNN, no fp32 weights on the CPU, or more than
        :data:`BLOCKED_MAX_BYTES` of them (the copy would double a large model's memory)."""
        if not (torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")):
            return None
        blocked = cls(model)
        size = sum(w.numel() * w.element_size() for _, _, w, _ in blocked._slots)
        return blocked if blocked._slots and size <= BLOCKED_MAX_BYTES else None

    @staticmethod
    def _find(model: Transformer, old: list[tuple[dict[str, Any], str, torch.Tensor, _BlockedTensor]]
              ) -> list[tuple[dict[str, Any], str, torch.Tensor, _BlockedTensor]]:
        """(dict holding it, key, the model's tensor, its blocked view) for each weight F.linear multiplies by;
        the views of ``old`` slots whose weight is still there are kept (with their blocked copies)."""
        views = {id(w): view for _, _, w, view in old}
        places: list[tuple[dict[str, Any], str]] = []
        for module in model.modules():
            if isinstance(module, torch.nn.Linear) and module.bias is None:
                places.append((module._parameters, "weight"))
            for name in ("qkv", "gate_up"):  # fuse_projections' stacks: plain attributes
                if isinstance(module.__dict__.get(name), torch.Tensor):
                    places.append((module.__dict__, name))
        if model.lm_head is None:  # tied: the head is F.linear(h, embed_tokens.weight)
            places.append((model.embed_tokens._parameters, "weight"))
        slots = []
        for where, key in places:
            w = where[key]
            if w.dim() == 2 and w.dtype == torch.float32 and w.device.type == "cpu":
                # detach() shares the version counter: in-place changes to the weight show in the view's
                view = views.get(id(w))
                if view is None:
                    view = w.detach().as_subclass(_BlockedTensor)
                slots.append((where, key, w, view))
        return slots

    def __enter__(self) -> CpuBlockedLinears:
        with self._lock:
            if self._depth == 0:
                if any(where.get(key) is not w for where, key, w, _ in self._slots):
                    self._slots = self._find(self.model, self._slots)  # a weight was assigned anew: follow it
                for where, key, _, view in self._slots:
                    where[key] = view
            self._depth += 1
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._depth -= 1
            if self._depth == 0:
                for where, key, w, _ in self._slots:
                    where[key] = w


class _BlockedTensor(torch.Tensor):
    """A weight [out, in] (a view of the model's) whose ``F.linear`` with several input rows runs on a blocked
    oneDNN copy (see :class:`CpuBlockedLinears`); every other use is the plain tensor's (plain results)."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        if func is F.linear and not kwargs and len(args) in (2, 3) and (len(args) == 2 or args[2] is None):
            x, w = args[0], args[1]
            if (type(x) is torch.Tensor and isinstance(w, _BlockedTensor) and x.dim() >= 2
                    and x.numel() > x.shape[-1] and x.dtype == torch.float32 and not torch.is_grad_enabled()
                    and not torch.is_autocast_enabled("cpu")):
                with torch._C.DisableTorchFunctionSubclass():
                    blocked = w._blocked()
                if blocked is not None:
                    return torch.ops.mkldnn._linear_pointwise(x, blocked, None, "none", [], "")
        # what nn.Parameter does: run the op on the plain tensors (results are plain tensors)
        return torch._C._disabled_torch_function_impl(func, types, args, kwargs or {})

    def _blocked(self) -> torch.Tensor | None:
        """The oneDNN copy (None where oneDNN refused), made again when the weight has changed in place."""
        made = self.__dict__.get("_blocked_copy")
        if made is None or made[0] != self._version:
            try:  # laid out for a few rows (8): the decode products, which this is for
                blocked = torch.ops.mkldnn._reorder_linear_weight(self.detach(), 8)  # type: ignore[attr-defined]
            except RuntimeError:
                blocked = None
            made = self.__dict__["_blocked_copy"] = (self._version, blocked)
        return made[1]
