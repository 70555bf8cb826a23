from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

transformers = pytest.importorskip("transformers")
from transformers import (  # noqa: E402
    AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM,
)

from gniazdo.errors import UserError  # noqa: E402
from gniazdo.model import (  # noqa: E402
    ModelConfig, Transformer, config_from_hf, config_to_hf, from_pretrained, save_pretrained,
)

from .test_model import randomize, small  # noqa: E402

T = 40  # longer than the sliding windows and the "original" contexts below, so both take effect
LLAMA3 = {"rope_type": "llama3", "factor": 4.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
          "original_max_position_embeddings": 16}
YARN = {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 16}

CASES = {
    "llama-gqa": dict(),
    "tied": dict(tie_embeddings=True),
    "mistral-window": dict(arch="mistral", sliding_window=8),
    "rope-linear": dict(rope_scaling={"rope_type": "linear", "factor": 4.0}),
    "rope-llama3": dict(rope_scaling=LLAMA3),
    "rope-yarn": dict(rope_scaling=YARN),
}


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


@pytest.fixture
def tokens():
    return torch.randint(0, 96, (2, T), generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_ours_to_transformers(case, attn, tokens, tmp_path):
    cfg = small(**CASES[case])
    model = randomize(Transformer(cfg)).eval()
    save_pretrained(model, tmp_path)
    hf = AutoModelForCausalLM.from_pretrained(tmp_path, dtype=torch.float32, attn_implementation=attn).eval()
    assert type(hf).__name__ == ("MistralForCausalLM" if cfg.arch == "mistral" else "LlamaForCausalLM")
    with torch.no_grad():
        ours, theirs = model(tokens), hf(tokens).logits
    assert ours.std().item() > 0.3  # real activations, not a vacuous near-zero comparison
    assert max_diff(ours, theirs) < 1e-4


def _hf_model(case: str) -> torch.nn.Module:
    common = dict(vocab_size=96, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=128, rms_norm_eps=1e-5, pad_token_id=3)
    kw = dict(CASES[case])
    if kw.pop("arch", "llama") == "mistral":
        model = MistralForCausalLM(MistralConfig(**common, sliding_window=kw.pop("sliding_window")))
    else:
        rope = kw.pop("rope_scaling", None)
        # transformers 5 keeps RoPE in rope_parameters (theta inside); that is also what it writes to disk
        rope_parameters = {"rope_theta": 10000.0, **(rope or {"rope_type": "default"})}
        model = LlamaForCausalLM(LlamaConfig(**common, rope_parameters=rope_parameters,
                                             tie_word_embeddings=kw.pop("tie_embeddings", False)))
    assert not kw
    return randomize(model).eval()


@pytest.mark.parametrize("case", CASES)
def test_transformers_to_ours(case, tokens, tmp_path):
    hf = _hf_model(case)
    hf.save_pretrained(tmp_path)
    model = from_pretrained(tmp_path)
    assert model.cfg.model_dump() == small(**CASES[case], pad_id=3, bos_id=1, eos_id=2).model_dump()
    with torch.no_grad():
        ours, theirs = model(tokens), hf(tokens).logits
    assert ours.std().item() > 0.3
    assert max_diff(ours, theirs) < 1e-4


def test_rope_scaling_and_window_change_the_output(tokens):
    # Guards the parity tests above: each option must actually matter at this sequence length.
    base = randomize(Transformer(small())).eval()
    with torch.no_grad():
        ref = base(tokens)
        for case in ("mistral-window", "rope-linear", "rope-llama3", "rope-yarn"):
            other = Transformer(small(**CASES[case]))
            other.load_state_dict(base.state_dict())
            assert max_diff(other.eval()(tokens), ref) > 1e-2, case


@pytest.mark.parametrize("case", CASES)
def test_config_round_trip(case):
    cfg = small(**CASES[case], init_std=0.01, norm_eps=1e-6, rope_theta=5e5, bos_id=5, eos_id=6, pad_id=None)
    d = config_to_hf(cfg, torch.bfloat16)
    assert d["torch_dtype"] == "bfloat16" and d["model_type"] == cfg.arch
    assert d["architectures"] == ["MistralForCausalLM" if cfg.arch == "mistral" else "LlamaForCausalLM"]
    assert config_from_hf(d) == cfg


def test_config_from_hf_formats():
    base = dict(model_type="llama", vocab_size=96, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                num_attention_heads=4)
    legacy = config_from_hf({**base, "rope_theta": 5e5, "rope_scaling": {"type": "linear", "factor": 2.0}})
    assert legacy.rope_theta == 5e5 and legacy.rope_scaling == {"rope_type": "linear", "factor": 2.0}
    v5 = config_from_hf({**base, "rope_parameters": {"rope_type": "default", "rope_theta": 5e5}})
    assert v5.rope_theta == 5e5 and v5.rope_scaling is None
    llama3 = config_from_hf({**base, "eos_token_id": [128001, 128009], "bos_token_id": 128000,
                             "pad_token_id": None})
    assert (llama3.bos_id, llama3.eos_id, llama3.pad_id) == (128000, 128001, None)
    assert config_from_hf({**base, "model_type": "mistral"}).sliding_window == 4096  # MistralConfig default
    assert config_from_hf({**base, "model_type": "mistral", "sliding_window": None}).sliding_window is None


@pytest.mark.parametrize("patch, needle", [
    ({"model_type": "gpt2"}, "model_type 'gpt2'"),
    ({"hidden_act": "gelu"}, "hidden_act"),
    ({"attention_bias": True}, "attention_bias"),
    ({"num_attention_heads": None}, "missing key 'num_attention_heads'"),
    ({"num_key_value_heads": 3}, "multiple of n_kv_heads"),
    ({"rms_norm_eps": "small"}, "rms_norm_eps: .*got 'small'"),
    ({"rope_scaling": {"rope_type": "dynamic", "factor": 2.0}}, "rope_scaling: .*'dynamic' is not supported"),
])
def test_config_from_hf_errors(patch, needle):
    d = config_to_hf(small())
    d.update(patch)
    with pytest.raises(UserError, match=needle):
        config_from_hf(d)


def test_save_files_dtype_and_tokenizer(tmp_path):
    model = randomize(Transformer(small(tie_embeddings=True)))
    tok = tmp_path / "tok"
    tok.mkdir()
    (tok / "tokenizer.json").write_text('{"version": "1.0"}')
    (tok / "tokenizer_config.json").write_text("{}")
    (tok / "unrelated.txt").write_text("x")
    out = save_pretrained(model, tmp_path / "out", dtype=torch.bfloat16, tokenizer_dir=tok)
    names = sorted(p.name for p in out.iterdir())
    assert names == ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
                     "tokenizer_config.json"]  # and no temp files left behind
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["torch_dtype"] == "bfloat16" and cfg["tie_word_embeddings"] is True
    assert json.loads((out / "generation_config.json").read_text()) == {"bos_token_id": 0, "eos_token_id": 1,
                                                                         "pad_token_id": 3}
    tensors = load_file(out / "model.safetensors")
    assert "lm_head.weight" not in tensors and "model.embed_tokens.weight" in tensors
    assert all(t.dtype == torch.bfloat16 for t in tensors.values())
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        assert f.metadata() == {"format": "pt"}
    loaded = from_pretrained(out, dtype=torch.float32)
    assert loaded.embed_tokens.weight.dtype == torch.float32
    assert torch.equal(loaded.embed_tokens.weight, model.embed_tokens.weight.bfloat16().float())
    assert from_pretrained(out).embed_tokens.weight.dtype == torch.bfloat16  # default: as stored
    with pytest.raises(UserError, match="tokenizer folder not found"):
        save_pretrained(model, tmp_path / "out2", tokenizer_dir=tmp_path / "nope")


