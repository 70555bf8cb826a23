"""Running one task of one stage: source → steps → sinks, committed atomically with a completion marker.

A stage is the part of the pipeline between two :class:`GlobalFilter` steps. Stage 0 reads the input task;
a later stage reads the previous stage's intermediate file for the same task and applies the global
decision (a keep mask) first. Everything a task writes goes to temp files that are renamed only when the
task finishes, then the marker is written; a killed task leaves no final file half-written, and re-running
it writes the same files again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from gniazdo.corpus import open_reader
from gniazdo.corpus.base import Writer
from gniazdo.corpus.jsonl import JsonlReader, JsonlWriter
from gniazdo.corpus.speakleash import SpeakLeashWriter
from gniazdo.document import BadRecord, Document
from gniazdo.errors import UserError
from gniazdo.fileio import write_json_atomic
from gniazdo.pipeline.config import PipelineConfig
from gniazdo.pipeline.decide import SignatureWriter, apply_decision
from gniazdo.pipeline.stats import Meter, StepStats
from gniazdo.pipeline.step import GlobalFilter, Step
from gniazdo.pipeline.tasks import Task, shard_base, work_dir

ProgressFn = Callable[[int], None]
PROGRESS_EVERY = 256


def split_stages(steps: list[Step]) -> tuple[list[list[Step]], list[GlobalFilter]]:
    """Steps → segments between global filters, and the global filters themselves."""
    segments: list[list[Step]] = [[]]
    globals_: list[GlobalFilter] = []
    for step in steps:
        if isinstance(step, GlobalFilter):
            globals_.append(step)
            segments.append([])
        else:
            segments[-1].append(step)
    return segments, globals_


def stage_dir(out: str | Path, stage: int) -> Path:
    return work_dir(out) / f"stage{stage}"


def marker_path(out: str | Path, stage: int, task: int) -> Path:
    return stage_dir(out, stage) / "done" / f"{task:05d}.json"


_REASON_UNSAFE = re.compile(r"[^\w.-]+")


def excluded_dir(out: str | Path, reason: str) -> Path:
    """``out/excluded/<reason>``; a reason is a short slug, made safe as a folder name."""
    return Path(out) / "excluded" / _REASON_UNSAFE.sub("_", reason)


@dataclass
class TaskSinks:
    """Where a task's documents go: the main writer, ``excluded/<reason>/`` writers, the error log and, before
    a global filter, the documents' signatures. All are temp files until :meth:`commit`."""

    cfg: PipelineConfig
    base: str
    stage: int
    main: Writer
    errors: JsonlWriter | None = None  # stage 0 only: the only stage that reads raw input
    signatures: SignatureWriter | None = None  # before a global filter
    excluded: dict[str, Writer] = field(default_factory=dict)
    n_errors: int = 0

    def exclude(self, doc: Document, reason: str) -> None:
        if not self.cfg.output.excluded:
            return
        if reason not in self.excluded:
            name = self.base if self.stage == 0 else f"{self.base}_s{self.stage}"
            self.excluded[reason] = SpeakLeashWriter(excluded_dir(self.cfg.output.path, reason), name, add_id=True)
        self.excluded[reason].write(doc)

    def error(self, bad: BadRecord) -> None:
        if self.cfg.strict:
            raise UserError(f"{bad.describe()} (run without --strict to log it and go on)")
        self.n_errors += 1
        if self.errors is not None:
            self.errors.write_record({"file": bad.path, "line": bad.line, "reason": bad.reason, "raw": bad.raw})

    def _side_writers(self) -> list:
        return [*self.excluded.values(), *(w for w in (self.errors, self.signatures) if w is not None)]

    def commit(self) -> list[str]:
        """Make every output final; returns the main outputs' paths."""
        outputs = [str(p) for p in self.main.close()]
        for w in self._side_writers():
            w.close() if isinstance(w, Writer) else w.commit()
        return outputs

    def abort(self) -> None:
        for w in [self.main, *self._side_writers()]:
            w.abort()


