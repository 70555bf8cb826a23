"""The OpenAI API against a real server: the official client, greedy results equal to the engine's, echo and
logprobs equal to ``prompt_logprobs``, every error status in OpenAI's shape, the api key, /metrics, the CLI."""

from __future__ import annotations

import json

import httpx
import pytest

from gniazdo.infer import Engine, SamplingParams
from gniazdo.serve.app import create_app
from gniazdo.serve.config import ServeConfig

from . import running

CHAT = [{"role": "system", "content": "Odpowiadaj krótko."}, {"role": "user", "content": "Jaka jest stolica Polski?"}]


@pytest.fixture(scope="module")
def engine(tiny_checkpoint):
    return Engine(tiny_checkpoint)


@pytest.fixture(scope="module")
def server(engine):
    app = create_app(ServeConfig(max_body_bytes=8192), {"tiny": engine})
    with running(app) as url:
        yield url, app


@pytest.fixture(scope="module")
def client(server):
    import openai

    return openai.OpenAI(base_url=server[0] + "/v1", api_key="unused", max_retries=0)


def post(server, path, body=None, **kwargs):
    return httpx.post(server[0] + path, json=body, timeout=30, **kwargs)


def assert_error(r, status, *words):
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert set(error) >= {"message", "type", "code"} and error["code"] == status
    for w in words:
        assert w in error["message"], error["message"]
    return error


def test_models_and_health(server, client):
    assert [m.id for m in client.models.list().data] == ["tiny"]
    r = httpx.get(server[0] + "/health")
    assert r.status_code == 200 and r.json() == {"status": "ok", "models": ["tiny"]}


