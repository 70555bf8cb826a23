"""The KV cache in the model: incremental logits equal a full forward, whatever the padding and row lengths."""

from __future__ import annotations

import pytest
import torch

from gniazdo.infer.cpu_layout import CpuBlockedLinears, _BlockedTensor, cpu_decode_layout
from gniazdo.model import ModelConfig, Transformer
from gniazdo.model.model import KVCache

from . import randomize

CASES = {
    "llama-gqa": dict(),
    "mha": dict(n_kv_heads=4),
    "tied": dict(tie_embeddings=True),
    "mistral-window": dict(arch="mistral", sliding_window=5),
}


def model_of(**kw) -> Transformer:
    cfg = ModelConfig(**{**dict(vocab_size=97, dim=64, n_layers=2, n_heads=4, n_kv_heads=2, ffn_dim=96,
                                max_seq_len=128), **kw})
    return randomize(Transformer(cfg), std=0.1).eval()


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


@pytest.mark.parametrize("case", CASES)
@torch.no_grad()
def test_prompt_then_one_token_at_a_time_equals_full_forward(case):
    model = model_of(**CASES[case])
    x = torch.randint(0, 97, (2, 24), generator=torch.Generator().manual_seed(1))
    full = model(x)
    cache = KVCache(model.cfg, 2, 32)
    parts = [model(x[:, :9], cache=cache)]  # a prompt, then decoding
    parts += [model(x[:, t: t + 1], cache=cache) for t in range(9, 20)]
    parts.append(model(x[:, 20:], cache=cache))  # a chunk of several tokens on a non-empty cache
    assert cache.lengths == [24, 24]
    assert full.std().item() > 0.3
    assert max_diff(torch.cat(parts, dim=1), full) < 1e-5


@pytest.mark.parametrize("case", CASES)
@torch.no_grad()
def test_left_padded_rows_and_rows_of_different_lengths(case):
    model = model_of(**CASES[case])
    g = torch.Generator().manual_seed(2)
    a, b = torch.randint(0, 97, (1, 13), generator=g), torch.randint(0, 97, (1, 6), generator=g)
    pad = 13 - 6
    ids = torch.cat([a, torch.cat([torch.full((1, pad), 3), b], dim=1)])
    cache = KVCache(model.cfg, 2, 40)
    cache.set_length(1, 0, start=pad)  # row 1: its first `pad` slots are padding
    out = model(ids, cache=cache)
    assert max_diff(out[0], model(a)[0]) < 1e-5
    assert max_diff(out[1, pad:], model(b)[0]) < 1e-5  # positions count from the row's start
    assert not out.isnan().any()  # padding queries see themselves, not nothing

    # then rows of different lengths (scatter path): row 1 decodes alone for a while
    more = torch.randint(0, 97, (2, 8), generator=g)
    cache2 = KVCache(model.cfg, 2, 40)
    cache2.copy_row(cache, 0, 0)
    cache2.copy_row(cache, 1, 1)  # without its padding
    assert cache2.lengths == [13, 6] and cache2.starts == [0, 0]
    step = [model(more[:, t: t + 1], cache=cache2)[:, 0] for t in range(8)]
    ref_a = model(torch.cat([a, more[:1]], dim=1))[0, 13:]
    ref_b = model(torch.cat([b, more[1:]], dim=1))[0, 6:]
    assert max_diff(torch.stack(step, dim=1)[0], ref_a) < 1e-5
    assert max_diff(torch.stack(step, dim=1)[1], ref_b) < 1e-5


@torch.no_grad()
def test_decoding_a_prefix_of_the_rows_leaves_the_others_alone():
    model = model_of()
    cache = KVCache(model.cfg, 3, 16)
    model(torch.randint(0, 97, (3, 5)), cache=cache)
    model(torch.randint(0, 97, (2, 1)), cache=cache)
    assert cache.lengths == [6, 6, 5]


