"""The OpenAI routes: ``GET /v1/models``, ``POST /v1/chat/completions``, ``POST /v1/completions``.

Bodies are parsed here rather than by FastAPI, so that a malformed body is a 400 in OpenAI's error shape naming
the field, like every other error.

``/v1/completions`` with ``echo`` and ``logprobs: k`` is what lm-evaluation-harness's ``local-completions``
backend sends for log-likelihood tasks (``max_tokens: 1``, ``temperature: 0``; ``max_tokens: 0`` works too and
skips generating): ``choices[i].logprobs`` has, per token of prompt + completion, its text (``tokens``), its
log-probability (``token_logprobs``, None for the first prompt token, which nothing predicts), the ``k`` most
likely tokens at that position plus the chosen one (``top_logprobs``, token text → log-probability) and where
the token starts in ``text`` (``text_offset``). Log-probabilities come from one forward pass over prompt +
completion on the model's worker thread. A token's text is the token alone (a piece of a multi-byte character
shows as U+FFFD); its offset counts the characters of the text decoded before it. Without ``echo`` the same
covers the completion only, offsets counted from the start of the completion's text.

Streams (``stream: true``): chat, and completions of one prompt without logprobs. The guard (see
:mod:`gniazdo.serve.service`) applies to generation, not to ``max_tokens: 0`` requests.

Timeouts (``ServeConfig.timeout``): the request is cancelled on its worker; a plain request is answered 504, a
stream that has begun ends with an error event (``{"error": {..., "code": 504}}``) and ``[DONE]``, no finish chunk
(OpenAI's clients raise it as an APIError, rather than take a cut answer for a complete one).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, Coroutine, Sequence, TypeVar

from fastapi import APIRouter, Request
from pydantic import BaseModel, ValidationError

from gniazdo.infer.engine import PREFIX_TOKENS, IncrementalDecoder
from gniazdo.serve.auth import auth_dependencies
from gniazdo.serve.errors import ServeError
from gniazdo.serve.guard import REFUSAL_PL
from gniazdo.serve.schemas import (
    AssistantMessage, ChatChoice, ChatCompletion, ChatCompletionRequest, CompletionChoice, CompletionRequest,
    CompletionResponse, Logprobs, ModelCard, ModelList, Usage,
)
from gniazdo.serve.service import ChatService, Delta, disconnect_watch, new_id
from gniazdo.serve.sse import chat_sse_response, completion_sse_response

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")
STARTED = int(time.time())


def api_router(config: Any) -> APIRouter:
    """The /v1 routes, behind the config's api key."""
    router = APIRouter(dependencies=auth_dependencies(config))
    router.add_api_route("/v1/models", list_models, methods=["GET"])
    router.add_api_route("/v1/chat/completions", chat_completions, methods=["POST"], response_model=None)
    router.add_api_route("/v1/completions", completions, methods=["POST"], response_model=None)
    return router


def service_of(request: Request) -> ChatService:
    return request.app.state.service


async def read_body(request: Request, schema: type[M]) -> M:
    """The JSON body as ``schema``; 400 naming the problem (bad JSON, the first bad field)."""
    raw = await request.body()
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise ServeError(400, f"the body is not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise ServeError(400, f"the body must be a JSON object, not {type(data).__name__}")
    try:
        return schema.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(p) for p in first["loc"] if not str(p).startswith(("function-", "list[", "str")))
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "missing":
            raise ServeError(400, f"missing required field '{field}'", param=field) from None
        got = first.get("input")
        shown = f" (got {got!r})" if not isinstance(got, (dict, list)) else ""
        raise ServeError(400, f"{field}: {message}{shown}", param=field) from None


def sampling(req: ChatCompletionRequest | CompletionRequest, max_new_tokens: int) -> Any:
    try:
        return req.sampling(max_new_tokens)
    except ValueError as e:  # InvalidSamplingParams: "sampling: top_p: ..."
        raise ServeError(400, str(e).removeprefix("sampling: ")) from None


async def list_models(request: Request) -> dict[str, Any]:
    service = service_of(request)
    cards = [ModelCard(id=name, created=STARTED, max_model_len=service.max_len(name)) for name in service.model_names()]
    return ModelList(data=cards).model_dump()


async def chat_completions(request: Request) -> Any:
    req = await read_body(request, ChatCompletionRequest)
    service = service_of(request)
    service.worker(req.model)  # 404 before anything else
    wanted = req.max_new_tokens
    params = sampling(req, wanted or service.config.default_max_tokens)
    watch = None if req.stream else request.is_disconnected  # a stream is cancelled when its client goes
    stream = await service.open_chat(req.model, req.messages, params, watch, clip=wanted is None)
    if req.stream:
        return chat_sse_response(stream, req.model, include_usage=req.include_usage)
    text, last = await collect(stream)
    if last.finish_reason == "content_filter":
        text = REFUSAL_PL  # the whole reply, not the part before the hit
    choice = ChatChoice(message=AssistantMessage(content=text), finish_reason=last.finish_reason or "stop")
    return ChatCompletion(id=new_id("chatcmpl"), model=req.model, choices=[choice],
                          usage=Usage.of(last.prompt_tokens, last.completion_tokens)).model_dump()


async def collect(stream: Any) -> tuple[str, Delta]:
    parts: list[str] = []
    last = Delta()
    async for d in stream:
        parts.append(str(d))
        last = d
    return "".join(parts), last


