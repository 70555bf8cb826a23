"""Hugging Face format: ``config.json`` <-> :class:`ModelConfig`, and safetensors checkpoints in and out.

A saved folder loads with ``transformers.AutoModelForCausalLM.from_pretrained`` (and so with vLLM, llama.cpp's
converter, lm-eval); any Llama or Mistral checkpoint from the Hub loads with :func:`from_pretrained`. Our parameter
names are HF's minus the ``model.`` prefix, so no tensor is reshaped or permuted on the way.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

import torch
from pydantic import ValidationError
from safetensors import safe_open
from safetensors.torch import save_file

from gniazdo.errors import UserError
from gniazdo.model.model import ModelConfig, Transformer

HF_ARCH = {"llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM"}
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model")
MAX_SHARD_BYTES = 5 * 10**9  # HF's default "5GB": a shard stays below the Hub's per-file limit
_WEIGHT_FILE = re.compile(r"^model(-\d{5}-of-\d{5})?\.safetensors(\.index\.json)?$")


def config_to_hf(cfg: ModelConfig, dtype: torch.dtype = torch.float32) -> dict[str, Any]:
    """The ``config.json`` of ``cfg`` for ``LlamaForCausalLM`` / ``MistralForCausalLM``.

    RoPE goes out in the legacy ``rope_theta`` + ``rope_scaling`` form: transformers 5 converts it to
    ``rope_parameters`` on load, and older readers (transformers 4, vLLM, llama.cpp) only know this form.
    """
    out: dict[str, Any] = {
        "architectures": [HF_ARCH[cfg.arch]],
        "model_type": cfg.arch,
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.dim,
        "intermediate_size": cfg.ffn_dim,
        "num_hidden_layers": cfg.n_layers,
        "num_attention_heads": cfg.n_heads,
        "num_key_value_heads": cfg.kv_heads,
        "head_dim": cfg.head_size,
        "hidden_act": "silu",
        "max_position_embeddings": cfg.max_seq_len,
        "initializer_range": cfg.init_std,
        "rms_norm_eps": cfg.norm_eps,
        "rope_theta": cfg.rope_theta,
        "rope_scaling": dict(cfg.rope_scaling) if cfg.rope_scaling else None,
        "attention_bias": False,
        "attention_dropout": 0.0,
        "mlp_bias": False,
        "tie_word_embeddings": cfg.tie_embeddings,
        "bos_token_id": cfg.bos_id,
        "eos_token_id": cfg.eos_id,
        "pad_token_id": cfg.pad_id,
        "use_cache": True,
        "torch_dtype": str(dtype).removeprefix("torch."),
    }
    if cfg.arch == "mistral":
        out["sliding_window"] = cfg.sliding_window  # written even when None: HF's default would be 4096
    return out


def config_from_hf(d: dict[str, Any], source: str = "config.json") -> ModelConfig:
    """A :class:`ModelConfig` from a Llama or Mistral ``config.json`` (any transformers version's RoPE format)."""
    model_type = d.get("model_type")
    if model_type not in HF_ARCH:
        raise UserError(f"{source}: model_type '{model_type}' is not supported (valid: {', '.join(HF_ARCH)})")
    for key in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads"):
        if d.get(key) is None:
            raise UserError(f"{source}: missing key '{key}'")
    if d.get("hidden_act", "silu") != "silu":
        raise UserError(f"{source}: hidden_act '{d['hidden_act']}' is not supported (only silu)")
    for key in ("attention_bias", "mlp_bias"):
        if d.get(key):
            raise UserError(f"{source}: {key}=true is not supported")
    # transformers >= 5 writes rope_parameters (theta inside); older files have rope_theta + rope_scaling.
    # Like transformers, a non-empty rope_scaling wins.
    rope = dict(d.get("rope_scaling") or d.get("rope_parameters") or {})
    theta = rope.pop("rope_theta", None) or d.get("rope_theta") or 10000.0
    if rope.pop("partial_rotary_factor", None) not in (None, 1, 1.0):
        raise UserError(f"{source}: partial_rotary_factor is not supported")
    try:  # an explicit head_dim only when it is not the default (Mistral-Nemo style), so configs compare equal
        default_head_dim = d["hidden_size"] // d["num_attention_heads"]
    except (TypeError, ZeroDivisionError):
        default_head_dim = None  # validation below reports the bad value
    head_dim = d.get("head_dim")
    data: dict[str, Any] = {
        "arch": model_type,
        "vocab_size": d["vocab_size"],
        "dim": d["hidden_size"],
        "n_layers": d["num_hidden_layers"],
        "n_heads": d["num_attention_heads"],
        "n_kv_heads": d.get("num_key_value_heads"),
        "head_dim": None if head_dim == default_head_dim else head_dim,
        "ffn_dim": d["intermediate_size"],
        "max_seq_len": d.get("max_position_embeddings", 2048),
        "rope_theta": theta,
        "rope_scaling": rope or None,
        "norm_eps": d.get("rms_norm_eps", 1e-6),
        "tie_embeddings": bool(d.get("tie_word_embeddings", False)),
        "init_std": d.get("initializer_range", 0.02),
        "pad_id": d.get("pad_token_id"),
    }
    if model_type == "mistral":
        data["sliding_window"] = d.get("sliding_window", 4096)  # MistralConfig's default when the key is absent
    for ours, theirs, default in (("bos_id", "bos_token_id", 1), ("eos_id", "eos_token_id", 2)):
        value = d.get(theirs, default)
        if isinstance(value, list):  # Llama 3 lists several end tokens; the first is the canonical one
            value = value[0] if value else None
        if value is not None:
            data[ours] = value
    try:
        return ModelConfig.model_validate(data)
    except ValidationError as e:  # name the config.json key, not ours
        err = e.errors()[0]
        key = _HF_KEY.get(str(err["loc"][0]), str(err["loc"][0])) if err["loc"] else ""
        got = f" (got {err['input']!r})" if key else ""
        raise UserError(f"{source}: {key + ': ' if key else ''}{err['msg']}{got}") from None


_HF_KEY = {"dim": "hidden_size", "n_layers": "num_hidden_layers", "n_heads": "num_attention_heads",
           "n_kv_heads": "num_key_value_heads", "ffn_dim": "intermediate_size",
           "max_seq_len": "max_position_embeddings", "norm_eps": "rms_norm_eps", "rope_scaling": "rope_scaling",
           "tie_embeddings": "tie_word_embeddings", "init_std": "initializer_range", "bos_id": "bos_token_id",
           "eos_id": "eos_token_id", "pad_id": "pad_token_id"}


def _hf_name(name: str) -> str:
    return name if name.startswith("lm_head.") else f"model.{name}"


def _our_name(hf_name: str) -> str | None:
    if hf_name.startswith("lm_head."):
        return hf_name
    return hf_name.removeprefix("model.") if hf_name.startswith("model.") else None


def _temp_beside(path: Path) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o644)
    return Path(tmp)


