"""Our :class:`~gniazdo.model.Transformer` as an lm-eval model, and the in-training evaluation built on it.

A saved checkpoint is evaluated through lm-eval's own ``hf`` backend (``save_pretrained`` writes a folder
``transformers`` loads), so published numbers come from the code path everyone else uses. This class exists for
the model that is *not* saved: the trainer's live, in-memory model, every N steps. It scores requests the way
``HFLM`` does (same tokenisation through ``TemplateLM._encode_pair``, same right-padded causal batches, same
slicing of the continuation logits), so the two backends agree on the same weights.
"""

from __future__ import annotations

import logging
import random
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np
import torch
import torch.nn.functional as F
import lm_eval.models  # noqa: F401  (lm-eval fills its model registry lazily only while it is empty: fill it
from lm_eval.api.model import TemplateLM  # before registering ours, or "hf" is no longer found)
from lm_eval.api.registry import register_model

if TYPE_CHECKING:
    from gniazdo.model import Transformer

log = logging.getLogger(__name__)


def _load_tokenizer(tokenizer: Any):
    if not isinstance(tokenizer, (str, Path)):
        return tokenizer
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tokenizer))


@register_model("gniazdo")
class GniazdoLM(TemplateLM):
    """lm-eval model over a live :class:`Transformer` (``model=``) or a saved folder (``pretrained=DIR``).

    It reports rank 0 of a world of 1 on purpose: under DDP/FSDP every rank scores every request, in the same
    order and the same batches, so the sharded forward passes (and their collectives) line up across ranks.
    """

    def __init__(self, model: Transformer | None = None, tokenizer: Any = None, pretrained: str | None = None,
                 batch_size: int | str = 8, max_length: int | None = None, device: str | None = None,
                 dtype: str | None = None, **kwargs: Any) -> None:
        super().__init__()
        if model is None:
            if pretrained is None:
                raise ValueError("GniazdoLM needs model= (a Transformer) or pretrained= (a saved folder)")
            from gniazdo.model import from_pretrained

            model = from_pretrained(pretrained, dtype=dtype if dtype not in (None, "auto") else None,
                                    device=device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if isinstance(model, torch.nn.parallel.DistributedDataParallel):
            model = model.module  # no gradients here, so no DDP sync to keep; FSDP2 modules stay as they are
        self.model = getattr(model, "_orig_mod", model)  # torch.compile's wrapper: call the module itself
        self.tokenizer = _load_tokenizer(tokenizer if tokenizer is not None else pretrained)
        if self.tokenizer is None:
            raise ValueError("GniazdoLM needs a tokenizer (tokenizer= or pretrained=)")
        # "auto" makes sense only for lm-eval's HF backend; here a fixed size keeps ranks in step.
        self.batch_size = int(batch_size) if str(batch_size).isdigit() else 8
        self._max_length = max_length or self.model.cfg.max_seq_len

    # ---------------------------------------------------------------- what TemplateLM needs

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def eot_token_id(self) -> int:
        return self.tokenizer.eos_token_id

    @property
    def prefix_token_id(self) -> int:
        # as HFLM: the context of an empty-context request is BOS (EOS when there is none)
        bos = self.tokenizer.bos_token_id
        return bos if bos is not None else self.tokenizer.eos_token_id

    @property
    def max_length(self) -> int:
        return self._max_length

    @property
    def max_gen_toks(self) -> int:
        return 256

    def tok_encode(self, string: str, add_special_tokens: bool | None = None, **kwargs: Any) -> list[int]:
        # as HFLM with add_bos_token unset: the tokenizer's default, except for a string already starting
        # with BOS
        kw: dict[str, Any] = {} if add_special_tokens is None else {"add_special_tokens": add_special_tokens}
        bos = self.tokenizer.bos_token
        if add_special_tokens is None and bos and string.startswith(bos):
            kw["add_special_tokens"] = False
        return self.tokenizer.encode(string, **kw)

    def tok_decode(self, tokens: list[int]) -> str:
        return self.tokenizer.decode(tokens, skip_special_tokens=False)

    @torch.no_grad()
    def _logprobs(self, batch: list[list[int]]) -> torch.Tensor:
        """Log-softmax [B, T, V] (fp32) of right-padded inputs; padding sits after each row's tokens, so a
        causal model's outputs at real positions do not see it."""
        width = max(len(x) for x in batch)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        for i, x in enumerate(batch):
            ids[i, : len(x)] = torch.tensor(x, dtype=torch.long)
        logits = self.model(ids.to(self.device))
        return F.log_softmax(logits.float(), dim=-1)

    def _loglikelihood_tokens(self, requests: list[tuple[tuple[str, str], list[int], list[int]]],
                              disable_tqdm: bool = False, **kwargs: Any) -> list[tuple[float, bool]]:
        # Longest first, ties by tokens: a deterministic order that depends on the requests only.
        order = sorted(range(len(requests)), key=lambda i: (-len(requests[i][1]) - len(requests[i][2]),
                                                          tuple(requests[i][1] + requests[i][2])))
        out: list[tuple[float, bool] | None] = [None] * len(requests)
        was_training = self.model.training
        self.model.eval()
        try:
            for start in range(0, len(order), self.batch_size):
                idx = order[start: start + self.batch_size]
                inps, conts = [], []
                for i in idx:
                    _, ctx, cont = requests[i]
                    # the last token is only predicted, never fed; too long: keep the right end, like HFLM
                    inps.append((ctx + cont)[-(self.max_length + 1):][:-1])
                    conts.append(cont)
                logprobs = self._logprobs(inps)
                for i, row, inp, cont in zip(idx, logprobs, inps, conts):
                    lp = row[len(inp) - len(cont): len(inp)]
                    target = torch.tensor(cont, dtype=torch.long, device=lp.device)
                    greedy = bool((lp.argmax(dim=-1) == target).all())
                    out[i] = (float(lp.gather(-1, target[:, None]).sum()), greedy)
        finally:
            self.model.train(was_training)
        return out  # type: ignore[return-value]

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
        from lm_eval import utils

        out = []
        for (string,) in [req.args for req in requests]:
            windows = [(None,) + w for w in map(utils.make_disjoint_window, utils.get_rolling_token_windows(
                token_list=self.tok_encode(string), prefix_token=self.prefix_token_id,
                max_seq_len=self.max_length, context_len=1))]
            out.append(sum(ll for ll, _ in self._loglikelihood_tokens(windows)))
        return out

    @torch.no_grad()
    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        """Greedy decoding without a KV cache: simple and slow; the generative suite is meant for ``hf``/vLLM."""
        out = []
        was_training = self.model.training
        self.model.eval()
        try:
            for context, gen_kwargs in [req.args for req in requests]:
                kwargs = dict(gen_kwargs)
                until = kwargs.get("until") or []
                until = [until] if isinstance(until, str) else list(until)
                max_new = int(kwargs.get("max_gen_toks", self.max_gen_toks))
                ids = self.tok_encode(context)[-(self.max_length - max_new):]
                new: list[int] = []
                text = ""
                for _ in range(max_new):
                    nxt = int(self._logprobs([ids + new])[0, -1].argmax())
                    if nxt == self.eot_token_id:
                        break
                    new.append(nxt)
                    text = self.tok_decode(new)
                    if any(s in text for s in until):
                        break
                for s in until:  # lm-eval's convention: cut at the first stop sequence
                    text = text.split(s)[0]
                out.append(text)
        finally:
            self.model.train(was_training)
        return out


@contextmanager
def _rng_preserved() -> Iterator[None]:
    """lm-eval and datasets draw from Python's global ``random`` here and there; a run's data order and dropout
    must not depend on whether it evaluated, so every global generator is put back as it was."""
    py, np_state, cpu = random.getstate(), np.random.get_state(), torch.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
    try:
        yield
    finally:
        random.setstate(py)
        np.random.set_state(np_state)
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)