def test_openai_client_chat_and_stream(client, engine):
    ids = engine.encode_chat(CHAT)
    [expected] = engine.generate([ids], SamplingParams(temperature=0, max_new_tokens=24))
    r = client.chat.completions.create(model="tiny", messages=CHAT, temperature=0, max_tokens=24)
    assert r.choices[0].message.content == expected.text and r.choices[0].message.role == "assistant"
    assert r.choices[0].finish_reason == expected.finish_reason
    assert (r.usage.prompt_tokens, r.usage.completion_tokens) == (len(ids), expected.completion_tokens)
    assert r.usage.total_tokens == len(ids) + expected.completion_tokens
    chunks = list(client.chat.completions.create(model="tiny", messages=CHAT, temperature=0, max_tokens=24,
                                                 stream=True, stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == expected.text
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish == [expected.finish_reason]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == expected.completion_tokens
    assert chunks[-1].usage.prompt_tokens == len(ids)


def test_raw_stream_ends_with_done(server):
    with httpx.stream("POST", server[0] + "/v1/chat/completions", timeout=30,
                      json={"model": "tiny", "messages": CHAT, "max_tokens": 5, "stream": True}) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in r.iter_lines() if line]
    assert lines[-1] == "data: [DONE]" and all(line.startswith("data: ") for line in lines)
    assert json.loads(lines[0][6:])["object"] == "chat.completion.chunk"


def test_completions_greedy_equal_generate(server, engine):
    prompts = ["Ala ma kota", "Dawno, dawno temu", engine.encode("Kraków leży")]
    params = SamplingParams(temperature=0, max_new_tokens=12, stop=["\n\n"])
    expected = engine.generate(prompts, params)
    r = post(server, "/v1/completions", {"model": "tiny", "prompt": prompts[:2], "max_tokens": 12,
                                         "temperature": 0, "stop": "\n\n", "user": "ignored"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [c["text"] for c in sorted(body["choices"], key=lambda c: c["index"])] == [c.text for c in expected[:2]]
    assert body["usage"]["completion_tokens"] == sum(c.completion_tokens for c in expected[:2])
    assert body["usage"]["prompt_tokens"] == sum(c.prompt_tokens for c in expected[:2])
    for prompt in ([prompts[2]], prompts[2]):  # list[list[int]] and list[int]
        r = post(server, "/v1/completions", {"model": "tiny", "prompt": prompt, "max_tokens": 12, "temperature": 0,
                                             "stop": ["\n\n"]})
        assert r.json()["choices"][0]["text"] == expected[2].text


def test_completion_stream_equals_non_stream(server):
    body = {"model": "tiny", "prompt": "Dawno, dawno temu", "max_tokens": 16, "temperature": 0, "seed": 3}
    whole = post(server, "/v1/completions", body).json()["choices"][0]
    with httpx.stream("POST", server[0] + "/v1/completions", json={**body, "stream": True}, timeout=30) as r:
        events = [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: {")]
    assert "".join(e["choices"][0]["text"] for e in events) == whole["text"]
    assert events[-1]["choices"][0]["finish_reason"] == whole["finish_reason"]


def test_sampling_with_a_seed_is_reproducible(server):
    body = {"model": "tiny", "prompt": "Ala", "max_tokens": 10, "temperature": 1.0, "top_p": 0.9, "seed": 7}
    a, b = (post(server, "/v1/completions", body).json()["choices"][0]["text"] for _ in range(2))
    assert a == b


def test_echo_logprobs_equal_prompt_logprobs(server, engine):
    prompt = "Ala ma kota, a kot ma Alę."
    ids = engine.encode(prompt)
    expected = engine.prompt_logprobs(ids)
    r = post(server, "/v1/completions", {"model": "tiny", "prompt": prompt, "max_tokens": 0, "echo": True,
                                         "logprobs": 3, "temperature": 0})
    choice = r.json()["choices"][0]
    lp = choice["logprobs"]
    assert choice["text"] == prompt and len(lp["tokens"]) == len(ids)
    assert lp["token_logprobs"][0] is None and lp["top_logprobs"][0] is None
    assert lp["token_logprobs"][1:] == pytest.approx(expected[1:], abs=1e-5)
    for value, top in zip(lp["token_logprobs"][1:], lp["top_logprobs"][1:]):
        assert 1 <= len(top) <= 4 and max(top.values()) >= value - 1e-6  # (tokens alike in text share a key)
    assert lp["text_offset"][0] == 0 and lp["text_offset"] == sorted(lp["text_offset"])
    assert all(prompt[o:].startswith(t) for o, t in zip(lp["text_offset"], lp["tokens"]) if "\ufffd" not in t)


def test_echo_with_one_token_is_what_lm_eval_reads(server, engine):
    """lm-eval's local-completions: max_tokens 1, logprobs 1, echo; it reads token_logprobs[ctxlen:-1]."""
    prompts = ["Zdanie: \"Dobry lekarz.\"\nSentyment: Pozytywny", "Kategoria: Sport"]
    r = post(server, "/v1/completions", {"model": "tiny", "prompt": prompts, "max_tokens": 1, "logprobs": 1,
                                         "echo": True, "temperature": 0, "seed": 1234})
    for choice in r.json()["choices"]:
        ids = engine.encode(prompts[choice["index"]])
        lp = choice["logprobs"]
        assert len(lp["token_logprobs"]) == len(ids) + 1 == len(lp["top_logprobs"]) == len(lp["text_offset"])
        assert lp["token_logprobs"][1:-1] == pytest.approx(engine.prompt_logprobs(ids)[1:], abs=1e-5)
        assert choice["text"].startswith(prompts[choice["index"]])
        # the generated token is the greedy one: its logprob is its position's top
        assert lp["token_logprobs"][-1] == pytest.approx(max(lp["top_logprobs"][-1].values()))


def test_logprobs_without_echo_cover_the_completion(server, engine):
    r = post(server, "/v1/completions", {"model": "tiny", "prompt": "Ala ma", "max_tokens": 6, "logprobs": 2,
                                         "temperature": 0})
    choice = r.json()["choices"][0]
    [c] = engine.generate(["Ala ma"], SamplingParams(temperature=0, max_new_tokens=6, logprobs=True))
    assert choice["logprobs"]["token_logprobs"] == pytest.approx(c.logprobs, abs=1e-4)
    assert len(choice["logprobs"]["tokens"]) == c.completion_tokens


def test_harmless_unknown_fields_are_ignored(client):
    r = client.chat.completions.create(model="tiny", messages=CHAT, max_tokens=3, n=1, user="u", presence_penalty=0,
                                       frequency_penalty=0, extra_body={"some_vendor_field": {"x": 1}})
    assert r.usage.completion_tokens <= 3


def test_bad_requests_are_400_naming_the_problem(server):
    r = httpx.post(server[0] + "/v1/chat/completions", content=b'{"model": "tiny", "messages": [',
                   headers={"content-type": "application/json"})
    assert_error(r, 400, "not valid JSON")
    assert_error(post(server, "/v1/completions", ["a list"]), 400, "JSON object")
    assert_error(post(server, "/v1/chat/completions", {"model": "tiny"}), 400, "messages")
    e = assert_error(post(server, "/v1/chat/completions", {"model": "tiny", "messages": CHAT, "temperature": -1}),
                     400, "temperature")
    assert e["type"] == "invalid_request_error"
    assert_error(post(server, "/v1/chat/completions", {"model": "tiny", "messages": CHAT, "n": 2}), 400, "n", "n=1")
    assert_error(post(server, "/v1/chat/completions", {"model": "tiny", "messages": [{"role": "robot",
                                                                                    "content": "x"}]}), 400, "role")
    assert_error(post(server, "/v1/completions", {"model": "tiny", "prompt": "x", "max_tokens": -1}), 400,
                 "max_tokens")
    assert_error(post(server, "/v1/completions", {"model": "tiny", "prompt": [5000]}), 400, "vocabulary")
    assert_error(post(server, "/v1/completions", {"model": "tiny", "prompt": []}), 400, "prompt")


def test_context_too_long_names_the_limit(server, engine):
    assert_error(post(server, "/v1/completions", {"model": "tiny", "prompt": "Ala ma kota", "max_tokens": 600}),
                 400, "512", "max_tokens")
    long_prompt = " ".join(["słowo"] * 600)
    assert len(engine.encode(long_prompt)) > 512
    assert_error(post(server, "/v1/chat/completions", {"model": "tiny", "messages": [{"role": "user",
                                                                                    "content": long_prompt}]}),
                 400, "512")
    assert_error(post(server, "/v1/completions", {"model": "tiny", "prompt": long_prompt, "max_tokens": 0,
                                                  "echo": True, "logprobs": 1}), 400, "512")


def test_unknown_model_and_route_are_404(server):
    e = assert_error(post(server, "/v1/chat/completions", {"model": "gpt-9", "messages": CHAT}), 404, "gpt-9", "tiny")
    assert e["type"] == "not_found_error"
    assert_error(httpx.get(server[0] + "/v1/nothing"), 404)


def test_oversized_body_is_413(server):
    big = {"model": "tiny", "prompt": "x" * 9000}
    assert_error(post(server, "/v1/completions", big), 413, "8192")

    def chunks():  # no Content-Length: the limit is found while reading
        for _ in range(12):
            yield b" " * 1000
    r = httpx.post(server[0] + "/v1/completions", content=chunks(), headers={"content-type": "application/json"})
    assert "content-length" not in r.request.headers
    assert_error(r, 413)


def test_api_key(engine):
    app = create_app(ServeConfig(api_key="s3cret"), {"tiny": engine})
    with running(app) as url:
        body = {"model": "tiny", "prompt": "Ala", "max_tokens": 2}
        assert_error(httpx.post(url + "/v1/completions", json=body), 401, "API key")
        assert_error(httpx.post(url + "/v1/completions", json=body, headers={"Authorization": "Bearer nope"}), 401)
        assert_error(httpx.get(url + "/v1/models", headers={"Authorization": "s3cret"}), 401)
        assert_error(httpx.get(url + "/metrics"), 401)
        ok = httpx.post(url + "/v1/completions", json=body, headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200
        assert httpx.get(url + "/health").status_code == 200


def test_metrics_count_requests_tokens_and_errors(server):
    post(server, "/v1/completions", {"model": "tiny", "prompt": "Ala", "max_tokens": 3, "temperature": 0,
                                     "ignore_eos": True})
    post(server, "/v1/completions", {"model": "nope", "prompt": "Ala"})
    text = httpx.get(server[0] + "/metrics").text
    assert 'gniazdo_requests_total{route="/v1/completions",status="200"}' in text
    assert 'gniazdo_requests_total{route="/v1/completions",status="404"}' in text
    assert 'gniazdo_errors_total{route="/v1/completions",type="not_found_error"}' in text
    for name in ("gniazdo_prompt_tokens_total", "gniazdo_generated_tokens_total", "gniazdo_tokens_per_second",
                 "gniazdo_queue_depth", "gniazdo_running_requests", "gniazdo_request_latency_seconds_bucket"):
        assert f'{name}{{' in text, name
    generated = next(line for line in text.splitlines() if line.startswith("gniazdo_generated_tokens_total{"))
    assert float(generated.split()[-1]) >= 3


def test_test_client_works_too(engine):
    """In-process, without a server (what the web pages' tests use)."""
    from fastapi.testclient import TestClient

    with TestClient(create_app(ServeConfig(), {"tiny": engine})) as tc:
        r = tc.post("/v1/completions", json={"model": "tiny", "prompt": "Ala", "max_tokens": 4, "temperature": 0})
        assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] <= 4


def test_cli_help_and_missing_model():
    from click.testing import CliRunner

    from gniazdo.cli import cli

    r = CliRunner().invoke(cli, ["serve", "--help"])
    assert r.exit_code == 0 and "--api-key" in r.output and "gniazdo serve --model" in r.output
    r = CliRunner().invoke(cli, ["serve"])
    assert r.exit_code != 0 and "no model to serve" in str(r.exception)


def test_config_from_yaml_and_names(tmp_path):
    from gniazdo.config import load_config

    path = tmp_path / "serve.yaml"
    path.write_text("models: [out/a, b=out/x, {path: out/c, name: cc}]\nport: 9000\nguard: {lexicon: builtin}\n")
    cfg = load_config(ServeConfig, path, ["max_queue=4"])
    assert [m.served_name for m in cfg.models] == ["a", "b", "cc"]
    assert cfg.port == 9000 and cfg.max_queue == 4 and cfg.guard.lexicon == "builtin" and cfg.host == "127.0.0.1"


def test_serve_writes_the_resolved_config_and_runs_uvicorn(tiny_checkpoint, tmp_path, monkeypatch):
    import uvicorn

    from gniazdo.serve.app import serve

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    serve(ServeConfig(models=[f"m={tiny_checkpoint}"], api_key="s3cret", log_dir=str(tmp_path), port=8123))
    [(app, kw)] = calls
    assert kw == {"host": "127.0.0.1", "port": 8123, "log_level": "info"}
    assert app.state.service.model_names() == ["m"]
    text = (tmp_path / "serve.resolved.yaml").read_text(encoding="utf-8")
    assert "s3cret" not in text and "device: null" not in text and "name: m" in text
