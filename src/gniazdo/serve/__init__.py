"""An OpenAI-compatible server: ``gniazdo serve --model DIR``.

    from gniazdo.serve import ServeConfig, create_app, serve
    serve(ServeConfig(models=["out/sft-hf"], port=8000))

Modules: ``config`` (ServeConfig), ``schemas`` (OpenAI bodies), ``worker`` (the batching thread of a model),
``service`` (ChatService: models, generation, guard — for the API and the web pages), ``api`` (the /v1 routes),
``sse`` (the streaming format), ``auth``, ``metrics``, ``errors``, ``guard``, ``web`` (pages), ``app``
(create_app, serve). Names are imported lazily: ``gniazdo.serve.guard`` alone does not load FastAPI.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {"ServeConfig": "gniazdo.serve.config", "create_app": "gniazdo.serve.app", "serve": "gniazdo.serve.app",
            "ChatService": "gniazdo.serve.service", "ServeError": "gniazdo.serve.errors"}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'gniazdo.serve' has no attribute '{name}'")
    import importlib

    return getattr(importlib.import_module(_EXPORTS[name]), name)
