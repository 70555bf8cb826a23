"""The FastAPI app: routes, the api key, errors in OpenAI's shape, the body limit, metrics; and ``serve``.

    app = create_app(ServeConfig(models=["out/sft-hf"]))          # loads the engines
    app = create_app(config, engines={"tiny": Engine.from_model(...)})   # tests: engines built in memory
    app.state.service   # the ChatService (routes and web pages), app.state.config, app.state.metrics

Routes: ``/v1/models``, ``/v1/chat/completions``, ``/v1/completions`` (:mod:`gniazdo.serve.api`) and
``/metrics`` behind the api key; ``/health`` open; the web pages (:mod:`gniazdo.serve.web`) when present.
Every error is ``{"error": {"message", "type", "code"}}`` with its status: 400 bad JSON/field/too long for the
context, 401 key, 404 unknown model or route, 413 body over ``max_body_bytes``, 429 queue full, 504 timeout.
"""

from __future__ import annotations

import logging
import time
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gniazdo.errors import UserError
from gniazdo.serve.api import api_router
from gniazdo.serve.auth import auth_dependencies
from gniazdo.serve.config import ServeConfig, resolve_device
from gniazdo.serve.errors import ERROR_TYPES, ServeError, error_body
from gniazdo.serve.guard import Guard
from gniazdo.serve.metrics import ServeMetrics
from gniazdo.serve.service import ChatService

log = logging.getLogger("gniazdo.serve")
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def create_app(config: ServeConfig, engines: dict[str, Any] | None = None, guard: Guard | None = None) -> FastAPI:
    """The server for ``config``; ``engines`` (name → Engine) instead of loading ``config.models``; ``guard``
    instead of the one ``config.guard`` builds."""
    if engines is None:
        engines = load_engines(config)
    if not engines:
        raise UserError("no model to serve: give --model DIR")
    metrics = ServeMetrics()
    service = ChatService(config, engines, metrics, guard)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.start()
        yield
        service.close()

    app = FastAPI(title="gniazdo", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.config, app.state.service, app.state.metrics = config, service, metrics
    add_error_handlers(app)
    app.include_router(api_router(config))
    add_health_and_metrics(app, config, service, metrics)
    try:
        from gniazdo.serve.web import web_router
    except ModuleNotFoundError as e:  # only a missing web module; an error inside it should surface
        if e.name != "gniazdo.serve.web":
            raise
        web_router = None
    if web_router is not None:
        app.include_router(web_router(config))
    # outermost first: metrics see every answer (401, 413 too); the body limit runs before any route reads
    app.add_middleware(BodyLimit, max_bytes=config.max_body_bytes)
    app.add_middleware(RequestMetrics, metrics=metrics)
    return app


def add_health_and_metrics(app: FastAPI, config: ServeConfig, service: ChatService, metrics: ServeMetrics) -> None:
    async def health() -> dict[str, Any]:
        return {"status": "ok", "models": service.model_names()}

    async def prometheus() -> Response:
        metrics.refresh(service.workers)
        return Response(metrics.render(), media_type=metrics.content_type)

    app.add_api_route("/health", health, methods=["GET"])
    app.add_api_route("/metrics", prometheus, methods=["GET"], dependencies=auth_dependencies(config))


def add_error_handlers(app: FastAPI) -> None:
    async def serve_error(request: Request, e: Exception) -> JSONResponse:
        assert isinstance(e, ServeError)
        return JSONResponse(e.body(), status_code=e.status)

    async def http_error(request: Request, e: Exception) -> JSONResponse:
        assert isinstance(e, HTTPException)
        message = e.detail if isinstance(e.detail, str) else str(e.detail)
        if e.status_code == 404 and message == "Not Found":
            message = f"no route {request.method} {request.url.path}"
        return JSONResponse(error_body(e.status_code, message), status_code=e.status_code, headers=e.headers)

    async def validation_error(request: Request, e: Exception) -> JSONResponse:
        assert isinstance(e, RequestValidationError)
        first = e.errors()[0] if e.errors() else {"loc": (), "msg": "invalid request"}
        field = ".".join(str(p) for p in first["loc"] if p != "body")
        return JSONResponse(error_body(400, f"{field}: {first['msg']}" if field else first["msg"]), status_code=400)

    app.add_exception_handler(ServeError, serve_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)


class BodyLimit:
    """413 for a body over ``max_bytes``: at once when Content-Length says so, else while reading it (a
    chunked upload is buffered up to the limit and replayed to the app). After the body, ``receive`` is the
    server's again, so a disconnect still reaches the app."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await self._refuse(scope, receive, send)
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                chunks.append(message)  # a disconnect: the app will see it
                break
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            chunks.append(message)
            if not message.get("more_body", False):
                break
        body = b"".join(m.get("body", b"") for m in chunks if m["type"] == "http.request")
        replay: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]
        replay += [m for m in chunks if m["type"] != "http.request"]

        async def replayed() -> Message:
            return replay.pop(0) if replay else await receive()

        await self.app(scope, replayed, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = f"the request body is larger than the server's limit of {self.max_bytes} bytes"
        await JSONResponse(error_body(413, message), status_code=413)(scope, receive, send)


class RequestMetrics:
    """Counts every HTTP answer by route template and status, and its latency until the last byte."""

    def __init__(self, app: ASGIApp, metrics: ServeMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.observe_request(route, status, time.perf_counter() - t0, ERROR_TYPES.get(status))


def load_engines(config: ServeConfig) -> dict[str, Any]:
    """Each configured folder as an Engine, under its served name (two alike: an error naming them)."""
    from pathlib import Path

    import torch

    from gniazdo.infer.engine import Engine

    engines: dict[str, Any] = {}
    device = resolve_device(config.device)
    dtype = getattr(torch, config.dtype) if config.dtype else None
    for spec in config.models:
        if not Path(spec.path).is_dir():
            raise UserError(f"model folder not found: {spec.path}")
        name = spec.served_name
        if name in engines:
            raise UserError(f"two models are served as '{name}': give one a name (--model NAME=DIR)")
        log.info("loading %s from %s on %s", name, spec.path, device)
        engines[name] = Engine(spec.path, device=device, dtype=dtype, max_batch=config.max_batch,
                               max_len=config.max_len)
    return engines


def serve(config: ServeConfig) -> None:
    """Load the models and run the server until interrupted (uvicorn; one process, one worker thread per
    model)."""
    import uvicorn

    from gniazdo.config import save_resolved

    _log_to_stderr()
    config = config.model_copy(update={"device": resolve_device(config.device)})
    if config.log_dir:  # the key itself stays out of the file
        shown = config.model_copy(update={"api_key": "(set)" if config.api_key else None})
        save_resolved(shown, config.log_dir, "serve.resolved.yaml")
    if config.host not in LOOPBACK and not config.api_key:
        log.warning("serving on %s without an api key: anyone who can reach the port can use it", config.host)
    app = create_app(config)
    uvicorn.run(app, host=config.host, port=config.port, log_level="info")


def _log_to_stderr() -> None:
    """Our INFO lines (models loading, guard hits) beside uvicorn's, in its format."""
    logger = logging.getLogger("gniazdo")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
