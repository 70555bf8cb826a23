"""The web pages' routes and the arena API, with a fake chat service (no model): pages and assets, the battle
flow, names hidden until the vote, one vote per battle, the SQLite row, errors, the api key, the leaderboard."""

from __future__ import annotations

import json
import random
import re
import sqlite3

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gniazdo.eval.arena import WINNERS
from gniazdo.serve.app import add_error_handlers
from gniazdo.serve.config import ServeConfig
from gniazdo.serve.errors import ServeError
from gniazdo.serve.web import STATIC_DIR, BattleStore, leaderboard_json, pick_pair, web_router

ANSWERS = {"alfa": "Ala ma kota.", "beta": "Kot ma Alę."}  # texts that do not contain the model's name
TOO_LONG, BUSY, CUT = "za długie", "zajęty", "urwij"


class FakeService:
    """ChatService's interface for the pages: fixed answers in pieces, and the errors it raises before the first
    delta (an unknown model, a prompt that fills the context)."""

    def __init__(self, models: list[str]) -> None:
        self.models = models
        self.calls: list[tuple[str, list[dict], object]] = []

    def model_names(self) -> list[str]:
        return list(self.models)

    async def chat_deltas(self, model, messages, params, is_disconnected=None):
        self.calls.append((model, messages, params))
        if model not in self.models:
            raise ServeError(404, f"model '{model}' is not served")
        prompt = messages[-1]["content"]
        if prompt == TOO_LONG:
            raise ServeError(400, "this model's context is 16 tokens: the prompt has 99 tokens")
        if prompt == BUSY:  # the worker's message names the model
            raise ServeError(429, f"model '{model}' is busy: 64 requests queued or running")
        for word in re.findall(r"\S+\s*", ANSWERS.get(model, "Jestem modelem.")):
            yield word
            if prompt == CUT:
                raise ServeError(504, f"model '{model}' took longer than the server's timeout")


def make_app(tmp_path, models=("alfa", "beta"), api_key=None, arena_db="votes.sqlite", seed=0):
    """The web router alone on an app with the server's error handlers, and its fake service."""
    config = ServeConfig(api_key=api_key, arena_db=str(tmp_path / arena_db) if arena_db else None)
    app = FastAPI()
    add_error_handlers(app)
    app.include_router(web_router(config, rng=random.Random(seed)))
    app.state.service = FakeService(list(models))
    return app


@pytest.fixture
def client(tmp_path):
    return TestClient(make_app(tmp_path))


def events(body: str) -> list:
    """The data payloads of an SSE body, [DONE] as the string."""
    out = []
    for line in body.splitlines():
        if line.startswith("data: "):
            payload = line[len("data: "):]
            out.append(payload if payload == "[DONE]" else json.loads(payload))
    return out


def streamed_text(body: str) -> str:
    return "".join(c["choices"][0]["delta"].get("content", "") for c in events(body)
                   if isinstance(c, dict) and c.get("choices"))


def new_battle(client, prompt="Co ma Ala?", **extra) -> str:
    r = client.post("/arena/api/battles", json={"prompt": prompt, **extra})
    assert r.status_code == 200, r.text
    return r.json()["battle_id"]


def votes_in(path) -> list[tuple]:
    conn = sqlite3.connect(path)
    rows = conn.execute("SELECT model_a, model_b, winner, prompt, conversation_id, voter FROM votes").fetchall()
    conn.close()
    return rows


# -- pages ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path, marker", [("/", 'id="send"'), ("/arena", 'id="vote-a"'),
                                          ("/arena/leaderboard", 'id="leaderboard"')])
def test_pages_are_open_html(tmp_path, path, marker):
    client = TestClient(make_app(tmp_path, api_key="sekret"))
    r = client.get(path)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert marker in r.text


