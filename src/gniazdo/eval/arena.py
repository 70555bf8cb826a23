"""Arena ratings from pairwise human (or judge) votes, as Chatbot Arena computes them.

Votes are Chatbot Arena's records ``{"model_a", "model_b", "winner"}`` with ``winner`` one of ``model_a``,
``model_b``, ``tie``, ``tie (bothbad)``, read from JSONL or from the SQLite ``votes`` table the arena server
writes (:data:`VOTES_SCHEMA`, shared with it).

**Bradley–Terry.** Each model has a strength ``r`` in log10-odds: P(a beats b) = 1 / (1 + 10^(r_b − r_a)).
The strengths maximise the likelihood of the votes, a tie counting as half a win and half a loss for each side
(a logistic regression on a ±1 design, as Arena's ``compute_mle_elo``); a tiny L2 penalty (1e-6, Arena's
C = 1e6) keeps an unbeaten model finite. Strengths are centred (mean 0) and reported as
``rating = 400 · r + 1000``, the Elo scale: 400 points = 10:1 odds, mean rating 1000 (or shifted so that an
``anchor`` model has a given rating). **Confidence intervals**: the votes are resampled with replacement
``rounds`` times (seeded), refitted, and the 2.5th and 97.5th percentiles of each rating kept.
**Online Elo** (K = 4, votes in the order given) is reported for comparison: it depends on the order and
lags the maximum-likelihood ratings, which is why Arena moved to Bradley–Terry.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from gniazdo.errors import UserError
from gniazdo.fileio import atomic_open

WINNERS = ("model_a", "model_b", "tie", "tie (bothbad)")
SCALE, BASE, INIT = 400.0, 10.0, 1000.0

VOTES_SCHEMA = """
CREATE TABLE IF NOT EXISTS votes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tstamp REAL NOT NULL,
    model_a TEXT NOT NULL,
    model_b TEXT NOT NULL,
    winner TEXT NOT NULL CHECK (winner IN ('model_a', 'model_b', 'tie', 'tie (bothbad)')),
    prompt TEXT,
    conversation_id TEXT,
    voter TEXT
);
CREATE INDEX IF NOT EXISTS votes_models ON votes (model_a, model_b);
"""

Vote = dict[str, str]


# -- votes ----------------------------------------------------------------------------------------------------
def check_vote(vote: Any, where: str) -> Vote:
    if not isinstance(vote, dict) or not all(isinstance(vote.get(k), str) for k in ("model_a", "model_b", "winner")):
        raise UserError(f"{where}: a vote needs model_a, model_b and winner (strings)")
    if vote["winner"] not in WINNERS:
        raise UserError(f"{where}: winner '{vote['winner']}' is not one of {', '.join(WINNERS)}")
    if vote["model_a"] == vote["model_b"]:
        raise UserError(f"{where}: a model cannot play itself ({vote['model_a']})")
    return {k: vote[k] for k in ("model_a", "model_b", "winner")}


def open_votes_db(path: str | Path) -> sqlite3.Connection:
    """Open (creating if needed) a votes database with :data:`VOTES_SCHEMA`."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    conn.executescript(VOTES_SCHEMA)
    return conn


def add_vote(conn: sqlite3.Connection, model_a: str, model_b: str, winner: str, prompt: str | None = None,
             conversation_id: str | None = None, voter: str | None = None) -> None:
    check_vote({"model_a": model_a, "model_b": model_b, "winner": winner}, "vote")
    conn.execute("INSERT INTO votes (tstamp, model_a, model_b, winner, prompt, conversation_id, voter) "
                 "VALUES (?, ?, ?, ?, ?, ?, ?)",
                 (time.time(), model_a, model_b, winner, prompt, conversation_id, voter))
    conn.commit()


