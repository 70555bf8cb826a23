"""MT-Bench results as a markdown table and a radar chart (one line per model, one spoke per category)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from gniazdo.fileio import atomic_open


def _fmt(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def markdown_table(summary: dict[str, Any]) -> str:
    """Single mode: mean grade (1–10) per category and overall; pairwise: win rate (ties half) and counts."""
    models = summary["models"]
    cats = list(dict.fromkeys(c for m in models.values() for c in m["categories"]))
    if summary["mode"] == "single":
        head = ["model", "overall", "turn 1", "turn 2", *cats, "unparsed"]
        rows = [[name, _fmt(m["overall"]), _fmt(m["turns"]["1"]), _fmt(m["turns"]["2"]),
                 *(_fmt(m["categories"].get(c)) for c in cats), str(m["unparsed"])]
                for name, m in sorted(models.items(), key=lambda kv: -(kv[1]["overall"] or 0))]
    else:
        head = ["model", "win rate", "win", "tie", "loss", *cats, "errors"]
        rows = [[name, _fmt(m["win_rate"], 3), str(m["win"]), str(m["tie"]), str(m["loss"]),
                 *(_fmt(m["categories"].get(c), 3) for c in cats), str(m["errors"])]
                for name, m in sorted(models.items(), key=lambda kv: -(kv[1]["win_rate"] or 0))]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    what = "mean judge grade 1–10" if summary["mode"] == "single" else "win rate, ties count half"
    return f"MT-Bench ({summary['mode']}, {what}; judge {summary['judge']['model'] or summary['judge']['url']})\n\n" \
           + "\n".join(lines) + "\n"


def radar_chart(summary: dict[str, Any], path: str | Path) -> Path:
    """A polar plot of every model's per-category result (grade 0–10, or win rate 0–1) to a PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    models = summary["models"]
    cats = list(dict.fromkeys(c for m in models.values() for c in m["categories"]))
    single = summary["mode"] == "single"
    top = 10.0 if single else 1.0
    angles = [2 * math.pi * i / max(len(cats), 1) for i in range(len(cats))]
    fig = Figure(figsize=(7, 7))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(projection="polar")
    for name, m in models.items():
        values = [m["categories"].get(c) or 0.0 for c in cats]
        ax.plot(angles + angles[:1], values + values[:1], marker="o", label=name)
        ax.fill(angles + angles[:1], values + values[:1], alpha=0.1)
    ax.set_xticks(angles)
    ax.set_xticklabels(cats)
    ax.set_ylim(0, top)
    ax.set_title("MT-Bench: " + ("mean grade per category" if single else "win rate per category"))
    ax.legend(loc="upper right", bbox_to_anchor=(1.3, 1.1), fontsize="small")
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=120, bbox_inches="tight")
    return Path(path)
