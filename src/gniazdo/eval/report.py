"""The leaderboard as a markdown table and a bar chart, for one run and for runs side by side."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gniazdo.errors import UserError

_KIND = {"mc": "MC", "gen": "gen"}


def _num(x: float | None) -> str:
    return "-" if x is None else f"{round(x, 2) + 0.0:.2f}"  # + 0.0: no "-0.00"


def leaderboard_markdown(board: dict[str, Any], title: str = "", config: dict[str, Any] | None = None) -> str:
    """One row per task (raw score, baseline, normalised score, acc_norm for MC), then the three averages."""
    lines = [f"# Open PL LLM Leaderboard{': ' + title if title else ''}", ""]
    if config:
        shown = {k: config.get(k) for k in ("model", "server", "suite", "tasks", "num_fewshot", "limit",
                                             "data_dir") if config.get(k) not in (None, [], False)}
        lines += [", ".join(f"{k}: {v}" for k, v in shown.items()), ""]
        if config.get("limit"):
            lines += [f"Only {config['limit']} documents per task: a smoke test, not a comparable score.", ""]
    lines += ["| task | kind | metric | score | baseline | normalised | acc_norm |",
              "|---|---|---|---:|---:|---:|---:|"]
    for name, row in board["tasks"].items():
        lines.append(f"| {row['title']} (`{name}`) | {_KIND[row['kind']]} | {row['metric']} | {_num(row['value'])} "
                     f"| {_num(row['baseline'])} | {_num(row['normalized'])} | {_num(row.get('acc_norm'))} |")
    n = {k: sum(1 for r in board["tasks"].values() if k is None or r["kind"] == k) for k in (None, "mc", "gen")}
    lines += [f"| **average, all tasks ({n[None]})** | | | | | **{_num(board['average'])}** | |",
              f"| average, MC ({n['mc']}) | | | | | {_num(board['average_mc'])} | |",
              f"| average, generative ({n['gen']}) | | | | | {_num(board['average_gen'])} | |", "",
              "score: the task's metric in percent; normalised = (score - baseline) / (100 - baseline) * 100.", ""]
    return "\n".join(lines)


def leaderboard_table(board: dict[str, Any], title: str = ""):
    """The same rows as a rich Table, for the terminal."""
    from rich.table import Table

    table = Table(title=title or "Open PL LLM Leaderboard", title_justify="left")
    for col in ("task", "kind", "metric", "score", "baseline", "normalised"):
        table.add_column(col, justify="left" if col in ("task", "kind", "metric") else "right")
    for row in board["tasks"].values():
        table.add_row(row["title"], _KIND[row["kind"]], row["metric"], _num(row["value"]), _num(row["baseline"]),
                      _num(row["normalized"]))
    table.add_section()
    for key, what in (("average", "average, all tasks"), ("average_mc", "average, MC"),
                      ("average_gen", "average, generative")):
        table.add_row(what, "", "", "", "", _num(board[key]))
    return table


def plot_leaderboard(board: dict[str, Any], path: str | Path, title: str = "") -> Path:
    """Horizontal bars of the normalised scores, MC and generative in two colours, averages in the title."""
    return _plot({title or "run": board}, path, title)


def _plot(boards: dict[str, dict[str, Any]], path: str | Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names: list[str] = []
    for board in boards.values():
        names += [n for n in board["tasks"] if n not in names]
    if not names:
        raise UserError("no task results to plot")
    label = {n: f"{b['tasks'][n]['title']} ({_KIND[b['tasks'][n]['kind']]})"
             for b in boards.values() for n in b["tasks"]}
    runs = list(boards)
    height = 0.8 / len(runs)
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.32 * len(names) * max(1, len(runs) * 0.6)))
    for j, run in enumerate(runs):
        rows = boards[run]["tasks"]
        ys = [i + j * height for i, n in enumerate(names) if n in rows]
        xs = [rows[n]["normalized"] for n in names if n in rows]
        colors = None
        if len(runs) == 1:  # one run: colour by kind; several: colour by run
            colors = ["tab:blue" if rows[n]["kind"] == "mc" else "tab:orange" for n in names if n in rows]
        avg = boards[run]["average"]
        ax.barh(ys, xs, height=height, color=colors, label=f"{run} (avg {_num(avg)})")
    ax.set_yticks([i + height * (len(runs) - 1) / 2 for i in range(len(names))], [label[n] for n in names])
    ax.invert_yaxis()
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("normalised score (0 = baseline, 100 = perfect)")
    if len(runs) == 1:
        from matplotlib.patches import Patch

        kinds = [Patch(color="tab:blue", label="multiple choice"), Patch(color="tab:orange", label="generative")]
        ax.legend(handles=kinds, fontsize=8, loc="best")
        b = next(iter(boards.values()))
        ax.set_title(f"{title}\naverage {_num(b['average'])}, MC {_num(b['average_mc'])}, "
                     f"generative {_num(b['average_gen'])}", fontsize=10)
    else:
        ax.set_title(title or "comparison", fontsize=10)
        ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def load_run(run: str | Path) -> dict[str, Any]:
    """A run's results.json (the folder or the file)."""
    path = Path(run)
    path = path / "results.json" if path.is_dir() else path
    if not path.is_file():
        raise UserError(f"{run}: no results.json (not a 'gniazdo eval' output folder)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise UserError(f"{path}: not valid JSON ({e})") from None
    if "leaderboard" not in data:
        raise UserError(f"{path}: no leaderboard scores (not written by 'gniazdo eval')")
    return data


def _run_names(runs: list[str | Path]) -> list[str]:
    names = [Path(r).name if Path(r).is_dir() else Path(r).parent.name for r in runs]
    if len(set(names)) < len(names):  # same folder names in different places: use the paths
        names = [str(r) for r in runs]
    return names


def compare(runs: list[str | Path], out: str | Path | None = None) -> str:
    """Runs side by side: normalised score per task and the averages, one column per run. With ``out``, also
    writes ``out/compare.md`` and ``out/compare.png``. Returns the markdown."""
    if not runs:
        raise UserError("give at least one run folder")
    boards = {name: load_run(r)["leaderboard"] for name, r in zip(_run_names(runs), runs)}
    tasks: dict[str, dict[str, Any]] = {}
    for b in boards.values():
        for n, row in b["tasks"].items():
            tasks.setdefault(n, row)
    head = "| task | kind | metric | " + " | ".join(boards) + " |"
    lines = ["# Open PL LLM Leaderboard: runs compared (normalised scores)", "", head,
             "|---|---|---|" + "---:|" * len(boards)]
    for n, row in tasks.items():
        cells = [_num(b["tasks"][n]["normalized"]) if n in b["tasks"] else "-" for b in boards.values()]
        lines.append(f"| {row['title']} (`{n}`) | {_KIND[row['kind']]} | {row['metric']} | " + " | ".join(cells) + " |")
    for key, what in (("average", "**average, all tasks**"), ("average_mc", "average, MC"),
                      ("average_gen", "average, generative")):
        lines.append(f"| {what} | | | " + " | ".join(_num(b[key]) for b in boards.values()) + " |")
    lines.append("")
    text = "\n".join(lines)
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "compare.md").write_text(text, encoding="utf-8")
        _plot(boards, out / "compare.png", "runs compared")
    return text