async def completions(request: Request) -> Any:
    req = await read_body(request, CompletionRequest)
    service = service_of(request)
    service.worker(req.model)
    prompts = req.prompts()
    ids = [service.prompt_ids(req.model, p) for p in prompts]
    for prompt_ids in ids:  # every prompt must fit before any starts
        service.fit(req.model, len(prompt_ids), req.max_tokens)
    params = sampling(req, max(req.max_tokens, 1))
    if req.stream:
        return stream_completion(request, req, prompts, ids, params)
    service.worker(req.model).ensure_room(len(prompts))  # all or none: a half-started batch would be wasted
    watch = disconnect_watch(request.is_disconnected)
    choices = await gather([complete_one(service, req, i, p, x, params, watch)
                            for i, (p, x) in enumerate(zip(prompts, ids))])
    usage = Usage.of(sum(map(len, ids)), sum(n for _, n in choices))
    return CompletionResponse(id=new_id("cmpl"), model=req.model, choices=[c for c, _ in choices],
                              usage=usage).model_dump()


def stream_completion(request: Request, req: CompletionRequest, prompts: list[Any], ids: list[list[int]],
                      params: Any) -> Any:
    if len(prompts) > 1:
        raise ServeError(400, "stream: only one prompt can be streamed", param="stream")
    if req.logprobs is not None or req.echo or not req.max_tokens:
        raise ServeError(400, "stream: not supported with logprobs, echo or max_tokens 0", param="stream")
    service = service_of(request)
    text = prompts[0] if isinstance(prompts[0], str) else service.engine(req.model).decode(ids[0])
    if service.flag_prompt(req.model, text):
        deltas: Any = _one(Delta(REFUSAL_PL, "content_filter", len(ids[0]), 0))
    else:
        generation = service.start_generation(req.model, ids[0], params)
        deltas = service.guard_stream(req.model, generation.deltas())
    return completion_sse_response(deltas, req.model, include_usage=req.include_usage)


async def complete_one(service: ChatService, req: CompletionRequest, index: int, prompt: str | list[int],
                       ids: list[int], params: Any, watch: Any) -> tuple[CompletionChoice, int]:
    """One choice of a completions request, and how many tokens it generated."""
    engine = service.engine(req.model)
    prompt_text = prompt if isinstance(prompt, str) else engine.decode(ids)
    text, new_ids, finish = "", [], "length"
    if req.max_tokens:
        if service.flag_prompt(req.model, prompt_text):
            text, finish = REFUSAL_PL, "content_filter"
        else:
            completion = await service.start_generation(req.model, ids, params, watch).completion()
            text, new_ids, finish = completion.text, completion.token_ids, completion.finish_reason
            if service.flag_response(req.model, text):
                text, finish = REFUSAL_PL, "content_filter"
    generated = len(new_ids)
    logprobs = None
    if req.logprobs is not None:
        scored = new_ids if finish != "content_filter" else []
        values, tops = await service.prompt_logprobs(req.model, ids + scored, req.logprobs)
        if req.echo:
            logprobs = build_logprobs(service, req.model, ids + scored, values, tops)
        else:
            start = len(ids)
            logprobs = build_logprobs(service, req.model, scored, values[start:], tops[start:],
                                      context=ids[-PREFIX_TOKENS:])
    shown = prompt_text + text if req.echo else text
    return CompletionChoice(index=index, text=shown, finish_reason=finish, logprobs=logprobs), generated


def build_logprobs(service: ChatService, model: str, ids: Sequence[int], values: Sequence[float | None],
                   tops: Sequence[dict[int, float] | None], context: Sequence[int] = ()) -> Logprobs:
    """The legacy ``logprobs`` object for ``ids`` (see the module's docstring)."""
    engine = service.engine(model)
    decoder = IncrementalDecoder(engine.decode, context)
    offsets, length = [], 0
    for token in ids:
        offsets.append(length)
        length += len(decoder.push(token))
    top_logprobs: list[dict[str, float] | None] = []
    for token, value, top in zip(ids, values, tops):
        if value is None:
            top_logprobs.append(None)
            continue
        row: dict[str, float] = {}
        for alt, lp in sorted((top or {}).items(), key=lambda kv: -kv[1]):
            row.setdefault(service.token_text(model, alt), lp)  # tokens with the same text: the likelier one
        row.setdefault(service.token_text(model, token), value)
        top_logprobs.append(row)
    return Logprobs(tokens=[service.token_text(model, t) for t in ids], token_logprobs=list(values),
                    top_logprobs=top_logprobs, text_offset=offsets)


async def gather(coros: list[Coroutine[Any, Any, T]]) -> list[T]:
    """All results, or the first error with the others cancelled (their generations are cancelled too)."""
    if len(coros) == 1:
        return [await coros[0]]
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(c) for c in coros]
    except BaseExceptionGroup as eg:
        errors = list(_leaves(eg))
        raise next((e for e in errors if isinstance(e, ServeError)), errors[0]) from None
    return [t.result() for t in tasks]


def _leaves(eg: BaseExceptionGroup) -> Any:
    for e in eg.exceptions:
        if isinstance(e, BaseExceptionGroup):
            yield from _leaves(e)
        else:
            yield e


async def _one(delta: Delta) -> Any:
    yield delta
