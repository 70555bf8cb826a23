"""What the Open PL LLM Leaderboard counts: its tasks, the metric of each column, the baselines, the normalisation.

A raw score means little across tasks with 2 and 8 classes, so the leaderboard rescales each one between the
score of a trivial constant predictor (the baseline b) and 100::

    normalised = (v - b) / (100 - b) * 100          (v and b in percent)

and averages the normalised scores: over all tasks, over the generative ones and over the multiple-choice
ones. A model at the baseline scores 0, below it negative. Pure functions here; ``runner`` feeds them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable, Literal

Kind = Literal["mc", "gen"]


@dataclass(frozen=True)
class TaskSpec:
    name: str  # the lm-eval task name (as in SpeakLeash's harness)
    key: str  # the data set: local folder under --data-dir, and the baseline shared by the mc and gen variants
    kind: Kind  # "mc": log-likelihood over choices; "gen": greedy generation, answer extracted by regex
    metric: str  # lm-eval result key of the leaderboard column, "metric,filter"
    title: str  # for tables
    positive: int | str | None = None  # binary F1 tasks: the gold value of the positive class


ACC, F1, EM, F1_GEN, LEV = "acc,none", "f1,none", "exact_match,score-first", "f1,score-first", "levenshtein,none"

# The leaderboard's tasks in its order. MC columns use acc, except the binary tasks where a constant answer
# already gets a high accuracy: DYK and PSC (and CBD, the same situation) use binary F1 of the "yes" class.
TASKS: dict[str, TaskSpec] = {t.name: t for t in [
    TaskSpec("polemo2_in_multiple_choice", "polemo2-in", "mc", ACC, "PolEmo2 IN"),
    TaskSpec("polemo2_out_multiple_choice", "polemo2-out", "mc", ACC, "PolEmo2 OUT"),
    TaskSpec("polish_8tags_multiple_choice", "8tags", "mc", ACC, "8TAGS"),
    TaskSpec("polish_belebele_mc", "belebele", "mc", ACC, "Belebele"),
    TaskSpec("polish_dyk_multiple_choice", "dyk", "mc", F1, "DYK", positive=1),
    TaskSpec("polish_ppc_multiple_choice", "ppc", "mc", ACC, "PPC"),
    TaskSpec("polish_psc_multiple_choice", "psc", "mc", F1, "PSC", positive=1),
    TaskSpec("polish_cbd_multiple_choice", "cbd", "mc", F1, "CBD", positive=1),
    TaskSpec("polish_klej_ner_multiple_choice", "klej-ner", "mc", ACC, "KLEJ NER"),
    TaskSpec("polish_polqa_reranking_multiple_choice", "polqa", "mc", ACC, "PolQA reranking"),
    TaskSpec("polemo2_in", "polemo2-in", "gen", EM, "PolEmo2 IN"),
    TaskSpec("polemo2_out", "polemo2-out", "gen", EM, "PolEmo2 OUT"),
    TaskSpec("polish_8tags_regex", "8tags", "gen", EM, "8TAGS"),
    TaskSpec("polish_belebele_regex", "belebele", "gen", EM, "Belebele"),
    TaskSpec("polish_dyk_regex", "dyk", "gen", F1_GEN, "DYK", positive="C"),
    TaskSpec("polish_ppc_regex", "ppc", "gen", EM, "PPC"),
    TaskSpec("polish_psc_regex", "psc", "gen", F1_GEN, "PSC", positive="B"),
    TaskSpec("polish_cbd_regex", "cbd", "gen", F1_GEN, "CBD", positive="1"),
    TaskSpec("polish_klej_ner_regex", "klej-ner", "gen", EM, "KLEJ NER"),
    TaskSpec("polish_polqa_closed_book", "polqa", "gen", LEV, "PolQA closed book"),
    TaskSpec("polish_polqa_open_book", "polqa", "gen", LEV, "PolQA open book"),
    TaskSpec("polish_poquad_open_book", "poquad", "gen", LEV, "PoQuAD open book"),
]}

SUITES: dict[str, list[str]] = {
    "pl-leaderboard": list(TASKS),
    "pl-mc": [n for n, t in TASKS.items() if t.kind == "mc"],
    "pl-gen": [n for n, t in TASKS.items() if t.kind == "gen"],
}

# Baselines the leaderboard publishes (percent, test split), shared by a task's mc and gen variants. The
# others are computed from the evaluated data (see baseline_from_labels). Open QA has no constant answer
# that scores, so its baseline is 0.
GIVEN_BASELINES: dict[str, float] = {"polemo2-in": 41.6, "polemo2-out": 36.8, "8tags": 14.3, "dyk": 28.9,
                                     "ppc": 41.9}
OPEN_QA = {"polish_poquad_open_book", "polish_polqa_open_book", "polish_polqa_closed_book"}


def task_spec(name: str) -> TaskSpec:
    if name not in TASKS:
        raise KeyError(name)
    return TASKS[name]


def normalize(value: float, baseline: float) -> float:
    """(v - b) / (100 - b) * 100, both in percent: 0 at the baseline, 100 for a perfect score."""
    if baseline >= 100:
        raise ValueError(f"baseline {baseline} leaves no room above it")
    return (value - baseline) / (100.0 - baseline) * 100.0


def majority_baseline(labels: Iterable[Any]) -> float:
    """Accuracy (percent) of always answering the most frequent gold label."""
    counts = Counter(labels)
    n = sum(counts.values())
    if n == 0:
        raise ValueError("no labels")
    return 100.0 * max(counts.values()) / n


def positive_f1_baseline(labels: Iterable[Any], positive: Any) -> float:
    """Binary F1 (percent) of always answering the positive class: precision p, recall 1, F1 = 2p / (1 + p).

    (Always answering the majority, negative class would give F1 = 0, a useless floor.)
    """
    labels = list(labels)
    if not labels:
        raise ValueError("no labels")
    p = sum(1 for y in labels if y == positive) / len(labels)
    return 100.0 * 2 * p / (1 + p)


def baseline_from_labels(spec: TaskSpec, labels: Iterable[Any]) -> float:
    """The task's baseline from the gold labels of the evaluated split (when the leaderboard gives none)."""
    if spec.name in OPEN_QA:
        return 0.0
    if spec.metric.startswith("f1,"):
        return positive_f1_baseline(labels, spec.positive)
    return majority_baseline(labels)


