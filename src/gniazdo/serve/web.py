"""The web pages of the server: a chat UI (``/``), a side-by-side arena (``/arena``) and its leaderboard
(``/arena/leaderboard``), plus the small JSON API the arena needs.

**Pages.** Plain HTML/CSS/JS under ``serve/static`` (package data), served by this router: no build step and
nothing fetched from the internet, so the server works offline and behind a firewall. The pages are open; the
APIs they call are not when the server has an api key: each page has a key box whose value is kept in the
browser's ``localStorage`` and sent as ``Authorization: Bearer KEY``. The chat page talks only to the public
OpenAI API (``GET /v1/models``, ``POST /v1/chat/completions`` with ``stream: true``, read with ``fetch`` and a
``ReadableStream``), so it exercises exactly what other clients use. Model output reaches the page through
``textContent`` only.

**Arena API** (behind the api key, like ``/v1``):

- ``POST /arena/api/battles {prompt, temperature?, max_tokens?}`` → ``{battle_id, same_model}``. The server
  draws two distinct served models in random seats, or the same model twice when only one is served
  (``same_model``: the page says so, and such a vote is not stored, since a model cannot be rated against
  itself). Battles live in memory (:class:`BattleStore`: a TTL and a size cap); a restart forgets the
  unfinished ones, which costs a user one re-ask.
- ``POST /arena/api/battles/{id}/answer/{a|b}`` → the answer as an OpenAI chat-completion SSE stream (one
  turn: the prompt as the user message; ``max_tokens`` capped at the context left). The chunks' ``model``
  field is ``"A"``/``"B"`` and errors name the seat, not the model: the name must not leak before the vote.
  The page asks for both at once, so the two answers stream side by side.
- ``POST /arena/api/battles/{id}/vote {winner, voter?}`` → ``{model_a, model_b, stored}``; ``winner`` is one
  of :data:`gniazdo.eval.arena.WINNERS`. One vote per battle (a second one is 409). Unknown or expired battle:
  404; a bad body: 400.
- ``GET /arena/api/leaderboard`` → ``{method, votes, min_votes, rounds, rows}``: Bradley–Terry ratings with
  bootstrap intervals (:func:`gniazdo.eval.arena.leaderboard`) from :data:`MIN_VOTES_FOR_RATINGS` votes on,
  win rates before that (a fit on three votes would only look precise). The ``/arena/leaderboard`` page
  renders it in the browser, so it is behind the key like the rest.

**Votes** go to the SQLite file ``config.arena_db`` through :mod:`gniazdo.eval.arena` (its ``votes`` table, so
``gniazdo arena ratings FILE`` reads it). Without one they go to a temporary file removed when the server
exits: the arena works out of the box, but nothing is kept — set ``arena_db`` to keep votes.
"""

from __future__ import annotations

import logging
import random
import secrets
import tempfile
import threading
import time
from collections import OrderedDict
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Callable

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gniazdo.config import describe_validation_error
from gniazdo.eval import arena as votes_lib
from gniazdo.infer.sampling import InvalidSamplingParams, SamplingParams
from gniazdo.serve.auth import auth_dependencies
from gniazdo.serve.errors import ServeError
from gniazdo.serve.sse import chat_sse_response, prime

log = logging.getLogger("gniazdo.serve")

STATIC_DIR = Path(__file__).with_name("static")
PAGES = {"/": "index.html", "/arena": "arena.html", "/arena/leaderboard": "leaderboard.html"}
ASSET_TYPES = {".css": "text/css", ".js": "text/javascript", ".html": "text/html", ".svg": "image/svg+xml",
               ".png": "image/png", ".ico": "image/x-icon"}
SIDES = ("a", "b")

