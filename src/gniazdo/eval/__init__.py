"""Evaluation on the Open PL LLM Leaderboard's tasks, through lm-evaluation-harness.

* ``gniazdo.eval.tasks``: the task YAMLs (an lm-eval include path) and a tiny offline sample of each data set.
* :func:`run_eval` / :class:`EvalConfig`: a saved model (``hf``/``vllm``) or a server on a suite of tasks;
  writes results.json, leaderboard.md and leaderboard.png.
* :func:`evaluate_live`: multiple-choice accuracy of the trainer's in-memory model, no checkpoint written.
* :func:`import_data`: the shared KLEJ / 8TAGS / PPC / PoQuAD files -> local JSONL for ``--data-dir``.
* :mod:`~gniazdo.eval.scores`: the leaderboard's baselines and normalisation; :func:`compare` for runs.

Importing this package does not import lm-eval (slow); the functions do, when called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gniazdo.eval.scores import SUITES, TASKS, TaskSpec, leaderboard, normalize

if TYPE_CHECKING:
    from gniazdo.eval.runner import EvalConfig

DEMO_TASKS = ["polemo2-in", "8tags", "dyk", "ppc"]  # quick MC tasks for `gniazdo demo`

__all__ = ["EvalConfig", "run_eval", "evaluate_live", "import_data", "compare", "demo_eval", "TASKS", "SUITES",
           "TaskSpec", "leaderboard", "normalize", "DEMO_TASKS"]


def __getattr__(name: str) -> Any:
    if name in ("EvalConfig", "run_eval"):
        from gniazdo.eval import runner

        return getattr(runner, name)
    if name == "evaluate_live":
        from gniazdo.eval.lm import evaluate_live

        return evaluate_live
    if name == "import_data":
        from gniazdo.eval.import_data import import_data

        return import_data
    if name == "compare":
        from gniazdo.eval.report import compare

        return compare
    raise AttributeError(name)


def demo_eval(model_dir: str, out: str, tasks: list[str] | None = None, limit: int | None = 4,
              data_dir: str | None = None, console: Any = None) -> dict[str, Any]:
    """For ``gniazdo demo``: the demo model (a saved HF folder) on a few MC tasks, offline; prints the table.

    ``data_dir`` None uses the few hand-written documents shipped with gniazdo (``gniazdo/eval/tasks/sample``),
    so it runs anywhere in seconds; the scores of such a run say that the plumbing works, nothing more.
    Returns ``run_eval``'s results dict (its "leaderboard" key holds the scores).
    """
    from gniazdo.eval.runner import EvalConfig, run_eval
    from gniazdo.eval.tasks import SAMPLE_DATA_DIR

    cfg = EvalConfig(model=model_dir, out=out, tasks=list(tasks or DEMO_TASKS), suite="pl-mc", limit=limit,
                     data_dir=str(data_dir or SAMPLE_DATA_DIR), batch_size="8", device="cpu")
    results = run_eval(cfg)
    if console is not None:
        from gniazdo.eval.report import leaderboard_table

        console.print(leaderboard_table(results["leaderboard"], title=f"Open PL LLM Leaderboard (demo, {out})"))
    return results
