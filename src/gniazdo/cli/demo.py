"""``gniazdo demo``: the whole pipeline on the built-in sample corpus."""

from __future__ import annotations

import click


@click.command()
@click.option("--out", default="demo-out", show_default=True, help="Output folder (replaced on each run).")
@click.option("--workers", default=1, show_default=True, help="Worker processes for the data pipeline.")
@click.option("--resume", is_flag=True, help="Keep the output folder and resume instead of starting fresh.")
def demo(out: str, workers: int, resume: bool) -> None:
    """Run the end-to-end demo on the sample corpus shipped with gniazdo (CPU, offline, minutes).

    \b
    Example:
      gniazdo demo --out demo-out
    """
    from gniazdo.demo import run_demo

    run_demo(out, workers=workers, fresh=not resume)
