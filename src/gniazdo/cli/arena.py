"""``gniazdo arena``: ratings from pairwise votes (Chatbot Arena's method)."""

from __future__ import annotations

import click

from gniazdo.cli.report import console


def _anchor(value: str | None) -> tuple[str, float] | None:
    """``MODEL=RATING`` → (model, rating)."""
    if value is None:
        return None
    name, _, rating = value.rpartition("=")
    try:
        number = float(rating)
    except ValueError:
        number = None
    if not name or number is None:
        raise click.BadParameter(f"'{value}' is not MODEL=RATING", param_hint="--anchor")
    return name, number


@click.group()
def arena() -> None:
    """Model arena: Bradley-Terry ratings with bootstrap intervals from pairwise votes.

    \b
    Example:
      gniazdo arena ratings votes.jsonl --out results/arena
    """


@arena.command()
@click.argument("votes")
@click.option("--out", default=None, help="Folder for ratings.json, ratings.md and ratings.png.")
@click.option("--bootstrap", "rounds", type=int, default=1000, show_default=True,
              help="Bootstrap resamples for the 95% intervals (0: none).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--k", type=float, default=4.0, show_default=True, help="K of the online Elo shown for comparison.")
@click.option("--anchor", default=None, help="MODEL=RATING: shift ratings so MODEL has RATING [default: mean 1000].")
def ratings(votes, out, rounds, seed, k, anchor) -> None:
    """Rate models from votes (JSONL of {"model_a", "model_b", "winner"} or the arena's SQLite database):
    Bradley-Terry maximum likelihood (ties half a win), 400 points = 10:1 odds, online Elo for comparison.

    \b
    Example:
      gniazdo arena ratings votes.jsonl --out results/arena --bootstrap 1000 --seed 0
      gniazdo arena ratings arena/votes.sqlite --anchor bielik-11b=1200
    """
    from pathlib import Path

    from rich.table import Table

    from gniazdo.errors import UserError
    from gniazdo.eval.arena import ci_text, leaderboard, load_votes, markdown_table, plot_ratings
    from gniazdo.fileio import write_json_atomic, write_text_atomic

    if rounds < 0:
        raise UserError(f"--bootstrap must be 0 or more, got {rounds}")
    votes_list = load_votes(votes)
    rows = leaderboard(votes_list, rounds=rounds, seed=seed, k=k, anchor=_anchor(anchor))
    table = Table(title=f"arena: {len(votes_list):,} votes", title_justify="left")
    for col in ("rank", "model", "rating", "95% CI", f"Elo (K={k:g})", "games", "win rate"):
        table.add_column(col, justify="left" if col in ("model", "95% CI") else "right")
    for i, r in enumerate(rows, 1):
        table.add_row(str(i), r["model"], f"{r['rating']:.0f}", ci_text(r),
                      f"{r['elo']:.0f}", f"{r['games']:,}", f"{r['win_rate']:.3f}")
    console.print(table)
    if out:
        folder = Path(out)
        write_json_atomic(folder / "ratings.json", {"votes": len(votes_list), "bootstrap": rounds, "seed": seed,
                                                    "k": k, "anchor": anchor, "ratings": rows})
        write_text_atomic(folder / "ratings.md", markdown_table(rows))
        plot_ratings(rows, folder / "ratings.png")
        console.print(f"written to {out}/ (ratings.json, ratings.md, ratings.png)")
