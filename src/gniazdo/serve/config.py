"""``ServeConfig``: what ``gniazdo serve`` runs, from YAML (``--config serve.yaml``) and/or command-line flags.

    models:                       # a folder, "name=folder", or {name, path}; the name defaults to the folder's
      - out/sft-hf
      - bielik=../models/bielik-1.5b
    host: 127.0.0.1               # loopback unless asked: the server has no TLS
    port: 8000
    api_key: null                 # when set, every API route needs "Authorization: Bearer KEY"
    max_batch: 8                  # requests decoded together per model (slots of the KV cache)
    max_queue: 64                 # requests waiting + running per model; more are answered 429
    timeout: 300                  # seconds per request; then it is cancelled (504, or an error event in a stream)
    guard: {lexicon: builtin}     # see gniazdo.serve.guard.GuardConfig

Flags override the file; with ``--log-dir`` the resolved config is written there (``serve.resolved.yaml``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from gniazdo.config import Config
from gniazdo.serve.guard import GuardConfig


class ModelSpec(Config):
    """A served checkpoint folder and the name clients ask for (default: the folder's name)."""

    path: str
    name: str | None = None

    @property
    def served_name(self) -> str:
        return self.name or Path(self.path).resolve().name


class ServeConfig(Config):
    models: list[ModelSpec] = Field(default_factory=list)
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    api_key: str | None = None
    max_batch: int = Field(8, ge=1)
    max_queue: int = Field(64, ge=1)
    timeout: float = Field(300.0, gt=0)
    max_body_bytes: int = Field(1 << 20, ge=1024)
    default_max_tokens: int = Field(1024, ge=1)  # when a request gives none (capped by the context left)
    max_len: int | None = Field(None, ge=2)  # context cap below the model's own
    device: str | None = None  # default: cuda when available
    dtype: Literal["float32", "bfloat16", "float16"] | None = None  # default: as stored
    guard: GuardConfig = Field(default_factory=GuardConfig)
    arena_db: str | None = None  # the arena's vote store (the web pages use it)
    log_dir: str | None = None  # resolved config, guard.jsonl

    @field_validator("models", mode="before")
    @classmethod
    def _from_strings(cls, v: Any) -> Any:
        """``"DIR"`` and ``"name=DIR"`` as the command line gives them."""
        if not isinstance(v, list):
            return v
        return [parse_model(m) if isinstance(m, str) else m for m in v]


def parse_model(text: str) -> dict[str, str]:
    """``name=DIR`` or ``DIR`` (a folder named like ``runs/lr=3e-4`` stays a folder: names have no slash)."""
    name, sep, path = text.partition("=")
    return {"path": path, "name": name} if sep and name and path and "/" not in name else {"path": text}


def resolve_device(device: str | None) -> str:
    if device:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
