"""The whole decoder-only transformer (Llama / Mistral family) in one file.

Parameter names follow Hugging Face's ``LlamaModel`` so that converting a checkpoint is a prefix change
(``model.`` in front of everything but ``lm_head``), and RoPE uses HF's non-interleaved "rotate_half" layout so
HF q/k weights need no permutation. Packed training rows are supported through ``document_ids``: attention never
crosses a document boundary and positions restart at each document; on CPU such rows attend segment by segment
(one causal SDPA call per document, as flash-attention's varlen kernels do on GPU) rather than through a
[B, 1, T, T] mask, with which SDPA computes every masked-out block too. Generation passes a :class:`KVCache`:
each forward then only computes the new tokens and attends to the keys/values of the earlier ones.
"""

from __future__ import annotations

import math
from typing import Any, Literal, Sequence

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator, model_validator
from torch import nn
from torch.utils.checkpoint import checkpoint

from gniazdo.config import Config

ROPE_TYPES = ("linear", "llama3", "yarn")


class ModelConfig(Config):
    """Shape of the network; field meanings match HF's ``config.json`` (see ``gniazdo.model.hf``)."""

    arch: Literal["llama", "mistral"] = "llama"
    vocab_size: int = Field(gt=0)
    dim: int = Field(gt=0)
    n_layers: int = Field(gt=0)
    n_heads: int = Field(gt=0)
    n_kv_heads: int | None = Field(default=None, gt=0)
    head_dim: int | None = Field(default=None, gt=0)
    ffn_dim: int = Field(gt=0)
    max_seq_len: int = Field(default=2048, gt=0)
    rope_theta: float = Field(default=10000.0, gt=0)
    rope_scaling: dict[str, Any] | None = None
    norm_eps: float = Field(default=1e-5, gt=0)
    tie_embeddings: bool = False
    sliding_window: int | None = Field(default=None, gt=0)
    init_std: float = Field(default=0.02, gt=0)
    bos_id: int = 0
    eos_id: int = 1
    pad_id: int | None = 3

    @field_validator("rope_scaling")
    @classmethod
    def _normalize_rope_scaling(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        # HF has spelled the kind both "type" (old) and "rope_type" (new); keep one spelling so nothing else cares.
        if not v:
            return None
        v = dict(v)
        kind = v.pop("rope_type", None) or v.pop("type", None) or "default"
        v.pop("type", None)
        if kind == "default":
            return None
        if kind not in ROPE_TYPES:
            raise ValueError(f"rope type '{kind}' is not supported (valid: {', '.join(ROPE_TYPES)})")
        if not isinstance(v.get("factor"), (int, float)):
            raise ValueError(f"rope scaling '{kind}' needs a numeric 'factor'")
        if kind == "llama3" and not {"low_freq_factor", "high_freq_factor"} <= v.keys():
            raise ValueError("rope scaling 'llama3' needs 'low_freq_factor' and 'high_freq_factor'")
        return {"rope_type": kind, **v}

    @model_validator(mode="after")
    def _check_shapes(self) -> ModelConfig:
        if self.n_heads % self.kv_heads:
            raise ValueError(f"n_heads ({self.n_heads}) must be a multiple of n_kv_heads ({self.kv_heads})")
        if self.head_size % 2:
            raise ValueError(f"head_dim ({self.head_size}) must be even for RoPE")
        if self.sliding_window is not None and self.arch != "mistral":
            raise ValueError("sliding_window needs arch 'mistral' (HF Llama has no sliding window)")
        return self

    @property
    def kv_heads(self) -> int:
        return self.n_kv_heads or self.n_heads

    @property
    def head_size(self) -> int:
        return self.head_dim or self.dim // self.n_heads


def rope_frequencies(cfg: ModelConfig, device: torch.device | str | None = None) -> tuple[torch.Tensor, float]:
    """Inverse frequencies (fp32, one per rotated pair) and the factor that scales cos/sin (YaRN only).

    The arithmetic mirrors transformers' ``modeling_rope_utils`` so that converted checkpoints give the same
    numbers, including its quirks (YaRN's floor/ceil "truncate" of the ramp ends, llama3's band edges).
    """
    d, base = cfg.head_size, cfg.rope_theta
    inv = 1.0 / (base ** (torch.arange(0, d, 2, dtype=torch.int64, device=device).float() / d))
    s = cfg.rope_scaling
    if s is None:
        return inv, 1.0
    kind, factor = s["rope_type"], float(s["factor"])
    if kind == "linear":  # positions divided by factor == frequencies divided by factor
        return inv / factor, 1.0
    orig = s.get("original_max_position_embeddings") or cfg.max_seq_len
    if kind == "llama3":
        # Long wavelengths (beyond the pretraining context) are slowed by `factor`, short ones kept, the band
        # in between blends the two linearly in 1/wavelength.
        lo, hi = s["low_freq_factor"], s["high_freq_factor"]
        wavelen = 2 * math.pi / inv
        out = torch.where(wavelen > orig / lo, inv / factor, inv)
        smooth = (orig / wavelen - lo) / (hi - lo)
        mid = (wavelen >= orig / hi) & (wavelen <= orig / lo)
        return torch.where(mid, (1 - smooth) * out / factor + smooth * out, out), 1.0

    # YaRN: dimensions that rotate many times within the original context keep their frequency
    # (extrapolate), slow ones are interpolated, with a linear ramp between; cos/sin get a temperature.
    def mscale(scale: float, m: float = 1.0) -> float:
        return 1.0 if scale <= 1 else 0.1 * m * math.log(scale) + 1.0

    attn = s.get("attention_factor")
    if attn is None:
        m, m_all = s.get("mscale"), s.get("mscale_all_dim")
        attn = mscale(factor, m) / mscale(factor, m_all) if m and m_all else mscale(factor)

    def dim_of(rotations: float) -> float:
        return d * math.log(orig / (rotations * 2 * math.pi)) / (2 * math.log(base))

    low, high = dim_of(s.get("beta_fast") or 32), dim_of(s.get("beta_slow") or 1)
    if s.get("truncate", True):
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, d - 1)
    high = high + 0.001 if low == high else high
    ramp = ((torch.arange(d // 2, dtype=torch.float32, device=device) - low) / (high - low)).clamp(0, 1)
    return inv / factor * ramp + inv * (1 - ramp), float(attn)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    # Pairs are (i, i + d/2), not adjacent (i, i + 1): HF's layout, so its q/k weights load unpermuted.
    a, b = x.chunk(2, dim=-1)
    return torch.cat((-b, a), dim=-1)


def positions_from_document_ids(document_ids: torch.Tensor) -> torch.Tensor:
    """Position of each token inside its document: 0 at every change of id along a row."""
    B, T = document_ids.shape
    idx = torch.arange(T, device=document_ids.device).expand(B, T)
    start = torch.ones_like(document_ids, dtype=torch.bool)
    start[:, 1:] = document_ids[:, 1:] != document_ids[:, :-1]
    return idx - torch.where(start, idx, 0).cummax(dim=1).values


def attention_mask(T: int, device: torch.device, document_ids: torch.Tensor | None = None,
                   sliding_window: int | None = None) -> torch.Tensor | None:
    """Boolean [B|1, 1, T, T] mask (True = may attend), or None when plain causal attention is enough."""
    if sliding_window is not None and sliding_window >= T:
        sliding_window = None  # the window cannot bite: keep SDPA's fused causal path
    if document_ids is None and sliding_window is None:
        return None
    q = torch.arange(T, device=device)[:, None]
    k = torch.arange(T, device=device)[None, :]
    mask = k <= q
    if sliding_window is not None:  # HF's convention: a query sees itself and the window-1 keys before it
        mask = mask & (q - k < sliding_window)
    mask = mask[None]
    if document_ids is not None:
        mask = mask & (document_ids[:, :, None] == document_ids[:, None, :])
    return mask[:, None]


class KVCache:
    """Keys and values of earlier tokens, so that generation computes each token once.

    ``k`` and ``v`` are preallocated [n_layers, batch, n_kv_heads, max_len, head_dim] (no copy per token, unlike
    a cache that concatenates). Row ``b`` holds its tokens in slots ``starts[b] .. lengths[b] - 1``; slots before
    ``starts[b]`` are left padding and are never attended to, and positions (RoPE) count from ``starts[b]`` so
    padding does not shift them. A forward with ``cache=`` writes its T new tokens of row b at slots
    ``lengths[b] ..`` and advances ``lengths[b]`` by T; rows ``>=`` the input's batch are left alone, so a
    server can decode a prefix of the slots. Lengths live on the host as Python ints: building positions and
    masks from them never waits for the device.

    Right padding of a prompt needs nothing: its padding comes after the real tokens, so causality hides it; call
    :meth:`set_length` afterwards to drop it (the next token overwrites those slots). Sliding windows (Mistral)
    are applied by the mask; the cache still keeps every token, which keeps the bookkeeping trivial.
    """

    def __init__(self, cfg: ModelConfig, batch_size: int, max_len: int, device: torch.device | str | None = None,
                 dtype: torch.dtype = torch.float32) -> None:
        shape = (cfg.n_layers, batch_size, cfg.kv_heads, max_len, cfg.head_size)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.lengths = [0] * batch_size
        self.starts = [0] * batch_size
        self.sliding_window = cfg.sliding_window
        self.layers = [LayerCache(self, i) for i in range(cfg.n_layers)]
        # RoPE frequencies once per cache rather than once per generated token
        self.inv_freq, self.rope_scale = rope_frequencies(cfg, device=self.k.device)
        self._rows = 0  # batch of the forward in progress
        self._write: int | torch.Tensor = 0  # its first slot (all rows alike) or a per-row scatter index
        self._used = 0  # slots its attention reads (max over rows)

    @property
    def batch_size(self) -> int:
        return self.k.shape[1]

    @property
    def max_len(self) -> int:
        return self.k.shape[3]

    def set_length(self, row: int, length: int, start: int = 0) -> None:
        """Declare row ``row`` to hold slots ``start .. length - 1`` (0, 0 frees the row). Before a left-padded
        prompt goes in, ``start`` is its padding and ``length`` 0."""
        if not (0 <= start <= self.max_len and 0 <= length <= self.max_len):
            raise ValueError(f"row {row}: start {start} and length {length} must lie in 0..{self.max_len}")
        self.starts[row], self.lengths[row] = start, length

    def copy_row(self, src: KVCache, src_row: int, dst_row: int) -> None:
        """Move ``src``'s row (its real slots only, without left padding) into this cache's ``dst_row``."""
        a, b = src.starts[src_row], src.lengths[src_row]
        if b - a > self.max_len:
            raise ValueError(f"row of {b - a} tokens does not fit a cache of {self.max_len}")
        self.k[:, dst_row, :, : b - a] = src.k[:, src_row, :, a:b]
        self.v[:, dst_row, :, : b - a] = src.v[:, src_row, :, a:b]
        self.set_length(dst_row, b - a)

    def begin(self, B: int, T: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Plan a forward of T new tokens for rows 0..B-1: their positions [B, T] and the attention mask
        ([B, 1, T, used slots], True = may attend). The mask is None when it would be trivial: with T == 1
        the token sees every used slot; with T > 1 the rows are empty and attention is plain causal."""
        lengths, starts = self.lengths[:B], self.starts[:B]
        if B > self.batch_size:
            raise ValueError(f"batch of {B} rows for a cache of {self.batch_size}")
        if max(lengths) + T > self.max_len:
            raise ValueError(f"KV cache full: {max(lengths)} + {T} tokens > max_len {self.max_len}")
        device = self.k.device
        uniform = min(lengths) == max(lengths)
        self._rows, self._used = B, max(lengths) + T
        steps = torch.arange(T, device=device)
        if uniform:  # the common case (one prompt, or a batch in lock step): a plain slice write
            self._write = lengths[0]
        else:
            self._write = (torch.tensor(lengths, device=device)[:, None] + steps)[:, None, :, None]
        if uniform and not any(starts):
            positions = (steps + lengths[0]).expand(B, T)
        else:
            positions = torch.tensor([n - s for n, s in zip(lengths, starts)], device=device)[:, None] + steps
        window = self.sliding_window
        if uniform and not any(starts) and (window is None or window >= self._used):
            if T == 1 or lengths[0] == 0:  # decoding in lock step, or a prompt from scratch (fused causal)
                return positions, None
        q = torch.tensor(lengths, device=device)[:, None, None] + steps[:, None]  # [B, T, 1] absolute slot
        k = torch.arange(self._used, device=device)
        mask = (k <= q) & (k >= torch.tensor(starts, device=device)[:, None, None])
        if window is not None:
            mask &= q - k < window
        # a padding query would see no key at all (softmax of nothing = NaN, which its value row would carry
        # into later layers' cache); let every query see itself
        mask |= k == q
        return positions, mask[:, None]

    def end(self, T: int) -> None:
        for b in range(self._rows):
            self.lengths[b] += T

    def reset(self, rows: Sequence[int] | None = None) -> None:
        for b in range(self.batch_size) if rows is None else rows:
            self.set_length(b, 0)


class LayerCache:
    """One layer's view of a :class:`KVCache` (what :class:`Attention` sees)."""

    def __init__(self, cache: KVCache, layer: int) -> None:
        self.cache, self.k, self.v = cache, cache.k[layer], cache.v[layer]

    def update(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store the new keys/values [B, n_kv, T, hd]; return all used slots' [B, n_kv, used, hd] (views)."""
        c = self.cache
        kc, vc = (self.k, self.v) if c._rows == c.batch_size else (self.k[: c._rows], self.v[: c._rows])
        if isinstance(c._write, int):
            kc[:, :, c._write: c._write + k.shape[2]] = k
            vc[:, :, c._write: c._write + v.shape[2]] = v
        else:
            index = c._write.expand(k.shape)
            kc.scatter_(2, index, k)
            vc.scatter_(2, index, v)
        return kc[:, :, : c._used], vc[:, :, : c._used]


class Segments:
    """Attention by segments: the flattened [B * T] positions cut into runs (``lengths``), each attending causally
    among itself only. What a document mask means, without computing the blocks the mask throws away."""

    def __init__(self, lengths: list[int]) -> None:
        self.lengths = lengths


def segment_lengths(document_ids: torch.Tensor) -> list[int]:
    """Lengths of the runs of equal document ids, row after row (a run never crosses a row). A document's tokens
    must be contiguous within a row, as in packed SFT rows and pre-training windows."""
    rows = torch.arange(document_ids.shape[0], device=document_ids.device)[:, None] * (int(document_ids.max()) + 1)
    return torch.unique_consecutive((document_ids + rows).flatten(), return_counts=True)[1].tolist()


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The mean of squares underflows/overflows in bf16; normalize in fp32 and cast back before the gain,
        # in the same order as HF so bf16 outputs agree bit for bit more often.
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x32.to(x.dtype)


CPU_EXPLICIT_ATTENTION_MAX_T = 512  # above this, SDPA's flash kernel is faster on CPU (and needs no [T, T] scores)


def causal_attention_explicit(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Causal attention written out — softmax(q·kᵀ/√d + causal bias)·v, HF's "eager" Llama attention.

    For short sequences on CPU this beats SDPA's flash kernel, whose backward has a large fixed cost (one thread of
    a 2-core EPYC, bf16, 8 × 6 heads of 64, T 256: forward + backward 17 ms vs 44 ms per layer; at T 1024 flash
    wins). The query heads that share a kv head are stacked as the rows of one matrix, so GQA copies no k or v;
    scaling and the causal mask ride in the same batched product (baddbmm). The softmax runs in the scores'
    dtype: torch's CPU kernel accumulates in fp32, so its bf16 output is the fp32 softmax rounded to bf16.
    """
    B, H, T, D = q.shape
    kv, group = k.shape[1], H // k.shape[1]
    scores = torch.baddbmm(_causal_bias(T, group, q.dtype, q.device), q.reshape(B * kv, group * T, D),
                           k.reshape(B * kv, T, D).transpose(1, 2), alpha=1.0 / math.sqrt(D))
    probs = torch.softmax(scores, dim=-1)
    return torch.bmm(probs, v.reshape(B * kv, T, D)).view(B, H, T, D)


_CAUSAL_BIAS: dict[tuple, torch.Tensor] = {}  # a few entries: one per (T, group, dtype, device) in use


def _causal_bias(T: int, group: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """[group · T, T]: 0 where a query (row; group heads stacked) may see a key, −inf in its future."""
    compiling = torch.compiler.is_compiling()  # (a compiled graph folds it into a constant: no cache needed)
    key = (T, group, dtype, device)
    if compiling or key not in _CAUSAL_BIAS:
        future = torch.ones(T, T, dtype=torch.bool, device=device).triu_(1)
        bias = torch.zeros(T, T, dtype=dtype, device=device).masked_fill_(future, float("-inf")).repeat(group, 1)
        if compiling:
            return bias
        if len(_CAUSAL_BIAS) >= 16:
            _CAUSAL_BIAS.clear()
        _CAUSAL_BIAS[key] = bias
    return _CAUSAL_BIAS[key]


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.n_heads, self.n_kv, self.hd = cfg.n_heads, cfg.kv_heads, cfg.head_size
        self.q_proj = nn.Linear(cfg.dim, self.n_heads * self.hd, bias=False)
        self.k_proj = nn.Linear(cfg.dim, self.n_kv * self.hd, bias=False)
        self.v_proj = nn.Linear(cfg.dim, self.n_kv * self.hd, bias=False)
        self.o_proj = nn.Linear(self.n_heads * self.hd, cfg.dim, bias=False)
        self.qkv: torch.Tensor | None = None  # q, k, v weights stacked, after Transformer.fuse_projections

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor | None,
                kv: LayerCache | None = None) -> torch.Tensor:
        B, T, _ = x.shape
        if self.qkv is None:
            q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)
        else:
            q, k, v = F.linear(x, self.qkv).split([self.n_heads * self.hd, self.n_kv * self.hd,
                                                   self.n_kv * self.hd], dim=-1)
        q = q.view(B, T, self.n_heads, self.hd).transpose(1, 2)
        k = k.view(B, T, self.n_kv, self.hd).transpose(1, 2)
        v = v.view(B, T, self.n_kv, self.hd).transpose(1, 2)
        cos, sin = cos[:, None], sin[:, None]  # broadcast over heads
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if kv is None:
            y = self.attend(q, k, v, mask)
        else:
            k, v = kv.update(k, v)
            y = self.attend_cached(q, k, v, mask)
        return self.o_proj(y.transpose(1, 2).reshape(B, T, self.n_heads * self.hd))

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
               mask: torch.Tensor | Segments | None) -> torch.Tensor:
        # Kept apart from the projections: the KV-cache path (attend_cached) uses it for prompts too.
        if mask is None and q.device.type == "cpu" and q.shape[2] <= CPU_EXPLICIT_ATTENTION_MAX_T:
            return causal_attention_explicit(q, k, v)
        if self.n_kv != self.n_heads:
            # Each kv head serves a contiguous group of query heads (HF's repeat_kv). Expanding explicitly
            # rather than SDPA's enable_gqa keeps every backend (incl. masked mem-efficient) available.
            k = k.repeat_interleave(self.n_heads // self.n_kv, dim=1)
            v = v.repeat_interleave(self.n_heads // self.n_kv, dim=1)
        if isinstance(mask, Segments):
            # [B, H, T, D] -> [H, B * T, D] cut into segments: split's backward is one cat (slicing's would add a
            # zero-filled [B, H, T, D] per segment), and 3-D inputs take SDPA's math path, faster on CPU here than
            # the flash kernel.
            B, H, T, D = q.shape
            q, k, v = (t.transpose(0, 1).reshape(H, B * T, D).split(mask.lengths, dim=1) for t in (q, k, v))
            y = torch.cat([F.scaled_dot_product_attention(a, b, c, is_causal=True) for a, b, c in zip(q, k, v)], 1)
            return y.view(H, B, T, D).transpose(0, 1)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=mask is None)

    def attend_cached(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                      mask: torch.Tensor | None) -> torch.Tensor:
        """Attention against a KV cache's keys; ``mask`` None: see :meth:`KVCache.begin`."""
        B, H, T, hd = q.shape
        if T > 1:  # a prompt: once per request, the plain path (None = causal) is fine
            return self.attend(q, k, v, mask)
        # Decoding: one query per head. The query heads sharing a kv head become one sequence of `group` queries
        # against that head's keys, so the growing cache is never expanded (copied) per step; a [B, 1, 1, L]
        # mask broadcasts over both.
        y = F.scaled_dot_product_attention(q.reshape(B, self.n_kv, H // self.n_kv, hd), k, v, attn_mask=mask)
        return y.reshape(B, H, 1, hd)


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(cfg.dim, cfg.ffn_dim, bias=False)
        self.up_proj = nn.Linear(cfg.dim, cfg.ffn_dim, bias=False)
        self.down_proj = nn.Linear(cfg.ffn_dim, cfg.dim, bias=False)
        self.gate_up: torch.Tensor | None = None  # gate and up weights stacked, after fuse_projections

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.gate_up is not None:
            gate, up = F.linear(x, self.gate_up).chunk(2, dim=-1)
            return self.down_proj(F.silu(gate) * up)
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.self_attn = Attention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.mlp = MLP(cfg)
        self.checkpointed = False

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor | None,
                kv: LayerCache | None = None) -> torch.Tensor:
        # Checkpointing sits inside the block's forward (not around its __call__) so FSDP2's hooks on the block
        # stay outside the recomputed region, the composition FSDP2 is designed for.
        if self.checkpointed and torch.is_grad_enabled() and kv is None:
            return checkpoint(self._forward, x, cos, sin, mask, use_reentrant=False)
        return self._forward(x, cos, sin, mask, kv)

    def _forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor | None,
                 kv: LayerCache | None = None) -> torch.Tensor:
        h = x + self.self_attn(self.input_layernorm(x), cos, sin, mask, kv)
        return h + self.mlp(self.post_attention_layernorm(h))


class Transformer(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.lm_head = None if cfg.tie_embeddings else nn.Linear(cfg.dim, cfg.vocab_size, bias=False)
        self.segment_attention = True  # packed rows on CPU attend by segments (off while the blocks are compiled)
        self.init_weights()

    @torch.no_grad()
    def init_weights(self) -> None:
        """GPT-2 / Llama style init; safe to call again after ``to_empty`` when built on the meta device.

        Every embedding and linear weight ~ N(0, init_std). The two projections that write into the residual
        stream (o_proj, down_proj) use init_std / sqrt(2 * n_layers): the stream is a sum of 2 * n_layers such
        outputs, so this keeps its variance at initialization independent of depth. Norm gains start at 1.
        """
        std = self.cfg.init_std
        for name, module in self.named_modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                residual = name.endswith(("o_proj", "down_proj"))
                nn.init.normal_(module.weight, 0.0, std / math.sqrt(2 * self.cfg.n_layers) if residual else std)
            elif isinstance(module, RMSNorm):
                nn.init.ones_(module.weight)

    def forward(self, input_ids: torch.Tensor, position_ids: torch.Tensor | None = None,
                document_ids: torch.Tensor | None = None, cache: KVCache | None = None,
                logits_to_keep: int = 0, logits_at: torch.Tensor | None = None) -> torch.Tensor:
        """Logits [B, T, V] in the compute dtype (the loss should upcast them).

        ``cache``: the tokens are a continuation of the cache's rows 0..B-1 (see :class:`KVCache`); positions
        default to each row's next ones. ``logits_to_keep`` > 0: logits of the last that many positions only
        (generation needs one; a long prompt's [T, V] logits would dwarf the model's activations). ``logits_at``
        (bool [B, T]): logits of those positions only, [N, V] in row-major order (training: no final norm, output
        layer or softmax for positions without a loss, such as SFT prompts and padding).
        """
        B, T = input_ids.shape
        if cache is not None:
            if document_ids is not None:
                raise ValueError("document_ids (packed rows) and a KV cache do not combine")
            positions, mask = cache.begin(B, T)
            position_ids = positions if position_ids is None else position_ids
            inv, scale = cache.inv_freq, cache.rope_scale
        else:
            if position_ids is None:
                position_ids = (positions_from_document_ids(document_ids) if document_ids is not None
                                else torch.arange(T, device=input_ids.device).expand(B, T))
            # Frequencies are recomputed in fp32 each call (a few tiny ops) instead of living in a buffer that
            # model.to(bfloat16) would silently round.
            inv, scale = rope_frequencies(self.cfg, device=input_ids.device)
            window = self.cfg.sliding_window
            if (document_ids is not None and self.segment_attention and input_ids.device.type == "cpu"
                    and (window is None or window >= T)):
                mask = Segments(segment_lengths(document_ids))
            else:
                mask = attention_mask(T, input_ids.device, document_ids, window)
        h = self.embed_tokens(input_ids)
        # cos/sin and the mask are shared by all layers: build them once.
        angles = position_ids[..., None].float() * inv
        angles = torch.cat((angles, angles), dim=-1)
        cos, sin = (angles.cos() * scale).to(h.dtype), (angles.sin() * scale).to(h.dtype)
        for i, layer in enumerate(self.layers):
            h = layer(h, cos, sin, mask, cache.layers[i] if cache is not None else None)
        if cache is not None:
            cache.end(T)
        if logits_to_keep:
            h = h[:, -logits_to_keep:]
        if logits_at is not None:
            h = h[logits_at]
        h = self.norm(h)
        return self.lm_head(h) if self.lm_head is not None else F.linear(h, self.embed_tokens.weight)

    @torch.no_grad()
    def fuse_projections(self, column_major: bool = False) -> None:
        """For inference: one matrix product for q, k, v and one for gate, up, instead of five.

        Decoding multiplies a single row per sequence by each weight, which costs about one read of the weight;
        fewer, larger products use the memory bandwidth better and pay the per-call overhead less often. The
        separate weights become views into the stacked ones, so parameter names, ``state_dict`` and memory use
        are unchanged. ``column_major`` stores the stacked matrices transposed (see
        ``gniazdo.infer.cpu_layout.cpu_decode_layout``). Not for training: gradients would not reach the stacks.
        Call it after any ``.to(device/dtype)``: the stacks are plain tensors that ``.to`` would leave behind.
        """
        def stack(linears: list[nn.Linear]) -> torch.Tensor:
            w = torch.cat([lin.weight for lin in linears])
            w = w.t().contiguous().t() if column_major else w
            start = 0
            for lin in linears:
                n = lin.weight.shape[0]
                lin.weight.data = w[start: start + n]
                start += n
            return w

        for layer in self.layers:
            a, m = layer.self_attn, layer.mlp
            a.qkv = stack([a.q_proj, a.k_proj, a.v_proj])
            m.gate_up = stack([m.gate_proj, m.up_proj])

    def enable_activation_checkpointing(self, enabled: bool = True) -> None:
        """Recompute each block's activations in backward: memory per block drops to its input."""
        for layer in self.layers:
            layer.checkpointed = enabled

    def num_params(self, exclude_embeddings: bool = False) -> int:
        n = sum(p.numel() for p in self.parameters())  # parameters() yields a tied weight once
        return n - self.embed_tokens.weight.numel() if exclude_embeddings else n

    def flops_per_token(self, seq_len: int) -> int:
        """Training FLOPs per token, PaLM-style (appendix B), for MFU.

        6 * N counts forward (2) + backward (4) multiply-adds of every weight matmul, with N = non-embedding
        parameters plus the output projection (a matmul even when tied to the embedding; the embedding lookup is
        not). Attention scores and the weighted sum add 12 * n_layers * n_heads * head_dim * seq_len; like PaLM
        we do not halve it for the causal mask, so numbers compare with published MFU.
        """
        c = self.cfg
        n = self.num_params(exclude_embeddings=True) + (c.vocab_size * c.dim if c.tie_embeddings else 0)
        return 6 * n + 12 * c.n_layers * c.n_heads * c.head_size * seq_len
