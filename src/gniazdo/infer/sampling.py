"""How the next token is chosen: :class:`SamplingParams` and the logits → token step.

The order of the transformations is transformers' (``generate``'s logits processors), so the same settings mean
the same distribution: repetition penalty on the raw logits, then temperature, then top-k, then top-p, then a
draw. Temperature 0 is greedy (argmax of the penalized logits). Each request may bring its own seed: it gets its
own ``torch.Generator``, so its tokens do not depend on which other requests share the batch.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gniazdo.config import describe_validation_error
from gniazdo.errors import UserError

MAX_STOP_STRINGS = 16  # OpenAI allows 4; a few more cost nothing, hundreds would slow every step's search


class InvalidSamplingParams(UserError, ValueError):
    """A bad sampling setting: one line naming the field (a ValueError too, so a server answers 400)."""


class SamplingParams(BaseModel):
    """Settings of one request. Construct with keywords; a bad value raises :class:`InvalidSamplingParams`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_new_tokens: int = Field(256, ge=1)
    temperature: float = Field(1.0, ge=0.0)  # 0: greedy
    top_k: int = Field(0, ge=0)  # 0: off
    top_p: float = Field(1.0, gt=0.0, le=1.0)  # 1: off
    repetition_penalty: float = Field(1.0, gt=0.0)  # 1: off; CTRL's, > 1 discourages tokens already present
    stop: list[str] = Field(default_factory=list, max_length=MAX_STOP_STRINGS)  # cut the text before these
    stop_token_ids: list[int] = Field(default_factory=list)  # end the request, besides the model's end tokens
    ignore_eos: bool = False  # keep going past the model's end tokens (benchmarks)
    seed: int | None = None
    logprobs: bool = False  # report each generated token's log-probability (of the unmodified distribution)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as e:
            raise InvalidSamplingParams(describe_validation_error(e, type(self), source="sampling")) from None

    @field_validator("stop", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else (v if v is not None else [])

    @field_validator("stop")
    @classmethod
    def _non_empty(cls, v: list[str]) -> list[str]:
        if any(s == "" for s in v):
            raise ValueError("a stop string may not be empty")
        return v

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


def make_generator(seed: int | None, device: torch.device | str) -> torch.Generator | None:
    """A request's random stream: seeded, or None for torch's global one."""
    return None if seed is None else torch.Generator(device=device).manual_seed(seed)


def apply_repetition_penalty(logits: torch.Tensor, seen: torch.Tensor, penalty: torch.Tensor) -> torch.Tensor:
    """CTRL (Keskar et al., 2019) as transformers does it: for tokens already in the prompt or the output
    (``seen``, bool [B, V]), positive logits are divided by the penalty and negative ones multiplied, so a
    penalty > 1 always lowers their probability. ``penalty``: [B, 1]."""
    return torch.where(seen, torch.where(logits > 0, logits / penalty, logits * penalty), logits)


def top_k_filter(logits: torch.Tensor, ks: Sequence[int]) -> torch.Tensor:
    """Keep each row's k largest logits (ties at the k-th kept too, as transformers does); k = 0 keeps all."""
    V = logits.shape[-1]
    ks = [k if 0 < k < V else 0 for k in ks]
    if not any(ks):
        return logits
    kth = torch.topk(logits, max(ks), dim=-1).values  # [B, kmax], descending
    index = torch.tensor([max(k, 1) - 1 for k in ks], device=logits.device)[:, None]
    threshold = kth.gather(1, index)
    off = torch.tensor([k == 0 for k in ks], device=logits.device)[:, None]
    return logits.masked_fill((logits < threshold) & ~off, float("-inf"))


def top_p_filter(logits: torch.Tensor, ps: Sequence[float]) -> torch.Tensor:
    """Nucleus sampling: keep the most likely tokens until their mass reaches p. A token goes when the tokens
    more likely than it already hold >= p (transformers' boundary); the most likely token always stays."""
    if all(p >= 1.0 for p in ps):
        return logits
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    probs = sorted_logits.softmax(dim=-1)
    before = probs.cumsum(dim=-1) - probs  # mass of the strictly more likely tokens
    p = torch.tensor(ps, device=logits.device, dtype=probs.dtype)[:, None]
    drop_sorted = before >= p
    drop_sorted[:, 0] = False
    drop = torch.zeros_like(drop_sorted).scatter(1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def sample(logits: torch.Tensor, params: Sequence[SamplingParams], generators: Sequence[torch.Generator | None],
           seen: torch.Tensor | None = None) -> list[int]:
    """One token per row of ``logits`` [B, V] (fp32), each row with its own settings and generator.

    ``seen`` (bool [B, V]) is needed only when some row has a repetition penalty.
    """
    if seen is not None and any(p.repetition_penalty != 1.0 for p in params):
        penalty = torch.tensor([p.repetition_penalty for p in params], device=logits.device)[:, None]
        logits = apply_repetition_penalty(logits, seen, penalty)
    if all(p.greedy for p in params):
        return logits.argmax(dim=-1).tolist()
    temperature = torch.tensor([p.temperature or 1.0 for p in params], device=logits.device)[:, None]
    scaled = top_p_filter(top_k_filter(logits / temperature, [p.top_k for p in params]), [p.top_p for p in params])
    probs = scaled.softmax(dim=-1)
    out = logits.argmax(dim=-1).tolist()  # the greedy rows' answer; sampled rows overwrite theirs
    for i, (p, g) in enumerate(zip(params, generators)):
        if not p.greedy:
            out[i] = int(torch.multinomial(probs[i], 1, generator=g))
    return out
