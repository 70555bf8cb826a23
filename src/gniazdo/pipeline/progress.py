"""A progress bar for pipeline runs: tasks done of total, documents processed, documents per second."""

from __future__ import annotations

import sys

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class PipelineProgress:
    def __init__(self, total_tasks: int, enabled: bool = True) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.docs_seen = 0
        self._progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                  TextColumn("{task.fields[docs]:,} docs · {task.fields[rate]:,.0f} docs/s"),
                                  TimeElapsedColumn(), disable=not self.enabled, transient=False)
        self._task = self._progress.add_task("pipeline", total=total_tasks, docs=0, rate=0.0)

    def __enter__(self) -> "PipelineProgress":
        self._progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._progress.__exit__(*exc)

    def docs(self, n: int) -> None:
        self.docs_seen += n
        elapsed = self._progress.tasks[0].elapsed or 0.0
        self._progress.update(self._task, docs=self.docs_seen, rate=self.docs_seen / elapsed if elapsed else 0.0)

    def task_done(self) -> None:
        self._progress.advance(self._task)

    def skip(self, n: int) -> None:
        """Tasks already finished by an earlier run."""
        if n:
            self._progress.advance(self._task, n)