@torch.no_grad()
def test_logits_to_keep_and_cache_full():
    model = model_of()
    x = torch.randint(0, 97, (1, 10))
    assert max_diff(model(x, logits_to_keep=1), model(x)[:, -1:]) < 1e-5
    cache = KVCache(model.cfg, 1, 10)
    model(x, cache=cache)
    with pytest.raises(ValueError, match="KV cache full"):
        model(x[:, :1], cache=cache)
    with pytest.raises(ValueError, match="document_ids"):
        model(x, document_ids=torch.zeros_like(x), cache=KVCache(model.cfg, 1, 10))


@pytest.mark.parametrize("case", ["llama-gqa", "tied", "mistral-window"])
@torch.no_grad()
def test_fused_projections_and_cpu_layout_change_nothing(case):
    model = model_of(**CASES[case])
    x = torch.randint(0, 97, (2, 12))
    before = model(x)
    names = [n for n, _ in model.named_parameters()]
    fused = model_of(**CASES[case])
    fused.fuse_projections(column_major=True)
    cpu_decode_layout(fused)
    assert [n for n, _ in fused.named_parameters()] == names
    assert max_diff(fused(x), before) < 1e-5
    # the separate weights are views of the stacks: no copy, state_dict still complete
    attn = fused.layers[0].self_attn
    assert attn.q_proj.weight.untyped_storage().data_ptr() == attn.qkv.untyped_storage().data_ptr()
    assert set(fused.state_dict()) == set(model.state_dict())
    cache = KVCache(fused.cfg, 2, 16)
    steps = [fused(x[:, :6], cache=cache)] + [fused(x[:, t: t + 1], cache=cache) for t in range(6, 12)]
    assert max_diff(torch.cat(steps, dim=1), before) < 1e-5


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="needs oneDNN")
@pytest.mark.parametrize("case", ["llama-gqa", "tied"])
def test_blocked_linears_change_nothing(case):
    model = model_of(**CASES[case])
    x = torch.randint(0, 97, (2, 12))
    with torch.no_grad():
        before = model(x)
    fast = model_of(**CASES[case])
    fast.fuse_projections(column_major=True)
    cpu_decode_layout(fast)
    state = fast.state_dict()
    blocked = CpuBlockedLinears.for_model(fast)
    attn = fast.layers[0].self_attn
    qkv, down = attn.qkv, fast.layers[0].mlp.down_proj.weight
    with torch.no_grad():
        with blocked:
            assert isinstance(attn.qkv, _BlockedTensor)
            assert max_diff(fast(x), before) < 1e-5  # many rows: the blocked copies
            assert attn.qkv._blocked() is not None
            cache = KVCache(fast.cfg, 2, 16)
            steps = [fast(x[:, :6], cache=cache)] + [fast(x[:, t: t + 1], cache=cache) for t in range(6, 12)]
            assert max_diff(torch.cat(steps, dim=1), before) < 1e-5
            one = fast(x[:1, :1])  # one row: the plain products
            assert type(one) is torch.Tensor and max_diff(one, before[:1, :1]) < 1e-5
        # outside: the model's own tensors, untouched
        assert attn.qkv is qkv and fast.layers[0].mlp.down_proj.weight is down and type(qkv) is torch.Tensor
        assert all(torch.equal(state[k], v) for k, v in fast.state_dict().items())
        # a weight changed in place: its blocked copy is made again
        down.mul_(2)
        model.layers[0].mlp.down_proj.weight.mul_(2)
        with blocked:
            assert max_diff(fast(x), model(x)) < 1e-5
        # a weight assigned anew is followed, and not put back over afterwards; the others keep their copies
        with blocked:
            qkv_view = attn.qkv
        new = torch.nn.Parameter(down * 0.5)
        fast.layers[0].mlp.down_proj.weight = new
        model.layers[0].mlp.down_proj.weight.mul_(0.5)
        with blocked:
            assert max_diff(fast(x), model(x)) < 1e-5
            assert attn.qkv is qkv_view
        assert fast.layers[0].mlp.down_proj.weight is new
        # an error inside still gives the weights back
        with pytest.raises(RuntimeError), blocked:
            raise RuntimeError("boom")
        assert attn.qkv is qkv