def open_main_writer(cfg: PipelineConfig, base: str) -> Writer:
    out = Path(cfg.output.path)
    fmt = cfg.output.format
    if fmt == "speakleash":
        shard = int(cfg.output.shard_size) if cfg.output.shard_size else None
        return SpeakLeashWriter(out, base, cfg.output.info, shard, add_id=True)
    if fmt == "jsonl":
        return JsonlWriter(out / f"{base}.jsonl.zst")
    from gniazdo.corpus.parquet import ParquetWriter

    return ParquetWriter(out / f"{base}.parquet")


def _source(cfg: PipelineConfig, task: Task, stage: int, sinks: TaskSinks, globals_: list[GlobalFilter],
            drop: Callable[[Document, str], None]) -> Iterator[Document]:
    if stage == 0:
        return open_reader(task.path, cfg.input).read(sinks.error, task.start, task.end)
    prefix = stage_dir(cfg.output.path, stage - 1) / f"{task.index:05d}"
    docs = JsonlReader(prefix.with_suffix(".jsonl.zst")).read()
    return apply_decision(docs, globals_[stage - 1], prefix, drop)


def _dropper(stats: StepStats, sinks: TaskSinks) -> Callable[[Document, str], None]:
    """The ``exclude`` callback of one step: counts the reason in its stats, then writes the document."""

    def drop(doc: Document, reason: str) -> None:
        stats.dropped[reason] += 1
        stats.chars_dropped += len(doc.text)
        sinks.exclude(doc, reason)

    return drop


def run_task(cfg: PipelineConfig, task: Task, n_tasks: int, stage: int,
             progress: ProgressFn | None = None) -> dict[str, Any]:
    """Run one task of one stage to completion and write its marker. Returns the marker's content."""
    segments, globals_ = split_stages(cfg.build_steps())
    last = stage == len(segments) - 1
    base = shard_base(cfg.output.name, task.index, n_tasks)
    sdir = stage_dir(cfg.output.path, stage)
    main = open_main_writer(cfg, base) if last else JsonlWriter(sdir / f"{task.index:05d}.jsonl.zst",
                                                                 compression_level=1)
    errors = JsonlWriter(work_dir(cfg.output.path) / "errors" / f"{task.index:05d}.jsonl") if stage == 0 else None
    signatures = None if last else SignatureWriter(globals_[stage], sdir / f"{task.index:05d}")
    sinks = TaskSinks(cfg, base, stage, main, errors, signatures)
    try:
        meters, docs = _chain(cfg, task, stage, sinks, segments[stage], globals_)
        _drain(docs, sinks, progress)
        outputs = sinks.commit()
    except BaseException:
        sinks.abort()
        raise
    first = meters[0].stats
    first.docs_in = first.docs_out + sinks.n_errors + sum(first.dropped.values())
    first.chars_in = first.chars_out + first.chars_dropped
    marker = {"task": task.to_dict(), "stage": stage, "outputs": outputs, "errors": sinks.n_errors,
              "excluded": sorted(sinks.excluded), "stats": [m.stats.to_dict() for m in meters]}
    write_json_atomic(marker_path(cfg.output.path, stage, task.index), marker)
    return marker


def _chain(cfg: PipelineConfig, task: Task, stage: int, sinks: TaskSinks, steps: list[Step],
           globals_: list[GlobalFilter]) -> tuple[list[Meter], Iterator[Document]]:
    """Source → steps, each wrapped in a Meter; returns the meters and the final document stream."""
    first = StepStats("read" if stage == 0 else globals_[stage - 1].name)
    meter = Meter(first)
    meters = [meter]
    docs = meter.wrap(_source(cfg, task, stage, sinks, globals_, _dropper(first, sinks)))
    for step in steps:
        stats = StepStats(step.name)
        step.exclude = _dropper(stats, sinks)
        meter = Meter(stats, upstream=meter)
        meters.append(meter)
        docs = meter.wrap(step.run(docs))
    return meters, docs


def _drain(docs: Iterator[Document], sinks: TaskSinks, progress: ProgressFn | None) -> None:
    n = 0
    for doc in docs:
        sinks.main.write(doc)
        if sinks.signatures is not None:
            sinks.signatures.add(doc)
        n += 1
        if progress and n % PROGRESS_EVERY == 0:
            progress(PROGRESS_EVERY)
    if progress:
        progress(n % PROGRESS_EVERY)
