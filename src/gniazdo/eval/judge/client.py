"""An OpenAI-compatible chat client for judges and answering models, with a disk cache.

Any server that speaks ``/v1/chat/completions`` works (vLLM, llama.cpp server, TGI, OpenAI itself). The HTTP
part is :func:`gniazdo.prefs.reference.post_json`: connection errors, timeouts, 429 and 5xx are retried with
exponential backoff; any other HTTP error is a one-line :class:`~gniazdo.errors.UserError`.

Every answer is kept in a SQLite cache keyed by a hash of (endpoint, model, messages, temperature, max_tokens),
so running a benchmark again, or resuming one that was stopped, asks nothing twice.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from gniazdo.errors import UserError
from gniazdo.prefs.reference import post_json

Messages = list[dict[str, str]]


def chat_endpoint(url: str) -> str:
    """``http://host:8000``, ``.../v1`` or ``.../v1/chat/completions`` → the chat completions URL."""
    url = url.rstrip("/")
    if url.endswith("/chat/completions"):
        return url
    return url.removesuffix("/v1") + "/v1/chat/completions"


def is_url(text: str) -> bool:
    return text.startswith(("http://", "https://"))


def cache_key(endpoint: str, model: str | None, messages: Messages, temperature: float, max_tokens: int) -> str:
    blob = json.dumps([endpoint, model, messages, float(temperature), int(max_tokens)], ensure_ascii=False,
                      sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ChatCache:
    """Answers already received, in one SQLite file (safe to share between threads of one process)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False)
            self._db.execute("CREATE TABLE IF NOT EXISTS chat (key TEXT PRIMARY KEY, endpoint TEXT, model TEXT, "
                             "request TEXT, response TEXT NOT NULL, tstamp REAL)")
            self._db.commit()
        except sqlite3.DatabaseError as e:
            raise UserError(f"{self.path}: not a usable cache: {e}") from None

    def get(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT response FROM chat WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def put(self, key: str, endpoint: str, model: str | None, request: dict[str, Any], response: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO chat VALUES (?, ?, ?, ?, ?, ?)",
                             (key, endpoint, model, json.dumps(request, ensure_ascii=False), response, time.time()))
            self._db.commit()

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM chat").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()


class ChatClient:
    """``chat(messages)`` → the assistant's text, from the cache when this exact request was answered before.

    ``model`` may be None for servers that serve one model and ignore the field (llama.cpp); ``calls`` counts
    the requests that went over HTTP (cache hits excluded).
    """

    def __init__(self, url: str, model: str | None = None, api_key: str | None = None,
                 cache: ChatCache | None = None, timeout: float = 300.0, retries: int = 4,
                 backoff: float = 1.0) -> None:
        if not is_url(url):
            raise UserError(f"not an http(s) URL: {url}")
        self.url, self.endpoint, self.model = url, chat_endpoint(url), model
        self.api_key, self.cache = api_key, cache
        self.timeout, self.retries, self.backoff = timeout, retries, backoff
        self.calls = 0
        self._lock = threading.Lock()

    def chat(self, messages: Messages, temperature: float = 0.0, max_tokens: int = 1024) -> str:
        key = cache_key(self.endpoint, self.model, messages, temperature, max_tokens)
        if self.cache is not None and (hit := self.cache.get(key)) is not None:
            return hit
        payload: dict[str, Any] = {"messages": messages, "temperature": temperature, "max_tokens": max_tokens,
                                   "n": 1}
        if self.model:
            payload["model"] = self.model
        with self._lock:
            self.calls += 1
        answer = post_json(self.endpoint, payload, api_key=self.api_key, timeout=self.timeout,
                           retries=self.retries, backoff=self.backoff)
        text = message_text(answer, self.endpoint)
        if self.cache is not None:
            self.cache.put(key, self.endpoint, self.model, payload, text)
        return text


def message_text(answer: Any, where: str) -> str:
    """``choices[0].message.content`` (or ``reasoning_content`` when a reasoning model left content empty)."""
    choices = answer.get("choices") if isinstance(answer, dict) else None
    if not choices or not isinstance(choices[0], dict) or not isinstance(choices[0].get("message"), dict):
        raise UserError(f"{where}: the answer has no choices[0].message (is this a chat completions endpoint?)")
    message = choices[0]["message"]
    content = message.get("content")
    if not content:
        content = message.get("reasoning_content") or content
    return content or ""
