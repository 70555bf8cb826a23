"""The guard in the server: an unsafe prompt is refused without generating, an unsafe reply is replaced (or, in a
stream, cut and ended with the refusal); each hit is logged to guard.jsonl and counted. And the service's
``chat_deltas`` interface the web pages use."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from gniazdo.infer import Engine, SamplingParams
from gniazdo.serve.app import create_app
from gniazdo.serve.config import ServeConfig
from gniazdo.serve.guard import REFUSAL_PL, GuardConfig, LexiconGuard, words

from . import running, wait_for

USER = [{"role": "user", "content": "Opowiedz bajkę."}]
MAX = 24


@pytest.fixture(scope="module")
def engine(tiny_checkpoint):
    return Engine(tiny_checkpoint)


@pytest.fixture(scope="module")
def reply(engine):
    """The tiny model's greedy reply to USER, and a word of it (not its first) for the lexicon."""
    [c] = engine.generate([engine.encode_chat(USER)], SamplingParams(temperature=0, max_new_tokens=MAX))
    found = [w for w in words(c.text) if len(w) >= 3 and w.isalpha()]
    assert len(found) >= 2, c.text
    return c.text, found[1]


@pytest.fixture(scope="module")
def server(engine, reply, tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("logs")
    guard = LexiconGuard({("kurwa",): "vulgarity", (reply[1],): "test"})
    app = create_app(ServeConfig(log_dir=str(log_dir), guard=GuardConfig(lexicon="builtin")), {"tiny": engine},
                     guard=guard)
    with running(app) as url:
        yield url, app, log_dir


def chat(url, messages, **extra):
    return httpx.post(url + "/v1/chat/completions", timeout=30,
                      json={"model": "tiny", "messages": messages, "temperature": 0, "max_tokens": MAX, **extra})


def stream(url, messages):
    body = {"model": "tiny", "messages": messages, "temperature": 0, "max_tokens": MAX, "stream": True,
            "stream_options": {"include_usage": True}}
    with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=30) as r:
        return [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: {")]


def test_unsafe_prompt_is_refused_without_generating(server):
    url, app, log_dir = server
    worker = app.state.service.workers["tiny"]
    before = worker.stats.tokens
    r = chat(url, [{"role": "user", "content": "Ty kurwa!"}]).json()
    assert r["choices"][0]["message"]["content"] == REFUSAL_PL
    assert r["choices"][0]["finish_reason"] == "content_filter" and r["usage"]["completion_tokens"] == 0
    events = stream(url, [{"role": "user", "content": "KURWA"}])
    assert "".join(e["choices"][0]["delta"].get("content", "") for e in events if e["choices"]) == REFUSAL_PL
    completion = httpx.post(url + "/v1/completions", json={"model": "tiny", "prompt": "kurwa", "max_tokens": 5})
    assert completion.json()["choices"][0]["text"] == REFUSAL_PL
    assert worker.stats.tokens == before
    rows = [json.loads(line) for line in (log_dir / "guard.jsonl").read_text(encoding="utf-8").splitlines()]
    assert {r["where"] for r in rows} >= {"prompt"} and rows[0]["categories"] == ["vulgarity"]
    metrics = httpx.get(url + "/metrics").text
    assert 'gniazdo_guard_events_total{category="vulgarity",where="prompt"} 3.0' in metrics


def test_unsafe_reply_is_replaced(server, reply):
    url, app, log_dir = server
    r = chat(url, USER).json()
    assert r["choices"][0]["message"]["content"] == REFUSAL_PL
    assert r["choices"][0]["finish_reason"] == "content_filter"
    completion = httpx.post(url + "/v1/completions", timeout=30, json={
        "model": "tiny", "prompt": reply[0][:reply[0].index(reply[1])], "max_tokens": 10, "temperature": 0})
    assert completion.status_code == 200
    rows = [json.loads(line) for line in (log_dir / "guard.jsonl").read_text(encoding="utf-8").splitlines()]
    assert any(r["where"] == "response" and r["categories"] == ["test"] for r in rows)


def test_unsafe_stream_is_cut_and_ends_with_the_refusal(server, reply):
    url, app, _ = server
    text, word = reply
    events = stream(url, USER)
    contents = [e["choices"][0]["delta"].get("content", "") for e in events if e["choices"]]
    shown = "".join(contents)
    assert shown.endswith("\n\n" + REFUSAL_PL)
    before = shown[: -len("\n\n" + REFUSAL_PL)]
    assert text.startswith(before) and word not in words(before)  # the hit itself was never shown
    finish = [e["choices"][0]["finish_reason"] for e in events if e["choices"] and e["choices"][0]["finish_reason"]]
    assert finish == ["content_filter"]
    assert events[-1]["usage"]["completion_tokens"] < MAX  # generation stopped at the hit
    worker = app.state.service.workers["tiny"]
    assert wait_for(lambda: worker.load == 0 and not worker.batch)


def test_echo_logprob_requests_are_not_guarded(server):
    r = httpx.post(server[0] + "/v1/completions", json={"model": "tiny", "prompt": "kurwa mać", "max_tokens": 0,
                                                        "echo": True, "logprobs": 1})
    assert r.json()["choices"][0]["text"] == "kurwa mać"


def test_chat_deltas_for_the_web_pages(engine):
    """``service.chat_deltas``: text deltas whose concatenation is the greedy reply, the last one with the finish
    reason; closing it early cancels the generation; errors are ServeError with a status."""
    from gniazdo.serve.errors import ServeError

    app = create_app(ServeConfig(), {"tiny": engine})
    service = app.state.service
    assert service.model_names() == ["tiny"]
    [expected] = engine.generate([engine.encode_chat(USER)], SamplingParams(temperature=0, max_new_tokens=MAX))

    async def scenario():
        deltas = [d async for d in service.chat_deltas("tiny", USER, SamplingParams(temperature=0,
                                                                                    max_new_tokens=MAX))]
        gen = service.chat_deltas("tiny", USER, SamplingParams(temperature=0, max_new_tokens=400, ignore_eos=True))
        await anext(gen)
        await gen.aclose()
        with pytest.raises(ServeError) as unknown:
            await anext(service.chat_deltas("nope", USER, SamplingParams()))
        return deltas, unknown.value

    try:
        deltas, unknown = asyncio.run(scenario())
        assert "".join(deltas) == expected.text and all(isinstance(d, str) for d in deltas)
        assert deltas[-1].finish_reason == expected.finish_reason
        assert deltas[-1].completion_tokens == expected.completion_tokens
        assert unknown.status == 404
        worker = service.workers["tiny"]
        assert wait_for(lambda: worker.load == 0 and not worker.batch)
    finally:
        service.close()


def test_response_recheck_window_starts_at_a_word_and_covers_the_overlap():
    from gniazdo.serve.service import GUARD_OVERLAP, _recheck_from

    text = " ".join(f"słowo{i}" for i in range(200))
    shown = len(text) - 3
    start = _recheck_from(text, shown)
    assert 0 < start and text[start - 1] == " " and shown - start >= GUARD_OVERLAP
    assert _recheck_from(text, GUARD_OVERLAP) == 0