def load_votes(path: str | Path) -> list[Vote]:
    """Votes from JSONL (one per line, or a JSON list) or an SQLite file with a ``votes`` table, in order."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"votes file not found: {path}")
    with open(path, "rb") as f:
        sqlite = f.read(16) == b"SQLite format 3\x00"
    if sqlite:
        try:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            rows = conn.execute("SELECT model_a, model_b, winner FROM votes ORDER BY id").fetchall()
            conn.close()
        except sqlite3.DatabaseError as e:
            raise UserError(f"{path}: cannot read the votes table: {e}") from None
        return [check_vote(dict(zip(("model_a", "model_b", "winner"), r)), f"{path}: vote {i}")
                for i, r in enumerate(rows, 1)]
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        try:
            data = json.loads(text)
        except ValueError:
            raise UserError(f"{path}: not valid JSON") from None
        return [check_vote(v, f"{path}: vote {i}") for i, v in enumerate(data, 1)]
    votes = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                votes.append(check_vote(json.loads(line), f"{path}:{n}"))
            except ValueError:
                raise UserError(f"{path}:{n}: not JSON") from None
    return votes


# -- Bradley–Terry --------------------------------------------------------------------------------------------
def _cells(votes: list[Vote], models: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Votes → (index of a, index of b, score of a: 1 / 0.5 / 0) per vote."""
    index = {m: i for i, m in enumerate(models)}
    a = np.array([index[v["model_a"]] for v in votes], dtype=np.int64)
    b = np.array([index[v["model_b"]] for v in votes], dtype=np.int64)
    s = np.array([1.0 if v["winner"] == "model_a" else 0.0 if v["winner"] == "model_b" else 0.5 for v in votes])
    return a, b, s


def _fit(a: np.ndarray, b: np.ndarray, s: np.ndarray, weight: np.ndarray, n_models: int,
         l2: float = 1e-6) -> np.ndarray:
    """Maximum-likelihood log10-odds strengths (centred) by Newton's method on the convex logistic loss."""
    ln = math.log(BASE)
    r = np.zeros(n_models)
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-ln * (r[a] - r[b])))
        g = ln * weight * (p - s)                                 # d loss / d (r_a - r_b)
        grad = np.bincount(a, g, n_models) - np.bincount(b, g, n_models) + l2 * r
        h = ln * ln * weight * p * (1 - p)
        hess = np.zeros((n_models, n_models))
        np.add.at(hess, (a, a), h)
        np.add.at(hess, (b, b), h)
        np.add.at(hess, (a, b), -h)
        np.add.at(hess, (b, a), -h)
        hess += l2 * np.eye(n_models)
        step = np.linalg.solve(hess + 1e-12 * np.eye(n_models), grad)
        r -= step
        if np.max(np.abs(step)) < 1e-9:
            break
    return r - r.mean()