def save_pretrained(model: Transformer, out_dir: str | Path, dtype: torch.dtype | None = None,
                    tokenizer_dir: str | Path | None = None, *, max_shard_bytes: int = MAX_SHARD_BYTES) -> Path:
    """Write ``model`` as a Hugging Face folder: config, generation config, safetensors (sharded when large).

    Every file is first written under a temp name in ``out_dir`` and renamed into place only once all of them
    are complete (config.json last), so a crash never leaves a folder that loads half-written weights. Weight
    files of an earlier save that the new one does not use are removed. ``model`` must be unsharded (gather an
    FSDP model's full state dict first); ``dtype`` converts the weights (default: as they are).
    """
    model = getattr(model, "_orig_mod", model)  # torch.compile wraps the module
    cfg: ModelConfig = model.cfg
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = {_hf_name(k): v for k, v in model.state_dict().items()}
    for name, t in state.items():
        if type(t) is not torch.Tensor and hasattr(t, "full_tensor"):
            raise ValueError(f"save_pretrained: '{name}' is a sharded DTensor; gather a full state dict first")
    file_dtype = dtype or next(iter(state.values())).dtype

    shards: list[list[str]] = [[]]
    size = 0
    for name, t in state.items():
        nbytes = t.numel() * (dtype or t.dtype).itemsize
        if shards[-1] and size + nbytes > max_shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append(name)
        size += nbytes
    n = len(shards)
    files = ["model.safetensors"] if n == 1 else [f"model-{i + 1:05d}-of-{n:05d}.safetensors" for i in range(n)]

    pending: list[tuple[Path, Path]] = []  # (temp, final), renamed in this order
    try:
        for file, names in zip(files, shards):  # one shard in memory at a time
            tmp = _temp_beside(out / file)
            pending.append((tmp, out / file))
            tensors = {k: state[k].detach().to("cpu", dtype or state[k].dtype).contiguous() for k in names}
            save_file(tensors, str(tmp), metadata={"format": "pt"})
        jsons: dict[str, Any] = {
            "generation_config.json": {"bos_token_id": cfg.bos_id, "eos_token_id": cfg.eos_id,
                                       **({"pad_token_id": cfg.pad_id} if cfg.pad_id is not None else {})},
        }
        if n > 1:
            total = sum(state[k].numel() * (dtype or state[k].dtype).itemsize for k in state)
            jsons["model.safetensors.index.json"] = {
                "metadata": {"total_size": total},
                "weight_map": {k: file for file, names in zip(files, shards) for k in names},
            }
        if tokenizer_dir is not None:
            for src in _tokenizer_files(Path(tokenizer_dir)):
                tmp = _temp_beside(out / src.name)
                pending.append((tmp, out / src.name))
                shutil.copyfile(src, tmp)
        jsons["config.json"] = config_to_hf(cfg, file_dtype)
        for file, obj in jsons.items():
            tmp = _temp_beside(out / file)
            pending.append((tmp, out / file))
            tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        for tmp, final in pending:
            os.replace(tmp, final)
    except BaseException:
        for tmp, _ in pending:
            tmp.unlink(missing_ok=True)
        raise
    keep = set(files) | ({"model.safetensors.index.json"} if n > 1 else set())
    for old in out.iterdir():
        if _WEIGHT_FILE.match(old.name) and old.name not in keep:
            old.unlink()
    return out


