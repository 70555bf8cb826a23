"""Server-sent events in OpenAI's streaming format.

Interface for the web pages:

    chat_sse_response(deltas, model, *, request_id=None, include_usage=False) -> StreamingResponse
    deltas = await prime(deltas)   # optional: raise a ServeError found before the first delta as a status

``deltas``: an async iterator of ``str`` (``ChatService.chat_deltas`` gives :class:`~gniazdo.serve.service.Delta`
strings, whose ``finish_reason`` and token counts are used when present). The stream is exactly what
``POST /v1/chat/completions`` with ``stream: true`` sends::

    data: {"id": "chatcmpl-…", "object": "chat.completion.chunk", "created": …, "model": …,
           "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": null,
                        "finish_reason": null}]}
    data: {… "choices": [{"index": 0, "delta": {"content": "Dzień"}, …}]}          (one per delta)
    data: {… "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}       (stop/length/content_filter)
    data: {… "choices": [], "usage": {…}}                                           (only with include_usage)
    data: [DONE]

An error after the stream began (a timeout: 504, the server: 500) is sent as ``data: {"error": {...}}``
followed by ``data: [DONE]`` (OpenAI's clients raise it as an APIError); the stream has no finish chunk then.
"""

from __future__ import annotations

import json
import logging
import time
from contextlib import aclosing, nullcontext
from typing import Any, AsyncIterator, Callable

from starlette.responses import StreamingResponse

from gniazdo.serve.errors import ServeError

log = logging.getLogger("gniazdo.serve")

DONE = "data: [DONE]\n\n"
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}  # no proxy buffering of the stream


def sse(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


def chat_chunk(request_id: str, created: int, model: str, delta: dict[str, Any] | None,
               finish_reason: str | None = None) -> dict[str, Any]:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "logprobs": None,
                                         "finish_reason": finish_reason}]
    return {"id": request_id, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": choices}


def completion_chunk(request_id: str, created: int, model: str, text: str | None,
                     finish_reason: str | None = None) -> dict[str, Any]:
    choices = [] if text is None else [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason}]
    return {"id": request_id, "object": "text_completion", "created": created, "model": model, "choices": choices}


def usage_of(delta: Any) -> dict[str, int]:
    prompt, completion = getattr(delta, "prompt_tokens", 0), getattr(delta, "completion_tokens", 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


async def _events(deltas: AsyncIterator[str], request_id: str, model: str, include_usage: bool,
                  chunk: Callable[..., dict[str, Any]], first: dict[str, Any] | None) -> AsyncIterator[str]:
    """The chunks of one choice: an optional opening chunk, a chunk per non-empty delta, the finish chunk, the
    usage chunk, [DONE]; an error as an error event."""
    created = int(time.time())
    last: Any = None
    try:
        async with _closing(deltas) as stream:
            if first is not None:
                yield sse(chunk(request_id, created, model, first))
            async for delta in stream:
                last = delta
                if delta:
                    yield sse(chunk(request_id, created, model, _piece(chunk, delta)))
            reason = getattr(last, "finish_reason", None) or "stop"
            yield sse(chunk(request_id, created, model, _piece(chunk, ""), reason))
            if include_usage:
                yield sse({**chunk(request_id, created, model, None), "usage": usage_of(last)})
    except ServeError as e:
        yield sse(e.body())
    except Exception as e:  # the stream has begun: the status is sent, only an event can tell
        log.exception("stream %s failed", request_id)
        yield sse(ServeError(500, f"generation failed ({type(e).__name__}: {e})").body())
    yield DONE


def _piece(chunk: Callable[..., dict[str, Any]], text: str) -> Any:
    """A chat delta is a dict ({"content": …}, {} to finish); a completion's is the text itself."""
    if chunk is chat_chunk:
        return {"content": str(text)} if text else {}
    return str(text)


def chat_sse_response(deltas: AsyncIterator[str], model: str, *, request_id: str | None = None,
                      include_usage: bool = False) -> StreamingResponse:
    """The /v1/chat/completions stream of ``deltas`` (see the module's docstring)."""
    from gniazdo.serve.service import new_id

    events = _events(deltas, request_id or new_id("chatcmpl"), model, include_usage, chat_chunk,
                     {"role": "assistant", "content": ""})
    return StreamingResponse(events, media_type="text/event-stream", headers=HEADERS)


def completion_sse_response(deltas: AsyncIterator[str], model: str, *, request_id: str | None = None,
                            include_usage: bool = False) -> StreamingResponse:
    """The /v1/completions stream (one prompt): a ``text_completion`` chunk per delta, then the finish chunk."""
    from gniazdo.serve.service import new_id

    events = _events(deltas, request_id or new_id("cmpl"), model, include_usage, completion_chunk, None)
    return StreamingResponse(events, media_type="text/event-stream", headers=HEADERS)


async def prime(deltas: AsyncIterator[str]) -> AsyncIterator[str]:
    """Start ``deltas`` now: an error before its first item is raised here (so it can become a 4xx status),
    and the returned iterator yields that first item and the rest."""
    try:
        first = await anext(deltas)
    except StopAsyncIteration:
        return _from([], deltas)
    except BaseException:
        async with _closing(deltas):
            raise
    return _from([first], deltas)


async def _from(head: list[str], rest: AsyncIterator[str]) -> AsyncIterator[str]:
    async with _closing(rest):
        for item in head:
            yield item
        async for item in rest:
            yield item


def _closing(it: Any) -> Any:
    """``async with`` that closes an async generator (so its ``finally`` cancels the generation) at once."""
    return aclosing(it) if hasattr(it, "aclose") else nullcontext(it)