BATTLE_TTL_S = 3600.0         # long enough to read two answers and think; short enough to bound memory
MAX_BATTLES = 10_000          # oldest dropped first beyond this
MAX_PROMPT_CHARS = 16_000
MAX_ARENA_TOKENS = 4096
MAX_VOTER_CHARS = 64
MIN_VOTES_FOR_RATINGS = 5     # fewer: win rates only
LEADERBOARD_ROUNDS = 200      # bootstrap rounds: intervals good to a few points, computed in well under a second


# -- battles --------------------------------------------------------------------------------------------------
@dataclass
class Battle:
    id: str
    model_a: str
    model_b: str
    prompt: str
    params: SamplingParams
    created: float
    voted: bool = False

    def model(self, side: str) -> str:
        return self.model_a if side == "a" else self.model_b


class BattleStore:
    """Battles in memory, oldest first. An entry lives ``ttl`` seconds; beyond ``max_size`` the oldest go.
    A lock makes "vote once" hold across the threads that run sync endpoints."""

    def __init__(self, ttl: float = BATTLE_TTL_S, max_size: int = MAX_BATTLES,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl, self.max_size, self.clock = ttl, max_size, clock
        self._battles: OrderedDict[str, Battle] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._battles)

    def new(self, model_a: str, model_b: str, prompt: str, params: SamplingParams) -> Battle:
        battle = Battle(secrets.token_urlsafe(12), model_a, model_b, prompt, params, self.clock())
        with self._lock:
            self._expire()
            self._battles[battle.id] = battle
            while len(self._battles) > self.max_size:
                self._battles.popitem(last=False)
        return battle

    def get(self, battle_id: str) -> Battle | None:
        with self._lock:
            self._expire()
            return self._battles.get(battle_id)

    def claim_vote(self, battle_id: str) -> Battle | None:
        """The battle, marked voted; None when unknown. Raises :class:`AlreadyVoted` the second time."""
        with self._lock:
            self._expire()
            battle = self._battles.get(battle_id)
            if battle is not None:
                if battle.voted:
                    raise AlreadyVoted(battle_id)
                battle.voted = True
            return battle

    def unclaim_vote(self, battle: Battle) -> None:
        """Give the vote back when storing it failed, so that the user may try again."""
        with self._lock:
            battle.voted = False

    def _expire(self) -> None:
        limit = self.clock() - self.ttl
        while self._battles and next(iter(self._battles.values())).created < limit:
            self._battles.popitem(last=False)


class AlreadyVoted(Exception):
    pass


def pick_pair(models: list[str], rng: random.Random) -> tuple[str, str]:
    """Two distinct models in random seats (seat order matters to voters: A is read first), or the only model
    twice."""
    if not models:
        raise ValueError("no models")
    if len(models) == 1:
        return models[0], models[0]
    a, b = rng.sample(models, 2)
    return a, b


# -- votes ----------------------------------------------------------------------------------------------------
class VotesFile:
    """The SQLite votes file. Each write opens its own short connection: sqlite3 connections may not cross
    threads, writes are rare (one per human vote), and SQLite serialises writers itself."""

    def __init__(self, path: str | Path | None) -> None:
        self._tmp = None
        if path is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="gniazdo-arena-")  # removed with this object / at exit
            path = Path(self._tmp.name) / "votes.sqlite"
        self.path = Path(path)
        votes_lib.open_votes_db(self.path).close()  # create it now: a bad path fails at start, not at a vote
        self._cache: tuple[int, dict[str, Any]] | None = None
        self._cache_lock = threading.Lock()

    @property
    def temporary(self) -> bool:
        return self._tmp is not None

    def add(self, battle: Battle, winner: str, voter: str | None) -> None:
        conn = votes_lib.open_votes_db(self.path)
        try:
            votes_lib.add_vote(conn, battle.model_a, battle.model_b, winner, prompt=battle.prompt,
                               conversation_id=battle.id, voter=voter)
        finally:
            conn.close()

    def leaderboard(self, min_votes: int = MIN_VOTES_FOR_RATINGS, rounds: int = LEADERBOARD_ROUNDS) -> dict:
        """The leaderboard JSON, recomputed only when the number of votes changed (votes are only appended)."""
        votes = votes_lib.load_votes(self.path)
        with self._cache_lock:
            if self._cache is not None and self._cache[0] == len(votes):
                return self._cache[1]
        board = leaderboard_json(votes, min_votes, rounds)
        with self._cache_lock:
            self._cache = (len(votes), board)
        return board


