from __future__ import annotations

import math

import pydantic
import pytest
import torch
import torch.nn.functional as F

from gniazdo.errors import UserError
from gniazdo.model import ModelConfig, PRESETS, Transformer, model_config, positions_from_document_ids
from gniazdo.model.model import attention_mask, rope_frequencies


def small(**kw) -> ModelConfig:
    base = dict(vocab_size=96, dim=64, n_layers=2, n_heads=4, n_kv_heads=2, ffn_dim=96, max_seq_len=128)
    return ModelConfig(**{**base, **kw})


def randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    # Default init gives near-zero logits, which would make any comparison pass; use O(1) activations.
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1 + (1.0 if "norm" in name else 0.0))
    return model


# --- packed sequences --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kw", [dict(), dict(arch="mistral", sliding_window=4), dict(tie_embeddings=True)])
def test_packed_row_equals_documents_run_alone(kw):
    torch.manual_seed(0)
    model = randomize(Transformer(small(**kw))).eval()
    lengths = [7, 5, 9]
    docs = [torch.randint(0, 96, (1, n)) for n in lengths]
    packed = torch.cat(docs, dim=1)
    document_ids = torch.cat([torch.full((1, n), i) for i, n in enumerate(lengths)], dim=1)
    with torch.no_grad():
        out = model(packed, document_ids=document_ids)
        alone = torch.cat([model(d) for d in docs], dim=1)
        unpacked = model(packed)
    assert out.shape == (1, sum(lengths), 96)
    assert (out - alone).abs().max().item() < 1e-5
    # without document_ids the later documents see the earlier ones: the mask is what makes them equal
    assert (unpacked[:, lengths[0]:] - alone[:, lengths[0]:]).abs().max().item() > 1e-3


def test_packed_batch_rows_are_independent():
    model = randomize(Transformer(small())).eval()
    x = torch.randint(0, 96, (2, 12))
    doc = torch.tensor([[0] * 5 + [1] * 7, [0] * 12])
    with torch.no_grad():
        both = model(x, document_ids=doc)
        row0 = model(x[:1], document_ids=doc[:1])
        row1 = model(x[1:])
    assert (both[:1] - row0).abs().max().item() < 1e-5
    assert (both[1:] - row1).abs().max().item() < 1e-5


def test_segment_attention_equals_the_document_mask():
    """CPU packed rows attend by segments: the same outputs and gradients as with the [B, 1, T, T] mask."""
    x = torch.randint(0, 96, (3, 16))
    doc = torch.tensor([[0] * 5 + [1] * 9 + [2] * 2, [0] * 16, [0] + [1] * 14 + [2]])
    results = []
    for segments in (True, False):
        model = randomize(Transformer(small()))
        model.segment_attention = segments
        out = model(x, document_ids=doc)
        out.square().mean().backward()
        results.append((out.detach(), [p.grad for p in model.parameters()]))
    (a, ga), (b, gb) = results
    assert (a - b).abs().max().item() < 1e-5
    assert max((g1 - g2).abs().max().item() for g1, g2 in zip(ga, gb)) < 1e-5


def test_logits_at_selects_positions():
    model = randomize(Transformer(small())).eval()
    x = torch.randint(0, 96, (2, 10))
    at = torch.rand(2, 10) < 0.5
    with torch.no_grad():
        assert torch.allclose(model(x, logits_at=at), model(x)[at], atol=1e-6)


def test_positions_from_document_ids():
    doc = torch.tensor([[0, 0, 0, 1, 1, 2, 2, 2, 2], [5, 5, 5, 5, 5, 5, 5, 5, 7]])
    expected = torch.tensor([[0, 1, 2, 0, 1, 0, 1, 2, 3], [0, 1, 2, 3, 4, 5, 6, 7, 0]])
    assert torch.equal(positions_from_document_ids(doc), expected)


def test_explicit_position_ids_override_document_restart():
    model = randomize(Transformer(small())).eval()
    x = torch.randint(0, 96, (1, 10))
    doc = torch.tensor([[0] * 4 + [1] * 6])
    with torch.no_grad():
        restart = model(x, document_ids=doc)
        same = model(x, position_ids=positions_from_document_ids(doc), document_ids=doc)
        shifted = model(x, position_ids=torch.arange(10)[None] + 7, document_ids=doc)
        spread = model(x, position_ids=torch.arange(10)[None] * 3, document_ids=doc)
    assert torch.equal(restart, same)
    # RoPE only sees offsets: shifting every position changes nothing, spreading them changes the output
    assert (restart - shifted).abs().max().item() < 1e-5
    assert (restart[:, 1:] - spread[:, 1:]).abs().max().item() > 1e-3