def known_baseline(name: str) -> float | None:
    """The published baseline of a task, 0 for open QA, None when it must come from the data."""
    if name in OPEN_QA:
        return 0.0
    return GIVEN_BASELINES.get(task_spec(name).key)


def _mean(xs: list[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def leaderboard(results: dict[str, dict[str, Any]], baselines: dict[str, float]) -> dict[str, Any]:
    """Per-task raw score, baseline and normalised score, and the three averages.

    ``results`` is lm-eval's ``results["results"]`` (task -> {"acc,none": 0.41, ...}, fractions);
    ``baselines`` maps task -> b in percent. Tasks we do not know, or without their metric, are left out.
    """
    rows: dict[str, dict[str, Any]] = {}
    for name, spec in TASKS.items():  # the leaderboard's order, not lm-eval's
        metrics = results.get(name)
        if metrics is None or metrics.get(spec.metric) is None or name not in baselines:
            continue
        value = 100.0 * float(metrics[spec.metric])
        b = float(baselines[name])
        rows[name] = {"title": spec.title, "kind": spec.kind, "metric": spec.metric.split(",")[0],
                      "value": value, "baseline": b, "normalized": normalize(value, b)}
        if spec.kind == "mc" and metrics.get("acc_norm,none") is not None:
            rows[name]["acc_norm"] = 100.0 * float(metrics["acc_norm,none"])
    def avg(kind: str | None) -> float | None:
        return _mean([r["normalized"] for r in rows.values() if kind is None or r["kind"] == kind])

    return {"tasks": rows, "average": avg(None), "average_mc": avg("mc"), "average_gen": avg("gen")}
