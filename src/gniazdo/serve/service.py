"""``ChatService``: the models, their batching workers and the guard, for the API routes and the web pages alike.

Interface for the web pages (``app.state.service``):

    service.model_names() -> list[str]
    async for delta in service.chat_deltas(model, messages, params, is_disconnected=request.is_disconnected):
        ...  # each delta is a str (a Delta: also .finish_reason, .prompt_tokens, .completion_tokens)

``messages``: OpenAI chat messages (``{"role": "system"|"user"|"assistant", "content": str}``), rendered with the
model's chat template; ``params``: :class:`~gniazdo.infer.SamplingParams` (``max_new_tokens`` is capped at the
context left after the prompt). Errors are :class:`~gniazdo.serve.errors.ServeError` (404 unknown model, 400 bad
messages or a prompt that fills the context, 429 queue full, 504 timeout), raised on the first ``anext`` (before
any text) or, for a timeout, later. Closing the iterator (or the client going away, which ``is_disconnected``
notices) cancels the generation on the worker.

Guard: an unsafe last user message is answered with ``REFUSAL_PL`` (finish_reason ``content_filter``) without
generating; in a stream, the text is checked as it grows and on a hit the generation is cancelled and the stream
ends with ``"\\n\\n" + REFUSAL_PL`` (``content_filter``); with a guard, a word is shown once complete, so the
listed word itself never is. Each hit is logged, appended to ``<log_dir>/guard.jsonl`` and counted in /metrics.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from contextlib import aclosing
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, Sequence

from pydantic import ValidationError

from gniazdo.errors import UserError
from gniazdo.infer.engine import Completion, ContextLengthError, Engine, Event, Request
from gniazdo.infer.sampling import SamplingParams
from gniazdo.serve.config import ServeConfig
from gniazdo.serve.errors import ServeError
from gniazdo.serve.guard import REFUSAL_PL, Guard, GuardResult, NoGuard, build_guard
from gniazdo.serve.metrics import ServeMetrics
from gniazdo.serve.schemas import ChatMessage
from gniazdo.serve.worker import Worker

log = logging.getLogger("gniazdo.serve")

IsDisconnected = Callable[[], Awaitable[bool]]
_TRAILING_WORD = re.compile(r"[\w'-]+$")
GUARD_OVERLAP = 200  # characters of checked reply text checked again with the next words (phrases across them)
POLL = 0.25  # seconds between checks of the client connection and the deadline while waiting


class Delta(str):
    """A text delta that also says how the reply ended (on its last delta) and the token counts so far."""

    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int

    def __new__(cls, text: str = "", finish_reason: str | None = None, prompt_tokens: int = 0,
                completion_tokens: int = 0) -> Delta:
        d = super().__new__(cls, text)
        d.finish_reason, d.prompt_tokens, d.completion_tokens = finish_reason, prompt_tokens, completion_tokens
        return d


class ClientDisconnected(ServeError):
    def __init__(self) -> None:
        super().__init__(499, "the client closed the connection", "client_closed")


class Generation:
    """One request on a worker, seen from asyncio: its Events, in order, from a queue the worker fills."""

    def __init__(self, service: ChatService, model: str, request: Request,
                 is_disconnected: IsDisconnected | None) -> None:
        self.service, self.model, self.request = service, model, request
        self.worker = service.worker(model)
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        self.sink = lambda item: loop.call_soon_threadsafe(self.queue.put_nowait, item)
        self.deadline = time.monotonic() + service.config.timeout
        self.is_disconnected = is_disconnected
        self.tokens = 0
        self.done = False

    @property
    def prompt_tokens(self) -> int:
        return len(self.request.prompt_ids)

    async def events(self) -> AsyncIterator[Event]:
        """The Events up to the last one (with the Completion); leaving early cancels the request."""
        try:
            while not self.done:
                item = await self._next()
                if isinstance(item, BaseException):
                    self.done = True  # the worker has forgotten the request already
                    raise as_serve_error(item)
                self.tokens += 1
                self.done = item.finish_reason is not None
                yield item
        finally:
            if not self.done:
                self.worker.cancel(self.request.id)
            self.service.metrics.generated_tokens.labels(self.model).inc(self.tokens)

    async def deltas(self) -> AsyncIterator[Delta]:
        """The events as text deltas (empty ones skipped, except the last, which has the finish reason)."""
        async with aclosing(self.events()) as events:
            async for e in events:
                if e.text or e.finish_reason:
                    yield Delta(e.text, e.finish_reason, self.prompt_tokens, self.tokens)

    async def completion(self) -> Completion:
        async with aclosing(self.events()) as events:
            async for event in events:
                if event.completion is not None:
                    return event.completion
        raise ServeError(500, "the request ended without a completion")

    async def _next(self) -> Any:
        while True:
            if self.is_disconnected is not None and await self.is_disconnected():
                raise ClientDisconnected()
            try:
                return self.queue.get_nowait()
            except asyncio.QueueEmpty:
                pass
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise ServeError(504, f"the request took longer than the server's timeout "
                                      f"({self.service.config.timeout:g} s) and was cancelled")
            try:
                return await asyncio.wait_for(self.queue.get(), min(left, POLL))
            except TimeoutError:
                continue


class ChatService:
    """The served models. ``engines``: name → Engine; one :class:`Worker` thread each (started on first use)."""

    def __init__(self, config: ServeConfig, engines: dict[str, Engine], metrics: ServeMetrics | None = None,
                 guard: Guard | None = None) -> None:
        self.config = config
        self.engines = dict(engines)
        self.metrics = metrics or ServeMetrics()
        self.guard = guard if guard is not None else build_guard(config.guard)
        self.workers = {name: Worker(name, e, config.max_batch, config.max_queue, config.max_len)
                        for name, e in self.engines.items()}
        self.guard_log = Path(config.log_dir) / "guard.jsonl" if config.log_dir else None
        self._token_text: dict[str, dict[int, str]] = {name: {} for name in self.engines}

    # --- models -------------------------------------------------------------------------------------------------

    def model_names(self) -> list[str]:
        return list(self.engines)

    def worker(self, model: str) -> Worker:
        worker = self.workers.get(model)
        if worker is None:
            raise ServeError(404, f"model '{model}' is not served here (models: {', '.join(self.engines)})",
                             param="model")
        return worker

    def engine(self, model: str) -> Engine:
        return self.worker(model).engine

    def max_len(self, model: str) -> int:
        return self.worker(model).max_len

    def start(self) -> None:
        for w in self.workers.values():
            w.start()

    def close(self) -> None:
        for w in self.workers.values():
            w.stop()

    # --- prompts ------------------------------------------------------------------------------------------------

    def chat_ids(self, model: str, messages: Sequence[dict[str, Any] | ChatMessage]) -> list[int]:
        """Token ids of the conversation rendered with the model's chat template (400 on bad messages)."""
        engine = self.engine(model)
        if not engine.chat_template:
            raise ServeError(400, f"model '{model}' has no chat template; use /v1/completions")
        try:
            rows = [(m if isinstance(m, ChatMessage) else ChatMessage.model_validate(m)).as_dict() for m in messages]
        except ValidationError as e:
            first = e.errors()[0]
            raise ServeError(400, f"messages: {'.'.join(map(str, first['loc']))}: {first['msg']}",
                             param="messages") from None
        if not rows:
            raise ServeError(400, "messages: at least one message is needed", param="messages")
        try:
            return engine.encode_chat(rows)
        except Exception as e:  # a template that raises on these messages (e.g. roles out of order)
            raise ServeError(400, f"messages: the chat template refused them ({e})", param="messages") from None

    def prompt_ids(self, model: str, prompt: str | Sequence[int]) -> list[int]:
        try:
            return self.engine(model).tokens(prompt)
        except ValueError as e:
            raise ServeError(400, f"prompt: {e}", param="prompt") from None

    def fit(self, model: str, prompt_tokens: int, max_tokens: int | None, clip: bool = False) -> int:
        """How many tokens to generate: ``max_tokens`` (400 when prompt + it exceed the context, unless
        ``clip``), or when None the server's default, capped at the context left. 0: the prompt must fit."""
        limit = self.max_len(model)
        head = f"this model's context is {limit} tokens: the prompt has {_tokens(prompt_tokens)}"
        if max_tokens == 0 and not clip:  # prompt log-probabilities only
            if prompt_tokens > limit:
                raise ServeError(400, head, param="prompt")
            return 0
        prompt_tokens = max(prompt_tokens, 1)  # an empty prompt starts from the beginning-of-text token
        if max_tokens is None or clip:
            max_tokens = min(max_tokens or self.config.default_max_tokens, limit - prompt_tokens)
            if max_tokens < 1:
                raise ServeError(400, f"{head}, which leaves no room for an answer", param="messages")
        elif prompt_tokens + max_tokens > limit:
            raise ServeError(400, f"{head} and max_tokens is {max_tokens} ({prompt_tokens + max_tokens} in all)",
                             param="max_tokens")
        return max_tokens

    # --- generation ---------------------------------------------------------------------------------------------

    def start_generation(self, model: str, prompt_ids: list[int], params: SamplingParams,
                         is_disconnected: IsDisconnected | None = None, request_id: str = "") -> Generation:
        """Queue a request on the model's worker (429 when full); iterate ``events()`` for its tokens."""
        worker = self.worker(model)
        if params.seed is not None and not -(2**63) <= params.seed < 2**64:  # torch would fail the whole step
            raise ServeError(400, f"seed: {params.seed} is outside the 64-bit range", param="seed")
        worker.reserve()
        generation = Generation(self, model, Request(list(prompt_ids), params, request_id or new_id("gen")),
                                is_disconnected)
        self.metrics.prompt_tokens.labels(model).inc(len(prompt_ids))
        worker.submit(generation.request, generation.sink)
        return generation

    async def prompt_logprobs(self, model: str, ids: list[int], top: int) -> tuple[list[float | None],
                                                                                  list[dict[int, float] | None]]:
        """``Engine.prompt_logprobs_top`` run on the model's worker thread, between two decoding steps."""
        worker = self.worker(model)
        worker.reserve()
        self.metrics.prompt_tokens.labels(model).inc(len(ids))
        future = worker.call(lambda: worker.engine.prompt_logprobs_top(ids, top))
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), self.config.timeout)
        except TimeoutError:
            raise ServeError(504, f"the request took longer than the server's timeout "
                                  f"({self.config.timeout:g} s)") from None
        except Exception as e:
            raise as_serve_error(e) from None

    def token_text(self, model: str, token_id: int) -> str:
        """One token as text, special tokens included (a piece of a multi-byte character shows as U+FFFD)."""
        cache = self._token_text[model]
        text = cache.get(token_id)
        if text is None:
            text = cache[token_id] = self.engine(model).tokenizer.decode([token_id], skip_special_tokens=False)
        return text

    # --- chat ---------------------------------------------------------------------------------------------------

    async def open_chat(self, model: str, messages: Sequence[dict[str, Any] | ChatMessage], params: SamplingParams,
                        is_disconnected: IsDisconnected | None = None, clip: bool = True) -> AsyncIterator[Delta]:
        """Validate, check the prompt with the guard and queue the request, all before returning (so errors
        come as a status, not inside a stream); then iterate the returned deltas. ``clip``: cap
        ``params.max_new_tokens`` at the context left, instead of refusing (400)."""
        ids = self.chat_ids(model, messages)
        max_new = self.fit(model, len(ids), params.max_new_tokens, clip=clip)
        if max_new != params.max_new_tokens:
            params = params.model_copy(update={"max_new_tokens": max_new})
        last_user = next((_content(m) for m in reversed(messages) if _role(m) == "user"), "")
        if self.flag_prompt(model, last_user):
            return _one(Delta(REFUSAL_PL, "content_filter", len(ids), 0))
        generation = self.start_generation(model, ids, params, disconnect_watch(is_disconnected))
        return self.guard_stream(model, generation.deltas())

    async def chat_deltas(self, model: str, messages: Sequence[dict[str, Any]], params: SamplingParams,
                          is_disconnected: IsDisconnected | None = None) -> AsyncIterator[Delta]:
        """The reply's text deltas (see the module's docstring); the last one carries ``finish_reason``."""
        stream = await self.open_chat(model, messages, params, is_disconnected, clip=True)
        async with aclosing(stream):
            async for delta in stream:
                yield delta

    # --- guard --------------------------------------------------------------------------------------------------

    def flag_prompt(self, model: str, text: str) -> bool:
        return self.config.guard.check_prompt and self._flag(model, "prompt", text)

    def flag_response(self, model: str, text: str) -> bool:
        return self.config.guard.check_response and self._flag(model, "response", text)

    async def guard_stream(self, model: str, deltas: AsyncIterator[Delta]) -> AsyncIterator[Delta]:
        """``deltas`` with the response check. A word is shown once it is complete (the next character is not a
        letter) and checked with the text before it, so a listed word is never shown and the beginning of an
        innocent word is not taken for a shorter listed one. On a hit, the generation is cancelled (the source
        closed) and the stream ends with the refusal. Without a guard the deltas pass as they are."""
        if not self.config.guard.check_response or isinstance(self.guard, NoGuard):
            async with aclosing(deltas):
                async for d in deltas:
                    yield d
            return
        text, shown = "", 0
        async with aclosing(deltas):
            async for d in deltas:
                text += d
                # shown text always ends at a word boundary, so only the text after it can hold a partial word
                ready = len(text) if d.finish_reason else shown + len(_whole_words(text[shown:]))
                if ready > shown and self.flag_response(model, text[_recheck_from(text, shown):ready]):
                    yield Delta("\n\n" + REFUSAL_PL, "content_filter", d.prompt_tokens, d.completion_tokens)
                    return
                if ready > shown or d.finish_reason:
                    yield Delta(text[shown:ready], d.finish_reason, d.prompt_tokens, d.completion_tokens)
                    shown = max(shown, ready)

    def _flag(self, model: str, where: str, text: str) -> bool:
        if not text:
            return False
        result = self.guard(text)
        if result.safe:
            return False
        self._record_guard(model, where, result)
        return True

    def _record_guard(self, model: str, where: str, result: GuardResult) -> None:
        log.warning("guard: %s to model %s flagged (%s)", where, model, ", ".join(result.categories) or "unsafe")
        self.metrics.guard_event(where, result.categories)
        if self.guard_log is not None:
            row = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "model": model, "where": where,
                   "categories": result.categories, "score": result.score, "matches": result.matches}
            self.guard_log.parent.mkdir(parents=True, exist_ok=True)
            with open(self.guard_log, "a", encoding="utf-8") as f:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")