def leaderboard_json(votes: list[dict[str, str]], min_votes: int = MIN_VOTES_FOR_RATINGS,
                     rounds: int = LEADERBOARD_ROUNDS) -> dict[str, Any]:
    """Bradley–Terry rows with bootstrap intervals from ``min_votes`` votes on, else win rates per model."""
    head = {"votes": len(votes), "min_votes": min_votes, "rounds": rounds}
    if len(votes) >= min_votes:
        return {"method": "bradley_terry", **head, "rows": votes_lib.leaderboard(votes, rounds=rounds)}
    rows = [{"model": model, **{k: v for k, v in row.items() if k != "against"}}
            for model, row in votes_lib.win_rates(votes).items()]
    return {"method": "win_rate", **head, "rows": rows}


# -- request bodies -------------------------------------------------------------------------------------------
class BattleRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    temperature: float = Field(0.7, ge=0.0, le=2.0)
    max_tokens: int = Field(256, ge=1, le=MAX_ARENA_TOKENS)


class VoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    winner: str
    voter: str | None = Field(None, max_length=MAX_VOTER_CHARS)


async def parse_body(request: Request, model: type[BaseModel]) -> Any:
    """The JSON body as ``model``; anything wrong is a 400 with one line naming the field (FastAPI's own
    validation would answer 422 in its own shape, unlike the rest of the API)."""
    try:
        data = await request.json()
    except ValueError:
        raise ServeError(400, "the request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise ServeError(400, "the request body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ServeError(400, describe_validation_error(e, model)) from None


# -- the router -----------------------------------------------------------------------------------------------
def web_router(config: Any, rng: random.Random | None = None) -> APIRouter:
    """The pages, their assets and the arena API. ``config``: the server's ``ServeConfig`` (``arena_db`` and
    the api key); ``rng``: the draw of battle models (tests seed it)."""
    router = APIRouter()
    add_pages(router)
    votes = VotesFile(getattr(config, "arena_db", None))
    if votes.temporary:
        log.info("arena votes go to a temporary file (%s), removed at exit: set arena_db to keep them", votes.path)
    add_arena_api(router, votes, BattleStore(), rng or random.SystemRandom(), auth_dependencies(config))
    return router


def add_pages(router: APIRouter) -> None:
    """The HTML pages and the files under ``/static/``. Only files present at start are served, so a path
    cannot walk out of the folder."""
    for path, name in PAGES.items():
        router.add_api_route(path, _file_endpoint(STATIC_DIR / name), methods=["GET"], include_in_schema=False)
    assets = {p.name: p for p in STATIC_DIR.iterdir() if p.is_file() and p.suffix in ASSET_TYPES}

    async def asset(name: str) -> FileResponse:
        if name not in assets:
            raise ServeError(404, f"no such file: /static/{name}")
        return FileResponse(assets[name], media_type=ASSET_TYPES[assets[name].suffix],
                            headers={"Cache-Control": "no-cache"})

    router.add_api_route("/static/{name}", asset, methods=["GET"], include_in_schema=False)


def _file_endpoint(path: Path) -> Callable:
    async def page() -> FileResponse:
        # no-cache: a browser revalidates (cheap, by ETag) and so never runs a page against an older server
        return FileResponse(path, media_type="text/html; charset=utf-8", headers={"Cache-Control": "no-cache"})

    return page


def add_arena_api(router: APIRouter, votes: VotesFile, battles: BattleStore, rng: random.Random,
                  dependencies: list) -> None:
    """The arena's JSON API (see the module's docstring), each route behind ``dependencies`` (the api key)."""

    def service(request: Request) -> Any:
        return request.app.state.service

    def missing(battle_id: str) -> ServeError:
        return ServeError(404, f"no battle '{battle_id}' (unknown, or expired: battles last "
                               f"{battles.ttl / 60:.0f} min)")

    async def create_battle(request: Request) -> dict:
        body = await parse_body(request, BattleRequest)
        models = list(service(request).model_names())
        if not models:
            raise ServeError(503, "the server has no model to put in the arena")
        try:
            params = SamplingParams(temperature=body.temperature, max_new_tokens=body.max_tokens)
        except InvalidSamplingParams as e:
            raise ServeError(400, str(e)) from None
        a, b = pick_pair(models, rng)
        battle = battles.new(a, b, body.prompt, params)
        return {"battle_id": battle.id, "same_model": a == b}

    async def answer(battle_id: str, side: str, request: Request):
        if side not in SIDES:
            raise ServeError(404, f"no side '{side}': a or b")
        battle = battles.get(battle_id)
        if battle is None:
            raise missing(battle_id)
        name, seat = battle.model(side), side.upper()
        try:  # primed: an error before any text (prompt too long, queue full) is the status, not a broken stream
            deltas = await prime(service(request).chat_deltas(
                name, [{"role": "user", "content": battle.prompt}], battle.params,
                is_disconnected=request.is_disconnected))
        except ServeError as e:
            raise blind_error(e, name, seat) from None
        return chat_sse_response(blinded(deltas, name, seat), seat)  # "A"/"B" in every chunk, never the name

    async def vote(battle_id: str, request: Request) -> dict:
        body = await parse_body(request, VoteRequest)
        if body.winner not in votes_lib.WINNERS:
            raise ServeError(400, f"winner '{body.winner}' is not one of {', '.join(votes_lib.WINNERS)}")
        try:
            battle = battles.claim_vote(battle_id)
        except AlreadyVoted:
            raise ServeError(409, f"battle '{battle_id}' already has a vote") from None
        if battle is None:
            raise missing(battle_id)
        stored = battle.model_a != battle.model_b
        if stored:
            try:
                await run_in_threadpool(votes.add, battle, body.winner, body.voter)  # disk I/O off the loop
            except Exception:
                battles.unclaim_vote(battle)
                raise
        return {"model_a": battle.model_a, "model_b": battle.model_b, "stored": stored}

    def leaderboard() -> JSONResponse:
        # sync: the bootstrap runs in the threadpool, not on the event loop that streams answers
        return JSONResponse(votes.leaderboard())

    for path, endpoint, method in (("/arena/api/battles", create_battle, "POST"),
                                   ("/arena/api/battles/{battle_id}/answer/{side}", answer, "POST"),
                                   ("/arena/api/battles/{battle_id}/vote", vote, "POST"),
                                   ("/arena/api/leaderboard", leaderboard, "GET")):
        router.add_api_route(path, endpoint, methods=[method], dependencies=dependencies, include_in_schema=False)


def blind_error(e: ServeError, name: str, seat: str) -> ServeError:
    """``e`` with the model's quoted name (the service writes ``model 'x' is busy``) replaced by its seat: an
    error must not unblind a battle."""
    quoted = f"'{name}'"
    if quoted not in e.message:
        return e
    return ServeError(e.status, e.message.replace(quoted, f"'{seat}'"), e.type, e.param)


async def blinded(deltas: AsyncIterator[str], name: str, seat: str) -> AsyncIterator[str]:
    """``deltas`` as they are, but an error during the stream (a timeout, a failure) blinded too."""
    try:
        async with aclosing(deltas):
            async for delta in deltas:
                yield delta
    except ServeError as e:
        raise blind_error(e, name, seat) from None
