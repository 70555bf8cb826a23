"""Rich tables the commands print: pipeline summaries, manifest stats."""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.table import Table

# Piped output (logs, CI) gets wide lines instead of rich's default 80 columns, so tables do not wrap.
console = Console(width=None if sys.stdout.isatty() else 160)


def pipeline_table(stats: dict[str, Any]) -> Table:
    table = Table(title="pipeline", title_justify="left")
    for col in ("step", "docs in", "docs out", "dropped (reason: n)", "chars out", "seconds"):
        table.add_column(col, justify="left" if col.startswith(("step", "dropped")) else "right")
    for s in stats["steps"]:
        dropped = ", ".join(f"{k}: {v}" for k, v in s["dropped"].items()) or "-"
        table.add_row(s["name"], f"{s['docs_in']:,}", f"{s['docs_out']:,}", dropped, f"{s['chars_out']:,}",
                      f"{s['seconds']:.2f}")
    return table


def print_pipeline_summary(stats: dict[str, Any], out: str) -> None:
    console.print(pipeline_table(stats))
    console.print(f"documents: {stats['documents_in']:,} in → {stats['documents_out']:,} out; "
                  f"bad records: {stats['errors']:,} (errors.jsonl); {stats['seconds']:.1f}s")
    console.print(f"output: {out}")


def stats_table(stats: dict[str, Any], title: str = "stats") -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("field")
    table.add_column("value", justify="right")
    for key, value in stats.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v:.1%}" if isinstance(v, float) else f"{k} {v}" for k, v in value.items())
        elif isinstance(value, float):
            value = f"{value:,.4f}"
        elif isinstance(value, int):
            value = f"{value:,}"
        table.add_row(key, str(value))
    return table
