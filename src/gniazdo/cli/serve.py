"""``gniazdo serve``: an OpenAI-compatible server for one or more checkpoints."""

from __future__ import annotations

import click

from gniazdo.errors import UserError


@click.command(context_settings={"ignore_unknown_options": True})
@click.option("--model", "models", multiple=True, metavar="[NAME=]DIR",
              help="A Hugging Face folder to serve (repeat for several); named as the folder unless NAME= is given.")
@click.option("--config", "config_path", default=None, help="A serve config YAML (flags override it).")
@click.option("--host", default=None, help="Address to bind (default 127.0.0.1: this machine only).")
@click.option("--port", type=int, default=None, help="Port (default 8000).")
@click.option("--api-key", default=None, envvar="GNIAZDO_API_KEY",
              help="Require 'Authorization: Bearer KEY' on the API (or set GNIAZDO_API_KEY).")
@click.option("--max-batch", type=int, default=None, help="Requests decoded together per model (default 8).")
@click.option("--max-queue", type=int, default=None,
              help="Requests waiting + running per model before 429 (default 64).")
@click.option("--timeout", type=float, default=None, help="Seconds per request before it is cancelled (default 300).")
@click.option("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda when available).")
@click.option("--dtype", type=click.Choice(["float32", "bfloat16", "float16"]), default=None,
              help="Weights dtype (default: as stored).")
@click.option("--guard-lexicon", default=None, help="Word list for the guard ('builtin': the package's tiny one).")
@click.option("--arena-db", default=None, help="SQLite file for the arena's votes (default: not kept).")
@click.option("--log-dir", default=None, help="Write the resolved config and guard.jsonl here.")
@click.argument("overrides", nargs=-1)
def serve(models, config_path, host, port, api_key, max_batch, max_queue, timeout, device, dtype, guard_lexicon,
          arena_db, log_dir, overrides) -> None:
    """Serve checkpoints over an OpenAI-compatible HTTP API, with a chat page and an arena.

    Routes: GET /v1/models, POST /v1/chat/completions (streams too), POST /v1/completions (echo + logprobs
    for lm-evaluation-harness), GET /health, GET /metrics (Prometheus); the chat page at / and the arena at
    /arena. Requests to one model are batched together as they arrive. key=value arguments override the config
    (e.g. max_body_bytes=2097152 default_max_tokens=512).

    \b
    Example:
      gniazdo serve --model out/sft-hf
      gniazdo serve --model bielik=../models/bielik --model out/sft-hf --port 8080 --api-key s3cret
      gniazdo serve --config serve.yaml --guard-lexicon builtin --log-dir logs/serve
    """
    from gniazdo.config import apply_overrides, read_yaml, validate
    from gniazdo.serve.app import serve as run
    from gniazdo.serve.config import ServeConfig, parse_model

    data = read_yaml(config_path) if config_path else {}
    flags = {"host": host, "port": port, "api_key": api_key, "max_batch": max_batch, "max_queue": max_queue,
             "timeout": timeout, "device": device, "dtype": dtype, "arena_db": arena_db, "log_dir": log_dir}
    data.update({k: v for k, v in flags.items() if v is not None})
    if models:
        data["models"] = [parse_model(m) for m in models]
    if guard_lexicon:
        data["guard"] = {**(data.get("guard") or {}), "lexicon": guard_lexicon}
    cfg = validate(ServeConfig, apply_overrides(data, overrides), source=config_path or "")
    if not cfg.models:
        raise UserError("no model to serve: give --model DIR (or models: in --config)")
    run(cfg)
