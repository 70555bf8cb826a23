"""The streaming helpers the web pages reuse: ``chat_sse_response`` over plain strings or Deltas, and ``prime``."""

from __future__ import annotations

import asyncio
import json

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gniazdo.serve.errors import ServeError
from gniazdo.serve.service import Delta
from gniazdo.serve.sse import chat_sse_response, prime


async def pieces(items, fail_at=None):
    for i, item in enumerate(items):
        if i == fail_at:
            raise ServeError(504, "too slow")
        yield item


def events(deltas, **kwargs):
    app = FastAPI()
    app.add_api_route("/s", lambda: chat_sse_response(deltas, "m", **kwargs), methods=["GET"])
    with TestClient(app) as c:
        lines = [line for line in c.get("/s").text.splitlines() if line]
    assert lines[-1] == "data: [DONE]"
    return [json.loads(line[6:]) for line in lines[:-1]]


def test_plain_strings_stream_in_the_openai_format():
    out = events(pieces(["Dzień ", "dobry"]))
    assert out[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert [e["choices"][0]["delta"].get("content") for e in out[1:3]] == ["Dzień ", "dobry"]
    assert out[-1]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    assert {e["object"] for e in out} == {"chat.completion.chunk"} and len({e["id"] for e in out}) == 1
    assert all(e["model"] == "m" for e in out)


def test_deltas_bring_finish_reason_and_usage():
    out = events(pieces([Delta("a", None, 5, 1), Delta("", "length", 5, 2)]), include_usage=True)
    assert out[-2]["choices"][0]["finish_reason"] == "length"
    assert out[-1]["choices"] == [] and out[-1]["usage"] == {"prompt_tokens": 5, "completion_tokens": 2,
                                                              "total_tokens": 7}


def test_an_error_mid_stream_is_an_error_event():
    out = events(pieces(["a", "b"], fail_at=1))
    assert out[-1] == {"error": {"message": "too slow", "type": "timeout_error", "code": 504}}


def test_prime_raises_before_the_stream_and_keeps_every_item():
    async def scenario():
        with pytest.raises(ServeError) as e:
            await prime(pieces(["x"], fail_at=0))
        primed = await prime(pieces(["a", "b"]))
        return e.value.status, [x async for x in primed]

    assert asyncio.run(scenario()) == (504, ["a", "b"])
