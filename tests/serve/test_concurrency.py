"""The batching worker under load: concurrent requests share steps, a full queue answers 429, a slow request
504, a client that goes away frees its slot, and a failing step fails only its requests."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from gniazdo.infer import Engine, SamplingParams
from gniazdo.serve.app import create_app
from gniazdo.serve.config import ServeConfig

from . import running, slow_steps, wait_for

PROMPTS = ["Ala ma kota", "Dawno, dawno temu", "Kraków leży nad Wisłą", "W Szczebrzeszynie chrząszcz"]


@pytest.fixture(scope="module")
def engine(tiny_checkpoint):
    return Engine(tiny_checkpoint)


def body(prompt, max_tokens=8, **extra):
    return {"model": "tiny", "prompt": prompt, "max_tokens": max_tokens, "temperature": 0, **extra}


def test_concurrent_requests_share_decoding_steps(engine):
    app = create_app(ServeConfig(max_batch=4), {"tiny": engine})
    worker = app.state.service.workers["tiny"]
    slow_steps(worker, 0.01)  # requests arriving within a few ms of each other join the same running batch
    expected = engine.generate(PROMPTS, SamplingParams(temperature=0, max_new_tokens=12))

    async def all_at_once(url):
        async with httpx.AsyncClient(base_url=url, timeout=30) as c:
            rs = await asyncio.gather(*(c.post("/v1/completions", json=body(p, 12)) for p in PROMPTS))
        return [r.json()["choices"][0]["text"] for r in rs]

    with running(app) as url:
        texts = asyncio.run(all_at_once(url))
    assert texts == [c.text for c in expected]  # batched, yet each greedy answer is the one it gets alone
    assert worker.stats.peak_batch > 1, worker.stats
    assert worker.stats.steps < sum(c.completion_tokens for c in expected)


def test_queue_full_is_429_and_frees_up(engine):
    app = create_app(ServeConfig(max_queue=2), {"tiny": engine})
    worker = app.state.service.workers["tiny"]
    slow_steps(worker, 0.02)
    with running(app) as url, httpx.Client(base_url=url, timeout=30) as c:
        streams = [c.stream("POST", "/v1/completions", json=body(p, 400, stream=True, ignore_eos=True))
                   for p in PROMPTS[:2]]
        held = [s.__enter__() for s in streams]  # two long streams hold both places
        assert all(r.status_code == 200 for r in held)
        r = c.post("/v1/completions", json=body("Ala"))
        assert r.status_code == 429 and "max_queue 2" in r.json()["error"]["message"]
        assert r.json()["error"]["type"] == "rate_limit_error"
        r = c.post("/v1/completions", json=body(["a", "b", "c"]))
        assert r.status_code == 429
        for s in streams:
            s.__exit__(None, None, None)
        assert wait_for(lambda: worker.load == 0 and not worker.batch)
        assert c.post("/v1/completions", json=body("Ala")).status_code == 200


def test_timeout_is_504_and_an_error_event_in_a_stream(engine):
    app = create_app(ServeConfig(timeout=0.3), {"tiny": engine})
    worker = app.state.service.workers["tiny"]
    slow_steps(worker, 0.05)
    with running(app) as url, httpx.Client(base_url=url, timeout=30) as c:
        r = c.post("/v1/completions", json=body("Ala", 100, ignore_eos=True))
        assert r.status_code == 504 and "timeout" in r.json()["error"]["message"]
        chat = {"model": "tiny", "messages": [{"role": "user", "content": "Cześć"}], "max_tokens": 100,
                "ignore_eos": True, "stream": True}
        with c.stream("POST", "/v1/chat/completions", json=chat) as s:
            lines = [line for line in s.iter_lines() if line]
        assert lines[-1] == "data: [DONE]"
        error = json.loads(lines[-2][6:])["error"]
        assert error["code"] == 504 and "timeout" in error["message"]
        assert wait_for(lambda: worker.load == 0 and not worker.batch)


def test_client_disconnect_cancels_generation(engine):
    app = create_app(ServeConfig(), {"tiny": engine})
    worker = app.state.service.workers["tiny"]
    slow_steps(worker, 0.02)  # 400 tokens would take 8 s
    with running(app) as url, httpx.Client(base_url=url, timeout=30) as c:
        chat = {"model": "tiny", "messages": [{"role": "user", "content": "Cześć"}], "max_tokens": 400,
                "ignore_eos": True, "stream": True}
        with c.stream("POST", "/v1/chat/completions", json=chat) as s:
            for line in s.iter_lines():
                if '"content"' in line and '"content": ""' not in line:
                    break  # generation is under way
            assert worker.running == 1
        assert wait_for(lambda: worker.load == 0 and not worker.batch, timeout=4)
        tokens_then = worker.stats.tokens
        # a non-streaming request is cancelled too once its connection is gone
        with pytest.raises(httpx.ReadTimeout):
            c.post("/v1/completions", json=body("Ala", 400, ignore_eos=True), timeout=0.5)
        assert wait_for(lambda: worker.load == 0 and not worker.batch, timeout=4)
        assert worker.stats.tokens - tokens_then < 200


def test_a_failing_step_fails_its_requests_and_the_worker_goes_on(engine):
    app = create_app(ServeConfig(), {"tiny": engine})
    worker = app.state.service.workers["tiny"]
    step, calls = worker.batch.step, []

    def broken():
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("boom")
        return step()

    worker.batch.step = broken
    with running(app) as url, httpx.Client(base_url=url, timeout=30) as c:
        r = c.post("/v1/completions", json=body("Ala", 5, ignore_eos=True))
        assert r.status_code == 500 and "boom" in r.json()["error"]["message"]
        r = c.post("/v1/completions", json=body("Ala", 5, ignore_eos=True))
        assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] == 5
        assert worker.stats.failed_steps == 1 and worker._thread.is_alive()