def evaluate_live(model: Transformer, tokenizer_dir: str | Path | Any, tasks: list[str], limit: int | None = None,
                  batch_size: int = 8, data_dir: str | Path | None = None) -> dict[str, float]:
    """Score a live, in-memory model on multiple-choice tasks; no checkpoint is written.

    ``tasks`` are lm-eval task names (``polish_8tags_multiple_choice``) or their data keys (``8tags``, which
    means the mc variant); ``data_dir`` as ``gniazdo eval --data-dir`` (None: the Hub datasets). Returns
    ``{"<task as given>/acc": accuracy}`` (fractions; a suite name such as ``pl-mc`` gives one key per task).
    Deterministic and rank-independent, so a DDP/FSDP trainer calls it on every rank with the same arguments;
    the model is put back in its train/eval mode and the global RNGs in their state.
    """
    from lm_eval.evaluator import evaluate

    from gniazdo.eval.runner import load_tasks, quiet_f1, resolve_tasks

    label: dict[str, str] = {}  # lm-eval task name -> the name the caller used (a suite: the task names)
    for given in tasks:
        found = resolve_tasks([given], kind="mc")  # a generative task name is an error here
        for name in found:
            label.setdefault(name, given if len(found) == 1 else name)
    with _rng_preserved():
        loaded = load_tasks(list(label), data_dir=data_dir)
        for task in loaded["tasks"].values():
            task.set_config(key="num_fewshot", value=0)
        lm = GniazdoLM(model=model, tokenizer=tokenizer_dir, batch_size=batch_size)
        with quiet_f1():
            results = evaluate(lm=lm, task_dict=loaded, limit=limit, bootstrap_iters=0, log_samples=False)
    return {f"{given}/acc": float(results["results"][name]["acc,none"]) for name, given in label.items()}