def test_assets_are_served_and_nothing_else(client):
    r = client.get("/static/common.js")
    assert r.status_code == 200 and "javascript" in r.headers["content-type"]
    assert "readChatStream" in r.text
    assert client.get("/static/style.css").headers["content-type"].startswith("text/css")
    for bad in ("/static/nope.js", "/static/..%2Fweb.py", "/static/%2E%2E/web.py"):
        r = client.get(bad)
        assert r.status_code == 404 and r.json()["error"]["code"] == 404


def test_static_files_fetch_nothing_from_the_internet():
    """No CDN: every src/href/url() in the pages is local (the server must work offline)."""
    for path in STATIC_DIR.iterdir():
        text = path.read_text(encoding="utf-8")
        external = re.findall(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//|url\(\s*["']?(?:https?:)?//|@import""", text)
        assert not external, f"{path.name} loads something from outside: {external}"


def test_pages_never_put_text_into_inner_html():
    """Model output is rendered with textContent only (no innerHTML / insertAdjacentHTML / document.write)."""
    for path in STATIC_DIR.glob("*.js"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write", text), path.name


# -- battles --------------------------------------------------------------------------------------------------
def test_battle_streams_both_answers_names_hidden_then_vote_reveals_and_stores(tmp_path):
    app = make_app(tmp_path)
    client = TestClient(app)
    r = client.post("/arena/api/battles", json={"prompt": "Co ma Ala?", "temperature": 0, "max_tokens": 7})
    assert r.status_code == 200 and r.json()["same_model"] is False
    battle_id = r.json()["battle_id"]
    assert "alfa" not in r.text and "beta" not in r.text

    texts = {}
    for side in ("a", "b"):
        r = client.post(f"/arena/api/battles/{battle_id}/answer/{side}")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        chunks = events(r.text)
        assert chunks[-1] == "[DONE]"
        assert {c["model"] for c in chunks[:-1]} == {side.upper()}  # the seat, never the name
        assert "alfa" not in r.text and "beta" not in r.text
        texts[side] = streamed_text(r.text)
    assert sorted(texts.values()) == sorted(ANSWERS.values())
    served = {m for m, _, _ in app.state.service.calls}
    assert served == {"alfa", "beta"}
    for _, messages, params in app.state.service.calls:
        assert messages == [{"role": "user", "content": "Co ma Ala?"}]
        assert params.temperature == 0 and params.max_new_tokens == 7

    r = client.post(f"/arena/api/battles/{battle_id}/vote", json={"winner": "model_a", "voter": "v1"})
    assert r.status_code == 200
    names = r.json()
    assert names["stored"] is True
    assert ANSWERS[names["model_a"]] == texts["a"] and ANSWERS[names["model_b"]] == texts["b"]
    assert votes_in(tmp_path / "votes.sqlite") == [
        (names["model_a"], names["model_b"], "model_a", "Co ma Ala?", battle_id, "v1")]


def test_second_vote_is_409_and_not_stored(client, tmp_path):
    battle_id = new_battle(client)
    assert client.post(f"/arena/api/battles/{battle_id}/vote", json={"winner": "tie"}).status_code == 200
    r = client.post(f"/arena/api/battles/{battle_id}/vote", json={"winner": "model_b"})
    assert r.status_code == 409 and "already" in r.json()["error"]["message"]
    assert [row[2] for row in votes_in(tmp_path / "votes.sqlite")] == ["tie"]


def test_unknown_battle_or_side_is_404(client):
    for r in (client.post("/arena/api/battles/nope/answer/a"),
              client.post("/arena/api/battles/nope/vote", json={"winner": "tie"})):
        assert r.status_code == 404
        assert r.json()["error"]["type"] == "not_found_error" and "nope" in r.json()["error"]["message"]
    battle_id = new_battle(client)
    assert client.post(f"/arena/api/battles/{battle_id}/answer/c").status_code == 404


@pytest.mark.parametrize("body", [{"winner": "A"}, {"winner": "model_c"}, {}, {"winner": "tie", "extra": 1},
                                  {"winner": "tie", "voter": "x" * 65}, [1, 2]])
def test_bad_vote_is_400_and_the_battle_can_still_be_voted(client, tmp_path, body):
    battle_id = new_battle(client)
    r = client.post(f"/arena/api/battles/{battle_id}/vote", json=body)
    assert r.status_code == 400 and r.json()["error"]["message"]
    assert client.post(f"/arena/api/battles/{battle_id}/vote", json={"winner": "tie (bothbad)"}).status_code == 200


@pytest.mark.parametrize("body", [{}, {"prompt": ""}, {"prompt": 3}, {"prompt": "x", "temperature": -1},
                                  {"prompt": "x", "max_tokens": 0}, {"prompt": "x", "model": "alfa"}])
def test_bad_battle_request_is_400(client, body):
    r = client.post("/arena/api/battles", json=body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["type"] == "invalid_request_error"


def test_body_that_is_not_json_is_400(client):
    r = client.post("/arena/api/battles", content=b"{nie json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "JSON" in r.json()["error"]["message"]


def test_error_before_the_first_delta_is_a_status_not_a_stream(client):
    battle_id = new_battle(client, TOO_LONG)
    r = client.post(f"/arena/api/battles/{battle_id}/answer/a")
    assert r.status_code == 400
    assert "context" in r.json()["error"]["message"]


def test_errors_do_not_reveal_the_model(client):
    r = client.post(f"/arena/api/battles/{new_battle(client, BUSY)}/answer/b")
    assert r.status_code == 429 and r.json()["error"]["message"].startswith("model 'B' is busy")
    r = client.post(f"/arena/api/battles/{new_battle(client, CUT)}/answer/a")
    assert r.status_code == 200  # the stream had begun: the error is an event, then [DONE]
    chunks = events(r.text)
    assert chunks[-2]["error"]["code"] == 504 and chunks[-2]["error"]["message"].startswith("model 'A' took")
    assert chunks[-1] == "[DONE]"
    assert "alfa" not in r.text and "beta" not in r.text


def test_one_model_plays_itself_and_the_vote_is_not_stored(tmp_path):
    client = TestClient(make_app(tmp_path, models=["solo"]))
    r = client.post("/arena/api/battles", json={"prompt": "Cześć"})
    assert r.json()["same_model"] is True
    battle_id = r.json()["battle_id"]
    assert streamed_text(client.post(f"/arena/api/battles/{battle_id}/answer/b").text) == "Jestem modelem."
    r = client.post(f"/arena/api/battles/{battle_id}/vote", json={"winner": "model_a"})
    assert r.json() == {"model_a": "solo", "model_b": "solo", "stored": False}
    assert votes_in(tmp_path / "votes.sqlite") == []


def test_without_arena_db_votes_go_to_a_temporary_file(tmp_path):
    client = TestClient(make_app(tmp_path, arena_db=None))
    battle_id = new_battle(client)
    assert client.post(f"/arena/api/battles/{battle_id}/vote", json={"winner": "model_b"}).status_code == 200
    assert client.get("/arena/api/leaderboard").json()["votes"] == 1


def test_arena_api_needs_the_key_when_the_server_has_one(tmp_path):
    client = TestClient(make_app(tmp_path, api_key="sekret"))
    for method, path in (("POST", "/arena/api/battles"), ("GET", "/arena/api/leaderboard"),
                         ("POST", "/arena/api/battles/x/vote"), ("POST", "/arena/api/battles/x/answer/a")):
        r = client.request(method, path, json={"prompt": "x"} if method == "POST" else None)
        assert r.status_code == 401, path
        assert r.json()["error"]["type"] == "authentication_error"
    wrong = {"Authorization": "Bearer zly"}
    assert client.post("/arena/api/battles", json={"prompt": "x"}, headers=wrong).status_code == 401
    ok = {"Authorization": "Bearer sekret"}
    assert client.post("/arena/api/battles", json={"prompt": "x"}, headers=ok).status_code == 200


# -- leaderboard ----------------------------------------------------------------------------------------------
def play(client, winner_of) -> None:
    """One battle, voted ``winner_of(model_a, model_b)``: the fake's answer in seat A says who sits there."""
    battle_id = new_battle(client)
    text_a = streamed_text(client.post(f"/arena/api/battles/{battle_id}/answer/a").text)
    model_a = next(m for m, t in ANSWERS.items() if t == text_a)
    model_b = next(m for m in ANSWERS if m != model_a)
    r = client.post(f"/arena/api/battles/{battle_id}/vote", json={"winner": winner_of(model_a, model_b)})
    assert r.status_code == 200


def test_leaderboard_is_win_rates_until_enough_votes_then_bradley_terry(client):
    board = client.get("/arena/api/leaderboard").json()
    assert board["method"] == "win_rate" and board["votes"] == 0 and board["rows"] == []

    alfa_wins = lambda a, b: "model_a" if a == "alfa" else "model_b"  # noqa: E731
    play(client, alfa_wins)
    board = client.get("/arena/api/leaderboard").json()
    assert board["method"] == "win_rate" and board["votes"] == 1
    assert [(r["model"], r["wins"], r["losses"]) for r in board["rows"]] == [("alfa", 1, 0), ("beta", 0, 1)]

    for i in range(board["min_votes"]):
        play(client, alfa_wins if i % 3 else (lambda a, b: "tie"))
    board = client.get("/arena/api/leaderboard").json()
    assert board["method"] == "bradley_terry" and board["votes"] == board["min_votes"] + 1
    top, bottom = board["rows"]
    assert top["model"] == "alfa" and bottom["model"] == "beta"
    assert top["rating"] > 1000 > bottom["rating"]
    for row in board["rows"]:
        assert row["ci_low"] <= row["rating"] <= row["ci_high"]
        assert row["games"] == board["votes"]


def test_leaderboard_json_rows_shape():
    votes = [{"model_a": "x", "model_b": "y", "winner": w} for w in ("model_a", "model_b", "tie")]
    assert leaderboard_json(votes, min_votes=10)["rows"][0].keys() == {"model", "games", "wins", "ties", "losses",
                                                                        "win_rate"}
    rows = leaderboard_json(votes, min_votes=3, rounds=20)["rows"]
    assert {r["model"] for r in rows} == {"x", "y"} and abs(rows[0]["rating"] - 1000) < 1e-6


# -- parts ----------------------------------------------------------------------------------------------------
def test_pick_pair_draws_distinct_models_in_both_seats():
    rng = random.Random(1)
    pairs = [pick_pair(["a", "b", "c"], rng) for _ in range(200)]
    assert all(a != b for a, b in pairs)
    assert set(pairs) == {(a, b) for a in "abc" for b in "abc" if a != b}
    assert pick_pair(["solo"], rng) == ("solo", "solo")


def test_battle_store_expires_and_caps():
    now = [0.0]
    store = BattleStore(ttl=10, max_size=3, clock=lambda: now[0])
    from gniazdo.infer.sampling import SamplingParams

    first = store.new("a", "b", "p", SamplingParams())
    now[0] = 5
    kept = [store.new("a", "b", "p", SamplingParams()) for _ in range(3)]
    assert store.get(first.id) is None and len(store) == 3  # over the cap: the oldest went
    now[0] = 14.9
    assert store.get(kept[0].id) is kept[0]
    now[0] = 15.1
    assert store.get(kept[0].id) is None and len(store) == 0  # past the TTL


def test_winners_are_the_arena_modules():
    assert set(WINNERS) == {"model_a", "model_b", "tie", "tie (bothbad)"}
    arena_html = (STATIC_DIR / "arena.html").read_text(encoding="utf-8")
    assert set(re.findall(r'data-winner="([^"]+)"', arena_html)) == set(WINNERS)
