"""LLM-as-a-judge benchmarks, Polish first: MT-Bench(-PL) graded by a judge model, and EQ-Bench(-PL) scoring.

    from gniazdo.eval.judge import MTBenchConfig, run_mt_bench, EQBenchConfig, run_eq_bench
    run_mt_bench(MTBenchConfig(answers_from=["answers/"], judge="http://localhost:8000", judge_model="judge",
                               out="results/mt"))
    run_eq_bench(EQBenchConfig(items="eq_bench_pl.json", answers="answers.jsonl", out="results/eq"))

Judge and answering models are any OpenAI-compatible chat endpoints (:class:`ChatClient`): retried with
backoff, every answer cached on disk so a re-run asks nothing twice.
"""

from gniazdo.eval.judge.client import ChatCache, ChatClient
from gniazdo.eval.judge.eqbench import EQBenchConfig, item_score, parse_emotions, run_eq_bench, scaled_difference
from gniazdo.eval.judge.mtbench import (BUILTIN_QUESTIONS, CATEGORIES, TEMPERATURES, MTBenchConfig, load_questions,
                                        run_mt_bench)
from gniazdo.eval.judge.parse import combine_verdicts, parse_rating, parse_verdict

__all__ = ["ChatClient", "ChatCache", "MTBenchConfig", "run_mt_bench", "load_questions", "BUILTIN_QUESTIONS",
           "CATEGORIES", "TEMPERATURES", "parse_rating", "parse_verdict", "combine_verdicts", "EQBenchConfig",
           "run_eq_bench", "scaled_difference", "item_score", "parse_emotions"]