def test_attention_mask():
    assert attention_mask(8, torch.device("cpu")) is None  # plain causal: SDPA's is_causal path
    assert attention_mask(8, torch.device("cpu"), sliding_window=8) is None  # a window that cannot bite
    m = attention_mask(6, torch.device("cpu"), sliding_window=3)[0, 0]
    assert m[5].tolist() == [False, False, False, True, True, True]  # itself and the 2 before
    assert m[0].tolist() == [True] + [False] * 5
    m = attention_mask(5, torch.device("cpu"), document_ids=torch.tensor([[0, 0, 1, 1, 1]]))[0, 0]
    assert m[3].tolist() == [False, False, True, True, False]


def test_sliding_window_limits_context():
    torch.manual_seed(0)
    model = randomize(Transformer(small(arch="mistral", sliding_window=4))).eval()
    x = torch.randint(0, 96, (1, 12))
    y = x.clone()
    y[0, 0] = (x[0, 0] + 1) % 96  # change a token far outside the last positions' window
    with torch.no_grad():
        a, b = model(x), model(y)
    # every layer widens the receptive field by window-1 = 3 tokens: after 2 layers, position >= 7 is blind to 0
    assert (a[0, 7:] - b[0, 7:]).abs().max().item() == 0.0
    assert (a[0, 1:4] - b[0, 1:4]).abs().max().item() > 1e-4


# --- config and presets ------------------------------------------------------------------------------------------

def test_tiny_preset_size_and_overrides():
    cfg = model_config("tiny")
    n = Transformer(cfg).num_params()
    assert 5e6 <= n <= 20e6
    cfg2 = model_config("tiny", n_layers=2, vocab_size=1000, tie_embeddings=False)
    assert (cfg2.n_layers, cfg2.vocab_size, cfg2.tie_embeddings, cfg2.dim) == (2, 1000, False, 256)


def test_presets_are_valid_and_sized():
    # The big presets are checked by arithmetic on the config (no 11B model is built in a unit test).
    def params(cfg: ModelConfig) -> int:
        attn = cfg.dim * cfg.head_size * (2 * cfg.n_heads + 2 * cfg.kv_heads)
        per_layer = attn + 3 * cfg.dim * cfg.ffn_dim + 2 * cfg.dim
        head = 0 if cfg.tie_embeddings else cfg.vocab_size * cfg.dim
        return cfg.n_layers * per_layer + cfg.vocab_size * cfg.dim + head + cfg.dim

    sizes = {name: params(model_config(name)) for name in PRESETS}
    assert sizes["tiny"] == Transformer(model_config("tiny")).num_params()
    assert 100e6 < sizes["125m"] < 160e6
    assert 0.9e9 < sizes["1b"] < 1.3e9
    assert 7.0e9 < sizes["mistral-7b"] < 7.5e9  # Mistral-7B: 7.24B
    assert 11.0e9 < sizes["bielik-11b"] < 11.4e9  # Bielik 11B v2: 11.17B
    assert model_config("mistral-7b").sliding_window == 4096
    assert model_config("bielik-11b").sliding_window is None


def test_unknown_preset_is_one_line_user_error():
    with pytest.raises(UserError) as e:
        model_config("gpt5")
    msg = str(e.value)
    assert "gpt5" in msg and "tiny" in msg and "bielik-11b" in msg and "\n" not in msg


def test_unknown_keys_rejected():
    with pytest.raises(pydantic.ValidationError):
        ModelConfig(vocab_size=10, dim=8, n_layers=1, n_heads=2, ffn_dim=8, hidden_size=8)
    with pytest.raises(UserError, match="unknown key 'n_head'"):
        model_config("tiny", n_head=4)


@pytest.mark.parametrize("kw, needle", [
    (dict(n_heads=4, n_kv_heads=3), "multiple of n_kv_heads"),
    (dict(rope_scaling={"type": "dynamic", "factor": 2.0}), "not supported"),
    (dict(rope_scaling={"rope_type": "linear"}), "factor"),
    (dict(rope_scaling={"rope_type": "llama3", "factor": 8.0}), "low_freq_factor"),
    (dict(sliding_window=16), "mistral"),
])
def test_config_validation(kw, needle):
    with pytest.raises(UserError, match=needle):
        model_config("tiny", **kw)


def test_config_defaults_and_rope_scaling_spellings():
    cfg = small(n_kv_heads=None)
    assert cfg.kv_heads == 4 and cfg.head_size == 16
    assert small(head_dim=32).head_size == 32
    legacy = small(rope_scaling={"type": "linear", "factor": 2.0})
    assert legacy.rope_scaling == {"rope_type": "linear", "factor": 2.0}
    assert small(rope_scaling={"rope_type": "default"}).rope_scaling is None


