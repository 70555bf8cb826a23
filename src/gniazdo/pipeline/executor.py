"""The local executor: plan tasks, run them on N worker processes, resume after a kill, merge the results.

Layout of an output folder::

    out/config.resolved.yaml     the run's resolved config
    out/<name>[_NNNNN].jsonl.zst one output per task (+ .manifest), or shards <..>-NNNNN when shard_size is set
    out/<name>.index.json        corpus-level index of all shards (SpeakLeash output)
    out/stats.json               per-step stats merged over tasks
    out/errors.jsonl             bad input records: file, line, reason, raw
    out/excluded/<reason>/       dropped documents, as SpeakLeash archives
    out/.gniazdo/                work state: the task plan, per-task markers, intermediate stages

Resuming: a task is done when its marker exists; re-running the same command skips it. Outputs of a task
are deterministic, so a task killed midway is simply run again.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import time
from pathlib import Path
from typing import Any, Callable

from gniazdo.config import save_resolved
from gniazdo.corpus.speakleash import write_index
from gniazdo.errors import UserError
from gniazdo.fileio import atomic_open, write_json_atomic
from gniazdo.pipeline.config import PipelineConfig
from gniazdo.pipeline.progress import PipelineProgress
from gniazdo.pipeline.runner import excluded_dir, marker_path, run_task, split_stages, stage_dir
from gniazdo.pipeline.stats import merge_stats
from gniazdo.pipeline.tasks import Task, plan_tasks, work_dir


def run_pipeline(cfg: PipelineConfig, progress: bool = True) -> dict[str, Any]:
    """Run (or resume) a pipeline; returns the merged stats also written to ``out/stats.json``."""
    t0 = time.perf_counter()
    segments, globals_ = split_stages(cfg.build_steps())  # validates every step before any work
    out = Path(cfg.output.path)
    tasks = plan_tasks(cfg.input.paths, cfg.input, int(cfg.input.task_size))
    _check_same_run(cfg, tasks)
    save_resolved(cfg, out)
    _remove_stale_temp_files(out)
    with PipelineProgress(len(tasks) * len(segments), enabled=progress) as bar:
        for stage in range(len(segments)):
            pending = [t for t in tasks if not marker_path(out, stage, t.index).exists()]
            bar.skip(len(tasks) - len(pending))
            _run_stage(cfg, pending, len(tasks), stage, bar)
            if stage < len(globals_):
                sdir = stage_dir(out, stage)
                globals_[stage].decide([sdir / f"{t.index:05d}" for t in tasks], sdir / "decided.json")
    return _finalize(cfg, tasks, len(segments), time.perf_counter() - t0)


def _check_same_run(cfg: PipelineConfig, tasks: list[Task]) -> None:
    """Refuse to resume into a folder that holds a run of another config or other inputs."""
    plan = {"config": cfg.model_dump(mode="json", exclude={"workers", "strict"}),
            "tasks": [t.to_dict() for t in tasks]}
    path = work_dir(cfg.output.path) / "run.json"
    if path.exists():
        if json.loads(path.read_text(encoding="utf-8")) != plan:
            raise UserError(f"{cfg.output.path} holds another run (its config or inputs differ); "
                            f"remove it or choose another output path")
        return
    write_json_atomic(path, plan)


def _remove_stale_temp_files(out: Path) -> None:
    for tmp in out.rglob(".*.tmp*"):
        if tmp.is_file():
            tmp.unlink(missing_ok=True)


def _run_stage(cfg: PipelineConfig, pending: list[Task], n_tasks: int, stage: int,
               bar: PipelineProgress) -> None:
    if not pending:
        return
    if cfg.workers == 1 or len(pending) == 1:
        for task in pending:
            run_task(cfg, task, n_tasks, stage, bar.docs)
            bar.task_done()
        return
    ctx = mp.get_context("spawn")  # fork would copy locks held by threads (progress, pyarrow)
    queue = ctx.Queue()
    with ctx.Pool(min(cfg.workers, len(pending)), initializer=_init_worker, initargs=(queue,)) as pool:
        results = [pool.apply_async(_worker_run, (cfg, task, n_tasks, stage)) for task in pending]
        while results:
            _drain_queue(queue, bar.docs)
            for r in [r for r in results if r.ready()]:
                r.get()  # re-raises a worker's exception here
                results.remove(r)
                bar.task_done()
            time.sleep(0.05)
        _drain_queue(queue, bar.docs)


_QUEUE = None


def _init_worker(queue) -> None:
    global _QUEUE
    _QUEUE = queue


def _worker_run(cfg: PipelineConfig, task: Task, n_tasks: int, stage: int) -> None:
    run_task(cfg, task, n_tasks, stage, _QUEUE.put)


def _drain_queue(queue, advance: Callable[[int], None]) -> None:
    while True:
        try:
            advance(queue.get_nowait())
        except Exception:  # queue.Empty; nothing more to show now
            return


def _finalize(cfg: PipelineConfig, tasks: list[Task], n_stages: int, seconds: float) -> dict[str, Any]:
    out = Path(cfg.output.path)
    markers = [[json.loads(marker_path(out, s, t.index).read_text(encoding="utf-8")) for s in range(n_stages)]
               for t in tasks]
    per_task = [[st for m in ms for st in m["stats"]] for ms in markers]
    outputs = [Path(p) for ms in markers for p in ms[-1]["outputs"]]
    if cfg.output.format == "speakleash":
        write_index(out, cfg.output.name, outputs, cfg.output.info)
    _merge_errors(out, tasks)
    excluded = sorted({r for ms in markers for m in ms for r in m["excluded"]})
    for reason in excluded:
        rdir = excluded_dir(out, reason)
        write_index(rdir, rdir.name, sorted(rdir.glob("*.jsonl.zst")))
    steps = merge_stats(per_task)
    stats = {
        "tasks": len(tasks),
        "documents_in": steps[0]["docs_in"] if steps else 0,
        "documents_out": steps[-1]["docs_out"] if steps else 0,
        "errors": sum(ms[0]["errors"] for ms in markers),
        "steps": steps,
        "outputs": [str(p) for p in outputs],
        "excluded": excluded,
        "seconds": round(seconds, 3),
    }
    write_json_atomic(out / "stats.json", stats)
    return stats


def _merge_errors(out: Path, tasks: list[Task]) -> None:
    with atomic_open(out / "errors.jsonl", "w", encoding="utf-8") as f:
        for t in tasks:
            part = work_dir(out) / "errors" / f"{t.index:05d}.jsonl"
            if part.exists():
                f.write(part.read_text(encoding="utf-8"))
