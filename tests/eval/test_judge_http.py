"""The judge's HTTP side against a fake OpenAI-compatible server on 127.0.0.1: retries, errors, the cache, the
Polish re-ask, pairwise position swapping, and ``gniazdo judge mt-bench`` / ``eq-bench`` end to end."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from conftest import serving

from gniazdo.cli import main
from gniazdo.errors import UserError
from gniazdo.eval.judge import TEMPERATURES, ChatCache, ChatClient, load_questions
from gniazdo.eval.judge.mtbench import Question, judge_pair, judge_single, single_scores
from gniazdo.eval.judge.prompts import JUDGE_PROMPTS_PL, REASK_RATING


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        srv: FakeServer = self.server  # type: ignore[assignment]
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with srv.lock:
            srv.requests.append((self.path, dict(self.headers), request))
            scripted = srv.script.pop(0) if srv.script else None
        status, text = scripted if scripted is not None else (200, srv.respond(request))
        if status != 200:
            body = {"error": {"message": text, "type": "Error"}}
        else:
            body = {"object": "chat.completion", "model": request.get("model"),
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                 "finish_reason": "stop"}]}
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def fake_models(request: dict) -> str:
    """Answers name their model; the judge grades "good-model" 8 and anything else 3, and in pairwise mode
    prefers whichever seat holds "good-model"."""
    messages = request["messages"]
    if messages[-1]["content"] == REASK_RATING:
        return "Rating: [[5]]"
    if messages[0]["role"] != "system":  # a model answering the conversation so far
        turn = sum(m["role"] == "user" for m in messages)
        return f"[{request.get('model')}] odpowiedź na turę {turn}"
    user = messages[-1]["content"]
    if "[[C]]" in messages[0]["content"]:  # pairwise
        return "Porównanie... [[A]]" if "good-model" in user.split("asystenta B")[0] else "Porównanie... [[B]]"
    return "Uzasadnienie. Rating: [[8]]" if "good-model" in user else "Uzasadnienie. Rating: [[3]]"


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list = []
        self.script: list[tuple[int, str]] = []   # (status, text) answered first, in order
        self.respond = fake_models
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


pytestmark = pytest.mark.usefixtures("no_proxy")  # the servers here are on 127.0.0.1


@pytest.fixture
def server():
    srv = FakeServer()
    with serving(srv):
        yield srv


def client(server, tmp_path=None, **kw) -> ChatClient:
    cache = ChatCache(tmp_path / "cache.sqlite") if tmp_path is not None else None
    return ChatClient(server.url, "sędzia", api_key="sekret", cache=cache, backoff=0.01, **kw)


# -- the client -----------------------------------------------------------------------------------------------
def test_client_retries_503_and_sends_key(server):
    server.script = [(503, "overloaded"), (429, "slow down")]
    c = client(server)
    assert c.chat([{"role": "user", "content": "Hej"}]).startswith("[sędzia]")
    assert len(server.requests) == 3 and c.calls == 1
    path, headers, request = server.requests[-1]
    assert path == "/v1/chat/completions" and headers["Authorization"] == "Bearer sekret"
    assert request["model"] == "sędzia" and request["temperature"] == 0.0


def test_client_gives_up_and_4xx_is_one_line(server):
    server.script = [(503, "down")] * 3
    with pytest.raises(UserError, match=r"failed after 3 attempts \(HTTP 503: down\)"):
        client(server, retries=2).chat([{"role": "user", "content": "x"}])
    server.script = [(400, "model `x` does not exist\nsecond line")]
    with pytest.raises(UserError, match=r"HTTP 400 .*: model `x` does not exist$"):
        client(server).chat([{"role": "user", "content": "x"}])


def test_cache_means_no_second_request(server, tmp_path):
    c = client(server, tmp_path)
    messages = [{"role": "user", "content": "Ile to 2+2?"}]
    first = c.chat(messages, temperature=0.7, max_tokens=10)
    assert len(server.requests) == 1
    again = client(server, tmp_path)  # a new process would open the same file
    assert again.chat(messages, temperature=0.7, max_tokens=10) == first
    assert len(server.requests) == 1 and again.calls == 0
    again.chat(messages, temperature=0.0, max_tokens=10)  # another temperature is another request
    assert len(server.requests) == 2 and len(again.cache) == 2


# -- judging --------------------------------------------------------------------------------------------------
Q = Question(7, "math", ["Ile to 2+2?", "A 3+3?"], ["4", "6"])


def test_rescue_reasks_in_polish_then_counts_unparsed(server):
    c = client(server)
    server.script = [(200, "Odpowiedź jest niezła, ale bez oceny."), (200, "Rating: [[6]]")]
    j = judge_single(c, JUDGE_PROMPTS_PL, Q, "m", ["4", "6"], turn=1)
    assert j["score"] == 6.0 and j["rescued"] and j["judge"] == ["sędzia", "single-math-v1"]
    reask = server.requests[-1][2]["messages"]
    assert reask[-1] == {"role": "user", "content": REASK_RATING}
    assert reask[-2] == {"role": "assistant", "content": "Odpowiedź jest niezła, ale bez oceny."}
    assert "[Początek odpowiedzi wzorcowej]\n4" in reask[1]["content"]
    server.script = [(200, "Nie wiem."), (200, "Trudno powiedzieć.")]
    failed = judge_single(c, JUDGE_PROMPTS_PL, Q, "m", ["4", "6"], turn=2)
    assert failed["score"] is None and not failed["rescued"] and "Trudno powiedzieć." in failed["judgment"]
    assert failed["judge"][1] == "single-math-v1-multi-turn"
    ok = judge_single(c, JUDGE_PROMPTS_PL, Q, "good-model", ["good-model 4", "good-model 6"], turn=1)
    assert ok["score"] == 8.0 and not ok["rescued"]
    s = single_scores([j, failed, ok])["m"]
    assert s["unparsed"] == 1 and s["rescued"] == 1 and s["overall"] == 6.0


def test_pairwise_swap_consistent_wins_biased_ties(server):
    c = client(server)
    q = Question(1, "writing", ["Napisz wiersz.", "Krócej."])
    good, bad = ["good-model w1", "good-model w2"], ["bad-model w1", "bad-model w2"]
    j = judge_pair(c, JUDGE_PROMPTS_PL, q, ("bad-model", "good-model"), (bad, good), turn=2)
    assert (j["g1_winner"], j["g2_winner"], j["winner"]) == ("model_2", "model_2", "model_2")
    first, second = (r[2]["messages"][1]["content"] for r in server.requests[-2:])
    assert first.index("bad-model") < first.index("good-model")
    assert second.index("good-model") < second.index("bad-model")
    server.respond = lambda request: "Obie dobre, ale pierwsza lepsza: [[A]]"  # position bias
    j = judge_pair(c, JUDGE_PROMPTS_PL, q, ("bad-model", "good-model"), (bad, good), turn=1)
    assert (j["g1_winner"], j["g2_winner"], j["winner"]) == ("model_1", "model_2", "tie")


# -- the CLI end to end ---------------------------------------------------------------------------------------
def test_mt_bench_cli_generates_judges_and_caches(server, tmp_path, capsys):
    out = tmp_path / "mt"
    argv = ["judge", "mt-bench", "--answers-from", server.url, "--model", "good-model", "--answers-from",
            server.url, "--model", "bad-model", "--judge", server.url, "--judge-model", "sędzia", "--out", str(out),
            "--no-progress"]
    main(argv)
    questions = load_questions()
    n_turns = sum(len(q.turns) for q in questions)
    assert len(server.requests) == 2 * n_turns + 2 * n_turns  # answers, then one judgment per answer and turn
    temps = {r[2]["temperature"] for r in server.requests if r[2]["messages"][0]["content"] == questions[0].turns[0]
             and r[2]["messages"][0]["role"] == "user"}
    assert temps == {TEMPERATURES["writing"]}
    for r in server.requests:
        first = r[2]["messages"][0]
        if first["role"] == "user":
            q = next(q for q in questions if q.turns[0] == first["content"])
            assert r[2]["temperature"] == TEMPERATURES[q.category]
    scores = json.loads((out / "scores.json").read_text())
    assert scores["models"]["good-model"]["overall"] == 8.0 and scores["models"]["bad-model"]["overall"] == 3.0
    assert set(scores["models"]["good-model"]["categories"]) == {q.category for q in questions}
    assert scores["models"]["good-model"]["turns"] == {"1": 8.0, "2": 8.0}
    judgments = [json.loads(line) for line in (out / "judgments.jsonl").read_text().splitlines()]
    assert len(judgments) == 2 * n_turns and {j["turn"] for j in judgments} == {1, 2}
    math = next(j for j in judgments if j["category"] == "math" and j["turn"] == 2)
    assert math["judge"] == ["sędzia", "single-math-v1-multi-turn"] and "Odpowiedź wzorcowa" in math["user_prompt"]
    answers = [json.loads(line) for line in (out / "model_answer" / "good-model.jsonl").read_text().splitlines()]
    assert answers[0]["choices"][0]["turns"] == ["[good-model] odpowiedź na turę 1", "[good-model] odpowiedź na turę 2"]
    assert (out / "radar.png").read_bytes()[:4] == b"\x89PNG"
    assert "| good-model | 8.00 |" in (out / "scores.md").read_text()
    resolved = yaml.safe_load((out / "config.resolved.yaml").read_text())
    assert resolved["models"] == ["good-model", "bad-model"] and "api_key" not in resolved
    assert "good-model" in capsys.readouterr().out

    before = len(server.requests)
    main(argv)  # everything cached: not one request
    assert len(server.requests) == before

    pair_out = tmp_path / "pair"
    main(["judge", "mt-bench", "--answers-from", str(out / "model_answer"), "--judge", server.url, "--mode",
          "pairwise", "--out", str(pair_out), "--no-progress"])
    assert len(server.requests) == before + 2 * n_turns  # each pair and turn judged twice
    pair = json.loads((pair_out / "scores.json").read_text())["models"]
    assert pair["good-model"]["win_rate"] == 1.0 and pair["bad-model"]["loss"] == n_turns
    assert (pair_out / "radar.png").is_file()


def test_mt_bench_cli_user_errors(server, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["judge", "mt-bench", "--answers-from", server.url, "--judge", server.url, "--out", str(tmp_path)])
    assert e.value.code == 2 and "one --model per URL" in capsys.readouterr().err
    answers = tmp_path / "only.jsonl"
    answers.write_text(json.dumps({"question_id": 1, "choices": [{"turns": ["a", "b"]}]}) + "\n")
    with pytest.raises(SystemExit):
        main(["judge", "mt-bench", "--answers-from", str(answers), "--judge", server.url, "--out", str(tmp_path)])
    assert "has no answer to every turn of question 2" in capsys.readouterr().err
    assert not server.requests


def test_eq_bench_cli_generates_at_an_endpoint(server, tmp_path):
    items = tmp_path / "items.jsonl"
    ref = {"Złość": 5, "Ulga": 3, "Smutek": 0, "Duma": 8}
    items.write_text("".join(json.dumps({"id": i, "prompt": f"Dialog {i}", "reference": ref}, ensure_ascii=False)
                             + "\n" for i in ("a", "b")), encoding="utf-8")
    scores = "Złość: 5\nUlga: 3\nSmutek: 0\nDuma: 8"
    answer = f"Pierwsze oceny:\n{scores}\n\nWeryfikacja: w porządku.\n\nZmienione oceny:\n{scores}"
    server.respond = lambda request: answer if request["messages"][0]["content"] == "Dialog a" else "???"
    out = tmp_path / "eq"
    argv = ["judge", "eq-bench", "--items", str(items), "--endpoint", server.url, "--model", "bielik", "--out",
            str(out), "--no-progress"]
    main(argv)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["first_pass"] == 50.0 and summary["first_pass_unparsed"] == 1 and summary["average"] == 50.0
    assert {r[2]["temperature"] for r in server.requests} == {0.01}
    assert len((out / "answers.jsonl").read_text().splitlines()) == 2
    main(argv)
    assert len(server.requests) == 2  # cached