def test_rope_frequencies():
    cfg = small(rope_theta=10000.0)
    inv, scale = rope_frequencies(cfg)
    assert scale == 1.0 and inv.shape == (8,)
    assert torch.allclose(inv, 1.0 / 10000.0 ** (torch.arange(0, 16, 2) / 16))
    lin, _ = rope_frequencies(small(rope_scaling={"rope_type": "linear", "factor": 4.0}))
    assert torch.allclose(lin, inv / 4)
    yarn, yscale = rope_frequencies(small(rope_scaling={"rope_type": "yarn", "factor": 4.0,
                                                        "original_max_position_embeddings": 32}))
    assert yscale == pytest.approx(0.1 * math.log(4.0) + 1.0)
    assert yarn[0] == inv[0] and torch.isclose(yarn[-1], inv[-1] / 4)  # fast dims kept, slow ones interpolated


# --- init, accounting, checkpointing -----------------------------------------------------------------------------

def test_init_scheme():
    torch.manual_seed(0)
    cfg = small(dim=256, n_layers=8, n_heads=4, n_kv_heads=4, ffn_dim=512, vocab_size=512)
    model = Transformer(cfg)
    std = cfg.init_std
    assert model.embed_tokens.weight.std().item() == pytest.approx(std, rel=0.05)
    assert model.layers[0].self_attn.q_proj.weight.std().item() == pytest.approx(std, rel=0.05)
    assert model.layers[0].mlp.down_proj.weight.std().item() == pytest.approx(std / 4, rel=0.05)  # sqrt(2*8)=4
    assert model.layers[3].self_attn.o_proj.weight.std().item() == pytest.approx(std / 4, rel=0.05)
    assert torch.equal(model.layers[0].input_layernorm.weight, torch.ones(256))


def test_meta_device_build_then_init():
    with torch.device("meta"):
        model = Transformer(small())
    assert model.embed_tokens.weight.is_meta
    model.to_empty(device="cpu")
    model.init_weights()
    assert torch.equal(model.norm.weight, torch.ones(64))
    out = model(torch.randint(0, 96, (1, 8)))
    assert torch.isfinite(out).all()


def test_num_params_and_flops_per_token():
    cfg = small(vocab_size=100, dim=32, n_layers=2, n_heads=4, n_kv_heads=2, ffn_dim=48)
    hd, kv = 8, 2
    attn = 32 * 4 * hd + 2 * 32 * kv * hd + 4 * hd * 32  # q, k+v, o
    layer = attn + 3 * 32 * 48 + 2 * 32  # + mlp + two norms
    body = 2 * layer + 32  # + final norm
    untied = Transformer(cfg)
    assert untied.num_params() == body + 2 * 100 * 32
    assert untied.num_params(exclude_embeddings=True) == body + 100 * 32
    seq = 64
    attention = 12 * 2 * 4 * hd * seq
    assert untied.flops_per_token(seq) == 6 * (body + 100 * 32) + attention
    tied = Transformer(cfg.model_copy(update={"tie_embeddings": True}))
    assert tied.num_params() == body + 100 * 32
    # the tied output projection is still a matmul per token
    assert tied.flops_per_token(seq) == 6 * (body + 100 * 32) + attention


def test_activation_checkpointing_same_gradients():
    torch.manual_seed(0)
    ref = randomize(Transformer(small()))
    ckpt = randomize(Transformer(small()))
    ckpt.enable_activation_checkpointing()
    x = torch.randint(0, 96, (2, 16))
    doc = torch.tensor([[0] * 6 + [1] * 10] * 2)
    grads = []
    for model in (ref, ckpt):
        model.zero_grad()
        logits = model(x, document_ids=doc)
        torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), x.roll(-1, 1).flatten()).backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        assert (grads[0][name] - grads[1][name]).abs().max().item() < 1e-6, name
    assert all(layer.checkpointed for layer in ckpt.layers)


def test_bf16_logits_dtype_and_rope_stays_fp32():
    model = randomize(Transformer(small())).eval()
    x = torch.randint(0, 96, (1, 32))
    with torch.no_grad():
        ref = model(x)
        out = model.to(torch.bfloat16)(x)
    assert out.dtype == torch.bfloat16
    assert (out.float() - ref).abs().max().item() < 0.1


@pytest.mark.parametrize("heads,kv", [(6, 2), (4, 4)])
def test_explicit_causal_attention_equals_sdpa(heads, kv):
    """The CPU path for short sequences (scores written out, GQA without copies) = SDPA with repeated kv heads,
    values and gradients."""
    from gniazdo.model.model import causal_attention_explicit

    g = torch.Generator().manual_seed(0)
    q = torch.randn(2, heads, 9, 16, generator=g, requires_grad=True)
    k = torch.randn(2, kv, 9, 16, generator=g, requires_grad=True)
    v = torch.randn(2, kv, 9, 16, generator=g, requires_grad=True)
    w = torch.randn(2, heads, 9, 16, generator=g)
    ours = causal_attention_explicit(q, k, v)
    grads = torch.autograd.grad((ours * w).sum(), (q, k, v))
    rep = heads // kv
    ref = F.scaled_dot_product_attention(q, k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1), is_causal=True)
    ref_grads = torch.autograd.grad((ref * w).sum(), (q, k, v))
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-5)
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