def _tokenizer_files(tokenizer_dir: Path) -> list[Path]:
    if not tokenizer_dir.is_dir():
        raise UserError(f"tokenizer folder not found: {tokenizer_dir}")
    found = [tokenizer_dir / f for f in TOKENIZER_FILES if (tokenizer_dir / f).is_file()]
    if not found:
        raise UserError(f"{tokenizer_dir}: no tokenizer files (expected some of {', '.join(TOKENIZER_FILES)})")
    return found


def _weight_files(path: Path) -> list[Path]:
    """The weight files of an HF folder, preferring safetensors as transformers does."""
    for single, index in (("model.safetensors", "model.safetensors.index.json"),
                          ("pytorch_model.bin", "pytorch_model.bin.index.json")):
        if (path / single).is_file():
            return [path / single]
        if (path / index).is_file():
            try:
                weight_map = json.loads((path / index).read_text(encoding="utf-8"))["weight_map"]
            except (ValueError, KeyError) as e:
                raise UserError(f"{path / index}: not a valid weight index ({e})") from None
            files = [path / f for f in dict.fromkeys(weight_map.values())]
            for f in files:
                if not f.is_file():
                    raise UserError(f"{path / index}: shard {f.name} is missing")
            return files
    raise UserError(f"{path}: no model.safetensors, sharded safetensors or pytorch_model.bin")


def _read_tensors(file: Path) -> Iterator[tuple[str, torch.Tensor]]:
    if file.suffix == ".safetensors":
        with safe_open(str(file), framework="pt", device="cpu") as f:
            for name in f.keys():
                yield name, f.get_tensor(name)
    else:
        yield from torch.load(file, map_location="cpu", weights_only=True).items()


def from_pretrained(path: str | Path, dtype: torch.dtype | str | None = None,
                    device: torch.device | str = "cpu") -> Transformer:
    """Load a Llama/Mistral HF folder into a :class:`Transformer` (in eval mode).

    ``dtype`` None keeps the stored dtype. Every tensor must match the config: a missing, unexpected or
    misshapen one is a one-line UserError naming it. RoPE ``inv_freq`` buffers of old checkpoints are ignored
    (they are recomputed from the config), as is ``lm_head.weight`` when the embeddings are tied.
    """
    path = Path(path)
    config_file = path / "config.json"
    if not config_file.is_file():
        raise UserError(f"{path}: no config.json (not a Hugging Face model folder)")
    try:
        raw = json.loads(config_file.read_text(encoding="utf-8"))
    except ValueError as e:
        raise UserError(f"{config_file}: not valid JSON ({e})") from None
    cfg = config_from_hf(raw, source=str(config_file))
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    with torch.device("meta"):  # no memory and no random init for weights about to be replaced
        model = Transformer(cfg)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    state: dict[str, torch.Tensor] = {}
    for file in _weight_files(path):
        for hf_name, tensor in _read_tensors(file):
            if hf_name.endswith("rotary_emb.inv_freq") or (hf_name == "lm_head.weight" and cfg.tie_embeddings):
                continue
            name = _our_name(hf_name)
            if name not in expected:
                raise UserError(f"{file}: unexpected tensor '{hf_name}'")
            if tuple(tensor.shape) != expected[name]:
                raise UserError(f"{file}: tensor '{hf_name}' has shape {list(tensor.shape)}, "
                                f"the config needs {list(expected[name])}")
            state[name] = tensor.to(device=device, dtype=dtype or tensor.dtype)
    missing = sorted(expected.keys() - state.keys())
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise UserError(f"{path}: missing tensor '{_hf_name(missing[0])}'{more}")
    model.load_state_dict(state, strict=True, assign=True)
    return model.eval()