def _aggregate(a: np.ndarray, b: np.ndarray, s: np.ndarray, n_models: int):
    """Identical votes merged into cells (a, b, score) with counts: fitting and resampling cost per cell."""
    key = (a * n_models + b) * 3 + (2 * s).astype(np.int64)
    cells, counts = np.unique(key, return_counts=True)
    ca, cb = divmod(cells // 3, n_models)
    return ca, cb, (cells % 3) / 2.0, counts.astype(np.float64)


def _models(votes: list[Vote]) -> list[str]:
    return sorted({m for v in votes for m in (v["model_a"], v["model_b"])})


def _to_ratings(r: np.ndarray, models: list[str], anchor: tuple[str, float] | None) -> dict[str, float]:
    ratings = SCALE * r + INIT
    if anchor is not None:
        if anchor[0] not in models:
            raise UserError(f"anchor model '{anchor[0]}' has no votes")
        ratings = ratings - ratings[models.index(anchor[0])] + anchor[1]
    return {m: float(x) for m, x in zip(models, ratings)}


def bradley_terry(votes: list[Vote], anchor: tuple[str, float] | None = None) -> dict[str, float]:
    """Bradley–Terry maximum-likelihood ratings on the Elo scale (mean 1000, or ``anchor=(model, rating)``)."""
    if not votes:
        raise UserError("no votes")
    models = _models(votes)
    ca, cb, cs, counts = _aggregate(*_cells(votes, models), len(models))
    return _to_ratings(_fit(ca, cb, cs, counts, len(models)), models, anchor)


def bootstrap_ci(votes: list[Vote], rounds: int = 1000, seed: int = 0, level: float = 0.95,
                 anchor: tuple[str, float] | None = None) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap intervals of the Bradley–Terry ratings: votes resampled with replacement."""
    if not votes:
        raise UserError("no votes")
    if rounds < 1:
        raise UserError(f"bootstrap rounds must be positive, got {rounds}")
    models = _models(votes)
    ca, cb, cs, counts = _aggregate(*_cells(votes, models), len(models))
    rng = np.random.default_rng(seed)
    samples = rng.multinomial(len(votes), counts / counts.sum(), size=rounds)  # resampled counts per cell
    fits = np.array([list(_to_ratings(_fit(ca, cb, cs, w.astype(np.float64), len(models)), models, anchor)
                          .values()) for w in samples])
    lo, hi = np.percentile(fits, [50 * (1 - level), 50 * (1 + level)], axis=0)
    return {m: (float(lo[i]), float(hi[i])) for i, m in enumerate(models)}


def online_elo(votes: Iterable[Vote], k: float = 4.0) -> dict[str, float]:
    """Classic Elo updated vote by vote in the order given (starting at 1000; ties score 0.5)."""
    ratings: dict[str, float] = {}
    for v in votes:
        ra, rb = ratings.setdefault(v["model_a"], INIT), ratings.setdefault(v["model_b"], INIT)
        expected_a = 1 / (1 + BASE ** ((rb - ra) / SCALE))
        score_a = 1.0 if v["winner"] == "model_a" else 0.0 if v["winner"] == "model_b" else 0.5
        ratings[v["model_a"]] = ra + k * (score_a - expected_a)
        ratings[v["model_b"]] = rb - k * (score_a - expected_a)
    return ratings


def win_rates(votes: list[Vote]) -> dict[str, dict[str, Any]]:
    """Per model: games, wins, ties, losses and win rate (ties half), plus its win rate against each opponent.
    No model fitting: the arena page's fallback when there are too few votes for ratings."""
    out: dict[str, dict[str, Any]] = {}
    for v in votes:
        for me, other, my_seat in ((v["model_a"], v["model_b"], "model_a"), (v["model_b"], v["model_a"], "model_b")):
            row = out.setdefault(me, {"games": 0, "wins": 0, "ties": 0, "losses": 0, "against": {}})
            against = row["against"].setdefault(other, [0.0, 0])
            result = 0.5 if v["winner"].startswith("tie") else 1.0 if v["winner"] == my_seat else 0.0
            row["games"] += 1
            row["wins" if result == 1 else "ties" if result == 0.5 else "losses"] += 1
            against[0] += result
            against[1] += 1
    for row in out.values():
        row["win_rate"] = (row["wins"] + 0.5 * row["ties"]) / row["games"]
        row["against"] = {m: s / n for m, (s, n) in sorted(row["against"].items())}
    return dict(sorted(out.items(), key=lambda kv: -kv[1]["win_rate"]))


# -- the leaderboard ------------------------------------------------------------------------------------------
def leaderboard(votes: list[Vote], rounds: int = 1000, seed: int = 0, k: float = 4.0,
                anchor: tuple[str, float] | None = None) -> list[dict[str, Any]]:
    """Rows sorted by rating: model, rating, ci_low, ci_high (None without bootstrap), elo, games, win_rate."""
    ratings = bradley_terry(votes, anchor)
    ci = bootstrap_ci(votes, rounds, seed, anchor=anchor) if rounds else {m: (None, None) for m in ratings}
    elo = online_elo(votes, k)
    wins = win_rates(votes)
    rows = [{"model": m, "rating": r, "ci_low": ci[m][0], "ci_high": ci[m][1], "elo": elo[m],
             "games": wins[m]["games"], "win_rate": wins[m]["win_rate"]} for m, r in ratings.items()]
    return sorted(rows, key=lambda row: -row["rating"])


def ci_text(row: dict[str, Any]) -> str:
    return "–" if row["ci_low"] is None else f"{row['ci_low']:.0f} – {row['ci_high']:.0f}"


def markdown_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| rank | model | rating (BT) | 95% CI | online Elo (K=4) | games | win rate |",
             "|---:|---|---:|---|---:|---:|---:|"]
    for i, r in enumerate(rows, 1):
        lines.append(f"| {i} | {r['model']} | {r['rating']:.0f} | {ci_text(r)} | "
                     f"{r['elo']:.0f} | {r['games']} | {r['win_rate']:.3f} |")
    return "\n".join(lines) + "\n"


def plot_ratings(rows: list[dict[str, Any]], path: str | Path) -> Path:
    """Ratings with their confidence intervals (bars) and the online Elo (crosses), best at the top, to PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 1.2 + 0.45 * len(rows)))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    y = np.arange(len(rows))[::-1]
    ratings = np.array([r["rating"] for r in rows])
    err = np.array([[0.0, 0.0] if r["ci_low"] is None else [r["rating"] - r["ci_low"], r["ci_high"] - r["rating"]]
                    for r in rows]).T
    ax.errorbar(ratings, y, xerr=err, fmt="o", capsize=4, label="Bradley–Terry, 95% CI")
    ax.plot([r["elo"] for r in rows], y, "x", color="gray", label="online Elo (K=4)")
    ax.set_yticks(y)
    ax.set_yticklabels([r["model"] for r in rows])
    ax.set_xlabel("rating (400 points = 10:1 odds)")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=120, bbox_inches="tight")
    return Path(path)
