"""Arena ratings: Bradley–Terry recovers simulated strengths, its bootstrap intervals cover them, online Elo
moves the right way, votes come from JSONL or the server's SQLite, and the CLI writes table and chart."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gniazdo.cli import main
from gniazdo.errors import UserError
from gniazdo.eval.arena import (VOTES_SCHEMA, add_vote, bootstrap_ci, bradley_terry, leaderboard, load_votes,
                                online_elo, open_votes_db, win_rates)

TRUE = {"bielik": 1200.0, "pllum": 1100.0, "qwen": 1000.0, "llama": 900.0, "tiny": 800.0}  # mean 1000


def simulate(n: int = 3000, seed: int = 7, tie_margin: float = 0.0) -> list[dict]:
    """Votes between random pairs; model_a wins with the Elo-scale probability of the true ratings."""
    rng = np.random.default_rng(seed)
    names = list(TRUE)
    votes = []
    for _ in range(n):
        i, j = rng.choice(len(names), 2, replace=False)
        a, b = names[i], names[j]
        p = 1 / (1 + 10 ** ((TRUE[b] - TRUE[a]) / 400))
        u = rng.random()
        winner = "tie" if abs(u - p) < tie_margin else "model_a" if u < p else "model_b"
        votes.append({"model_a": a, "model_b": b, "winner": winner})
    return votes


def test_bradley_terry_recovers_order_and_intervals_cover_truth():
    votes = simulate()
    ratings = bradley_terry(votes)
    assert sorted(ratings, key=ratings.get, reverse=True) == list(TRUE)
    assert np.mean(list(ratings.values())) == pytest.approx(1000.0)  # same anchor as TRUE: mean 1000
    ci = bootstrap_ci(votes, rounds=400, seed=0)
    for model, true in TRUE.items():
        lo, hi = ci[model]
        assert lo <= ratings[model] <= hi
        assert lo <= true <= hi, (model, true, lo, hi)
        assert hi - lo < 80  # ~1200 games per model pin a rating to a few tens of points
    assert bootstrap_ci(votes, rounds=50, seed=3) == bootstrap_ci(votes, rounds=50, seed=3)  # seeded


def test_ties_count_as_half_a_win_and_half_a_loss():
    def votes(*winners):
        return [{"model_a": "x", "model_b": "y", "winner": w} for w in winners] + \
               [{"model_a": "x", "model_b": "z", "winner": "model_b"}]  # connects a third model
    two_wins_two_ties = bradley_terry(votes("model_a", "model_a", "tie", "tie (bothbad)"))
    three_wins_one_loss = bradley_terry(votes("model_a", "model_a", "model_a", "model_b"))
    for m in "xyz":
        assert two_wins_two_ties[m] == pytest.approx(three_wins_one_loss[m], abs=1e-6)
    even = bradley_terry([{"model_a": "x", "model_b": "y", "winner": "tie"}] * 3)
    assert even["x"] == pytest.approx(1000.0) and even["y"] == pytest.approx(1000.0)
    # 3:1 odds between two models = 400·log10(3) points apart
    r = bradley_terry(votes("model_a", "model_a", "model_a", "model_b"))
    pair = bradley_terry([{"model_a": "x", "model_b": "y", "winner": w} for w in ("model_a",) * 3 + ("model_b",)])
    assert pair["x"] - pair["y"] == pytest.approx(400 * np.log10(3), abs=1e-3)
    assert r["x"] > r["y"]


def test_unbeaten_model_stays_finite_and_anchor_shifts():
    r = bradley_terry([{"model_a": "x", "model_b": "y", "winner": "model_a"}] * 5)
    assert np.isfinite(r["x"]) and r["x"] > r["y"]
    anchored = bradley_terry(simulate(500), anchor=("qwen", 1114.0))
    assert anchored["qwen"] == pytest.approx(1114.0)
    with pytest.raises(UserError, match="anchor"):
        bradley_terry(simulate(50), anchor=("gpt-9", 1000.0))


def test_online_elo_direction_and_k():
    first = online_elo([{"model_a": "a", "model_b": "b", "winner": "model_a"}])
    assert first == {"a": 1002.0, "b": 998.0}  # K=4, expected 0.5
    elo = online_elo([{"model_a": "a", "model_b": "b", "winner": "model_b"}] * 50)
    assert elo["b"] > 1000 > elo["a"] and elo["a"] + elo["b"] == pytest.approx(2000.0)
    tie = online_elo([{"model_a": "a", "model_b": "b", "winner": "tie"}])
    assert tie == {"a": 1000.0, "b": 1000.0}
    sim = online_elo(simulate())
    assert sim["bielik"] > sim["qwen"] > sim["tiny"]


def test_win_rates():
    votes = [{"model_a": "a", "model_b": "b", "winner": "model_a"},
             {"model_a": "b", "model_b": "a", "winner": "tie (bothbad)"},
             {"model_a": "c", "model_b": "a", "winner": "model_a"}]
    w = win_rates(votes)
    assert w["a"] == {"games": 3, "wins": 1, "ties": 1, "losses": 1, "win_rate": 0.5, "against": {"b": 0.75, "c": 0.0}}
    assert w["c"]["win_rate"] == 1.0 and list(w)[0] == "c"


def test_jsonl_json_and_sqlite_votes_agree(tmp_path):
    votes = simulate(60)
    jsonl = tmp_path / "votes.jsonl"
    jsonl.write_text("".join(json.dumps(v) + "\n" for v in votes))
    as_list = tmp_path / "votes.json"
    as_list.write_text(json.dumps(votes))
    db = tmp_path / "arena" / "votes.sqlite"
    conn = open_votes_db(db)
    for v in votes:
        add_vote(conn, v["model_a"], v["model_b"], v["winner"], prompt="Cześć!")
    conn.close()
    assert "CREATE TABLE IF NOT EXISTS votes" in VOTES_SCHEMA
    assert load_votes(jsonl) == votes == load_votes(as_list) == load_votes(db)


def test_bad_votes_are_one_line_errors(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"model_a": "a", "model_b": "b", "winner": "model_c"}) + "\n")
    with pytest.raises(UserError, match=r"bad.jsonl:1: winner 'model_c'"):
        load_votes(bad)
    bad.write_text('{"model_a": "a"}\n')
    with pytest.raises(UserError, match="needs model_a, model_b and winner"):
        load_votes(bad)
    with pytest.raises(UserError, match="not found"):
        load_votes(tmp_path / "none.jsonl")
    conn = open_votes_db(tmp_path / "v.sqlite")
    with pytest.raises(UserError):
        add_vote(conn, "a", "a", "tie")


def test_leaderboard_rows_sorted():
    rows = leaderboard(simulate(600), rounds=20)
    assert [r["model"] for r in rows][0] == "bielik" and rows[0]["ci_low"] <= rows[0]["rating"] <= rows[0]["ci_high"]
    assert leaderboard(simulate(100), rounds=0)[0]["ci_low"] is None


def test_cli_ratings_writes_table_and_chart(tmp_path, capsys):
    votes = tmp_path / "votes.jsonl"
    votes.write_text("".join(json.dumps(v) + "\n" for v in simulate(800)))
    out = tmp_path / "out"
    main(["arena", "ratings", str(votes), "--out", str(out), "--bootstrap", "50", "--anchor", "tiny=800"])
    printed = capsys.readouterr().out
    assert "bielik" in printed and "800 votes" in printed
    data = json.loads((out / "ratings.json").read_text())
    assert data["ratings"][0]["model"] == "bielik" and data["ratings"][-1]["rating"] == pytest.approx(800.0)
    assert (out / "ratings.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| 1 | bielik |" in (out / "ratings.md").read_text()
    with pytest.raises(SystemExit) as e:
        main(["arena", "ratings", str(votes), "--anchor", "tiny"])
    assert e.value.code == 2
