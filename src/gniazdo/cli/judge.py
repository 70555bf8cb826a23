"""``gniazdo judge``: benchmarks graded by a judge model (MT-Bench-PL) or against references (EQ-Bench-PL)."""

from __future__ import annotations

import click

from gniazdo.cli.report import console


def _http_options(f):
    for option in reversed([
        click.option("--concurrency", type=int, default=4, show_default=True, help="Requests in flight."),
        click.option("--retries", type=int, default=4, show_default=True,
                     help="Retries of a request on 429 / 5xx / connection errors (exponential backoff)."),
        click.option("--timeout", type=float, default=300.0, show_default=True, help="Seconds per request."),
        click.option("--cache", default=None, help="SQLite cache of answers [default: OUT/cache.sqlite]."),
        click.option("--no-progress", is_flag=True),
    ]):
        f = option(f)
    return f


@click.group()
def judge() -> None:
    """LLM-as-a-judge benchmarks against OpenAI-compatible endpoints (vLLM, llama.cpp server, OpenAI...).

    \b
    Example:
      gniazdo judge mt-bench --answers-from http://localhost:8000 --model bielik \\
          --judge http://judge:8000 --judge-model Qwen2.5-72B-Instruct --out results/mt-bench
      gniazdo judge eq-bench --items eq_bench_v2_questions_171_pl.json --endpoint http://localhost:8000 \\
          --model bielik --out results/eq-bench
    """


@judge.command("mt-bench")
@click.option("--questions", default=None,
              help="question.jsonl (FastChat / MT-Bench-PL format) [default: the 16 built-in Polish questions].")
@click.option("--answers-from", "answers_from", multiple=True, required=True,
              help="A model_answer/ folder, one <model>.jsonl, or an OpenAI-compatible URL to generate (repeat).")
@click.option("--model", "models", multiple=True,
              help="Model name served at each URL of --answers-from, in order (repeat).")
@click.option("--judge", "judge_url", required=True, help="The judge's OpenAI-compatible base URL.")
@click.option("--judge-model", default=None, help="The judge's model name (omitted from requests if not given).")
@click.option("--mode", type=click.Choice(["single", "pairwise"]), default="single", show_default=True,
              help="Grade each answer 1-10, or compare every pair of models (twice, positions swapped).")
@click.option("--out", required=True, help="Output folder: judgments.jsonl, scores.json/.md, radar.png.")
@click.option("--references", default=None, help="Reference answers (FastChat reference_answer/*.jsonl).")
@click.option("--judge-prompts", default=None, help="Judge prompts (FastChat judge_prompts.jsonl) replacing ours.")
@click.option("--api-key", envvar="OPENAI_API_KEY", default=None,
              help="Bearer token for answer URLs [$OPENAI_API_KEY].")
@click.option("--judge-api-key", envvar="GNIAZDO_JUDGE_API_KEY", default=None,
              help="Bearer token for the judge [$GNIAZDO_JUDGE_API_KEY, else the --api-key].")
@click.option("--answer-max-tokens", type=int, default=1024, show_default=True)
@click.option("--judge-max-tokens", type=int, default=2048, show_default=True)
@_http_options
def mt_bench(questions, answers_from, models, judge_url, judge_model, mode, out, references, judge_prompts, api_key,
             judge_api_key, answer_max_tokens, judge_max_tokens, concurrency, retries, timeout, cache,
             no_progress) -> None:
    """MT-Bench: two-turn questions in 8 categories, answers graded by a judge model (Polish prompts).

    Answers come from FastChat answer files or are generated now (per-category temperatures) and saved to
    OUT/model_answer/. Single mode grades each turn 1-10 (one Polish re-ask when no [[rating]] parses);
    pairwise mode judges every pair twice with the answers swapped, a disagreement counting as a tie. Every
    request is cached: re-running the command asks nothing again.

    \b
    Example:
      gniazdo judge mt-bench --answers-from data/mt_bench/model_answer --judge http://judge:8000 \\
          --judge-model gpt-4o --out results/mt-bench
      gniazdo judge mt-bench --questions mt_bench_pl/question.jsonl --answers-from http://localhost:8000 \\
          --model bielik --answers-from http://localhost:8001 --model pllum --mode pairwise \\
          --judge http://judge:8000 --out results/mt-pair
    """
    from gniazdo.config import validate
    from gniazdo.eval.judge.charts import markdown_table
    from gniazdo.eval.judge.mtbench import MTBenchConfig, run_mt_bench

    data = dict(answers_from=list(answers_from), models=list(models), judge=judge_url, judge_model=judge_model,
                mode=mode, out=out, references=references, judge_prompts=judge_prompts, cache=cache,
                answer_max_tokens=answer_max_tokens, judge_max_tokens=judge_max_tokens, concurrency=concurrency,
                retries=retries, timeout=timeout)
    if questions:
        data["questions"] = questions
    cfg = validate(MTBenchConfig, data)
    summary = run_mt_bench(cfg, api_key=api_key, judge_api_key=judge_api_key or api_key, progress=not no_progress)
    console.print(markdown_table(summary), markup=False)
    console.print(f"{summary['judge_calls']} judge requests (the rest from the cache); results in {out}/ "
                  f"(scores.json, scores.md, radar.png, judgments.jsonl)")


@judge.command("eq-bench")
@click.option("--items", required=True, help="EQ-Bench(-PL) questions: EQ-Bench's JSON or JSONL.")
@click.option("--answers", default=None, help="JSONL of answers already generated ({\"id\", \"answer\"}).")
@click.option("--endpoint", default=None, help="Or: an OpenAI-compatible URL to generate the answers now.")
@click.option("--model", default=None, help="Model name at --endpoint.")
@click.option("--out", required=True, help="Output folder: scores.jsonl, summary.json (answers.jsonl).")
@click.option("--api-key", envvar="OPENAI_API_KEY", default=None,
              help="Bearer token for --endpoint [$OPENAI_API_KEY].")
@click.option("--max-tokens", type=int, default=1024, show_default=True)
@_http_options
def eq_bench(items, answers, endpoint, model, out, api_key, max_tokens, concurrency, retries, timeout, cache,
             no_progress) -> None:
    """EQ-Bench: rate four emotions of a dialogue's character 0-10, first pass and revised, scored against
    the reference (EQ-Bench v2 formula; an answer without all four emotions scores 0 and is counted).

    \b
    Example:
      gniazdo judge eq-bench --items eq_bench_v2_questions_171_pl.json --answers answers.jsonl --out results/eq
      gniazdo judge eq-bench --items eq_pl.json --endpoint http://localhost:8000 --model bielik --out results/eq
    """
    from gniazdo.config import validate
    from gniazdo.eval.judge.eqbench import EQBenchConfig, run_eq_bench

    if (answers is None) == (endpoint is None):
        raise click.UsageError("give either --answers or --endpoint")
    cfg = validate(EQBenchConfig, dict(items=items, answers=answers, endpoint=endpoint, model=model, out=out,
                                       cache=cache, max_tokens=max_tokens, concurrency=concurrency,
                                       retries=retries, timeout=timeout))
    s = run_eq_bench(cfg, api_key=api_key, progress=not no_progress)
    console.print(f"EQ-Bench over {s['items']} items: first pass {s['first_pass']:.2f} "
                  f"({s['first_pass_unparsed']} unparsed), revised {s['revised']:.2f} ({s['revised_unparsed']} "
                  f"unparsed), average {s['average']:.2f}; results in {out}/", markup=False)