# --- helpers ----------------------------------------------------------------------------------------------------


def new_id(prefix: str) -> str:
    import uuid

    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def as_serve_error(e: BaseException) -> ServeError:
    """What the worker reported, as an HTTP error: the engine's refusals (ValueError, UserError) are the
    request's fault (400); anything else is the server's (500)."""
    if isinstance(e, ServeError):
        return e
    if isinstance(e, ContextLengthError):
        return ServeError(400, str(e), param="max_tokens")
    if isinstance(e, (ValueError, UserError)):
        return ServeError(400, str(e))
    log.error("generation failed: %s: %s", type(e).__name__, e)
    return ServeError(500, f"generation failed ({type(e).__name__}: {e})")


async def _one(delta: Delta) -> AsyncIterator[Delta]:
    yield delta


def disconnect_watch(check: IsDisconnected | None, every: float = POLL) -> IsDisconnected | None:
    """For the routes: ``check`` (``request.is_disconnected``) asked at most every ``every`` seconds (each ask
    costs a receive on the connection); once True, always True."""
    if check is None:
        return None
    last, gone = 0.0, False

    async def throttled() -> bool:
        nonlocal last, gone
        now = time.monotonic()
        if not gone and now - last >= every:
            last = now
            gone = await check()
        return gone

    return throttled


def _tokens(n: int) -> str:
    return f"{n} token" if n == 1 else f"{n} tokens"


def _recheck_from(text: str, shown: int) -> int:
    """Where the response check of newly complete words starts: the text before was checked already, but a
    listed phrase may span old and new words, so up to ``GUARD_OVERLAP`` characters of it are checked again —
    from a whitespace, since a cut word could read as a shorter listed one. Keeps a reply's checks linear."""
    if shown <= GUARD_OVERLAP:
        return 0
    cut = max(text.rfind(" ", 0, shown - GUARD_OVERLAP), text.rfind("\n", 0, shown - GUARD_OVERLAP))
    return cut + 1


def _whole_words(text: str) -> str:
    """``text`` without a word at its very end (it may go on in the next delta)."""
    return _TRAILING_WORD.sub("", text)


def _role(m: dict[str, Any] | ChatMessage) -> str:
    return m.role if isinstance(m, ChatMessage) else str(m.get("role", ""))


def _content(m: dict[str, Any] | ChatMessage) -> str:
    if isinstance(m, ChatMessage):
        return m.as_dict()["content"]
    content = m.get("content") or ""
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return str(content)