def test_sharded_save_and_load(tokens, tmp_path):
    model = randomize(Transformer(small())).eval()
    out = save_pretrained(model, tmp_path, max_shard_bytes=40_000)
    shards = sorted(p.name for p in out.glob("model-*.safetensors"))
    assert len(shards) > 2 and shards[0] == f"model-00001-of-{len(shards):05d}.safetensors"
    assert not (out / "model.safetensors").exists()
    index = json.loads((out / "model.safetensors.index.json").read_text())
    assert set(index["weight_map"].values()) == set(shards)
    assert index["metadata"]["total_size"] == 4 * model.num_params()
    with torch.no_grad():
        ref = model(tokens)
        assert max_diff(from_pretrained(out)(tokens), ref) == 0.0
        hf = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
        assert max_diff(hf(tokens).logits, ref) < 1e-4
    # saving again unsharded removes the stale shards and index
    save_pretrained(model, out)
    assert sorted(p.name for p in out.glob("model*")) == ["model.safetensors"]


def _write(tmp_path, tensors: dict) -> None:
    save_file(tensors, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})


def test_from_pretrained_errors(tmp_path):
    model = Transformer(small())
    save_pretrained(model, tmp_path)
    good = load_file(tmp_path / "model.safetensors")

    _write(tmp_path, {k: v for k, v in good.items() if k != "model.layers.1.mlp.up_proj.weight"})
    with pytest.raises(UserError, match=r"missing tensor 'model\.layers\.1\.mlp\.up_proj\.weight'"):
        from_pretrained(tmp_path)

    _write(tmp_path, {**good, "model.layers.0.self_attn.q_proj.bias": torch.zeros(64)})
    with pytest.raises(UserError,
                       match=r"model\.safetensors: unexpected tensor 'model\.layers\.0\.self_attn\.q_proj\.bias"):
        from_pretrained(tmp_path)

    _write(tmp_path, {**good, "model.norm.weight": torch.ones(65)})
    with pytest.raises(UserError, match=r"model\.safetensors: tensor 'model\.norm\.weight' has shape \[65\]"):
        from_pretrained(tmp_path)

    # old checkpoints carry RoPE buffers: ignored
    _write(tmp_path, {**good, "model.layers.0.self_attn.rotary_emb.inv_freq": torch.ones(8)})
    from_pretrained(tmp_path)

    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(UserError, match="no model.safetensors"):
        from_pretrained(tmp_path)
    with pytest.raises(UserError, match="no config.json"):
        from_pretrained(tmp_path / "missing")


def test_pytorch_bin_fallback(tokens, tmp_path):
    model = randomize(Transformer(small(tie_embeddings=True))).eval()
    save_pretrained(model, tmp_path)
    state = load_file(tmp_path / "model.safetensors")
    state["lm_head.weight"] = state["model.embed_tokens.weight"].clone()  # some tied checkpoints store it anyway
    torch.save(state, tmp_path / "pytorch_model.bin")
    (tmp_path / "model.safetensors").unlink()
    with torch.no_grad():
        assert max_diff(from_pretrained(tmp_path)(tokens), model(tokens)) == 0.0


def test_compiled_wrapper_names_are_plain(tmp_path):
    class Wrapped(torch.nn.Module):  # stands in for torch.compile's OptimizedModule
        def __init__(self, m):
            super().__init__()
            self._orig_mod = m

    model = Transformer(small())
    save_pretrained(Wrapped(model), tmp_path)
    assert "model.norm.weight" in load_file(tmp_path / "model.safetensors")


def test_model_config_is_pydantic():
    assert isinstance(small(), ModelConfig)
