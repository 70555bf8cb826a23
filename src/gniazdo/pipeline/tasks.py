"""Splitting the input into tasks: whole files, or byte ranges of large plain line-based files."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from gniazdo.corpus import expand_inputs, open_reader
from gniazdo.corpus.base import ReaderOptions


@dataclass(frozen=True)
class Task:
    index: int
    path: str
    start: int = 0
    end: int | None = None  # None: to the end of the file

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        return self.path if self.end is None and not self.start else f"{self.path}[{self.start}:{self.end}]"


def plan_tasks(paths: list[str], options: ReaderOptions, task_size: int) -> list[Task]:
    tasks: list[Task] = []
    for path in expand_inputs(paths, explicit_format=options.format != "auto"):
        size = path.stat().st_size
        if open_reader(path, options).splittable and size > task_size:
            for start in range(0, size, task_size):
                end = min(start + task_size, size)
                tasks.append(Task(len(tasks), str(path), start, None if end == size else end))
        else:
            tasks.append(Task(len(tasks), str(path)))
    return tasks


def shard_base(name: str, task: int, n_tasks: int) -> str:
    """Output name of a task: ``corpus`` when the run has one task, else ``corpus_00042``."""
    return name if n_tasks == 1 else f"{name}_{task:05d}"


def work_dir(out: str | Path) -> Path:
    return Path(out) / ".gniazdo"
