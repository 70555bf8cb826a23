"""``gniazdo eval``: the Open PL LLM Leaderboard tasks through lm-evaluation-harness; import data; compare runs."""

from __future__ import annotations

import click

from gniazdo.cli.report import console
from gniazdo.errors import UserError

SUITE_CHOICES = ["pl-leaderboard", "pl-mc", "pl-gen"]


def _split_tasks(values: tuple[str, ...]) -> list[str] | None:
    tasks = [t.strip() for v in values for t in v.split(",") if t.strip()]
    return tasks or None


@click.group("eval", invoke_without_command=True)
@click.option("--model", default=None, help="Hugging Face model folder (e.g. from 'gniazdo export hf').")
@click.option("--server", default=None, help="Base URL of an OpenAI-compatible server (instead of --model).")
@click.option("--backend", type=click.Choice(["hf", "vllm", "gniazdo"]), default="hf", show_default=True,
              help="For --model: lm-eval's transformers backend, vLLM (GPU), or gniazdo's own model class.")
@click.option("--server-model", default=None, help="For --server: the model name the server serves.")
@click.option("--tokenizer", default=None, help="For --server: the model's tokenizer folder (log-likelihood tasks).")
@click.option("--chat", is_flag=True, help="For --server: chat completions + chat template (generative tasks).")
@click.option("--suite", type=click.Choice(SUITE_CHOICES), default="pl-leaderboard", show_default=True,
              help="All tasks, the multiple-choice (log-likelihood) ones, or the generative ones.")
@click.option("--tasks", "tasks", multiple=True,
              help="Only these tasks (comma-separated or repeated): names from 'gniazdo eval tasks' or data keys "
                   "like 8tags (narrowed to the suite's kind).")
@click.option("--num-fewshot", type=int, default=0, show_default=True,
              help="Few-shot examples (the leaderboard: 0 and 5).")
@click.option("--limit", type=int, default=None, help="Documents per task (a smoke test; not a comparable score).")
@click.option("--batch-size", default="auto", show_default=True, help="A number, or auto (largest that fits).")
@click.option("--dtype", default="auto", show_default=True, help="Weights dtype: auto, bfloat16, float16, float32.")
@click.option("--device", default=None, help="cuda, cuda:1, cpu (default: cuda when available).")
@click.option("--data-dir", default=None, help="Local task data (from 'gniazdo eval import-data') instead of the Hub.")
@click.option("--model-args", default=None, help="Extra lm-eval model arguments, k=v,k2=v2.")
@click.option("--log-samples", is_flag=True, help="Also write every prompt and answer to samples.jsonl.")
@click.option("--out", default=None, help="Output folder: results.json, leaderboard.md, leaderboard.png.")
@click.pass_context
def eval_group(ctx, model, server, backend, server_model, tokenizer, chat, suite, tasks, num_fewshot, limit, batch_size,
         dtype, device, data_dir, model_args, log_samples, out) -> None:
    """Evaluate a model on the Open PL LLM Leaderboard tasks (SpeakLeash's prompts) with lm-evaluation-harness.

    Writes results.json (lm-eval's results, the leaderboard scores, the config), leaderboard.md and
    leaderboard.png to --out. Scores are normalised per task, (score - baseline) / (100 - baseline) * 100, and
    averaged over all, multiple-choice and generative tasks. Data comes from the Hugging Face Hub unless
    --data-dir points to local copies.

    \b
    Example:
      gniazdo eval --model out/tiny-hf --suite pl-mc --limit 20 --out eval/tiny
      gniazdo eval --model speakleash/Bielik-11B-v2.3-Instruct --backend vllm --num-fewshot 5 --out eval/bielik
      gniazdo eval --server http://localhost:8000 --server-model tiny --tokenizer out/tiny-hf --out eval/srv
      gniazdo eval import-data --from ../shared/data/pl/tasks --out data/pl-tasks
      gniazdo eval --model out/tiny-hf --data-dir data/pl-tasks --suite pl-mc --out eval/tiny-local
    """
    if ctx.invoked_subcommand is not None:
        return
    if not (model or server):
        if out is None and not tasks and limit is None:  # bare `gniazdo eval`: show what it does
            click.echo(ctx.get_help())
            return
        raise UserError("give --model DIR or --server URL")
    if out is None:
        raise UserError("give --out DIR for the results")
    from gniazdo.config import validate
    from gniazdo.eval.report import leaderboard_table
    from gniazdo.eval.runner import EvalConfig, run_eval

    cfg = validate(EvalConfig, {
        "model": model, "server": server, "backend": backend, "server_model": server_model, "tokenizer": tokenizer,
        "chat": chat, "suite": suite, "tasks": _split_tasks(tasks), "num_fewshot": num_fewshot, "limit": limit,
        "batch_size": str(batch_size), "dtype": dtype, "device": device, "data_dir": data_dir,
        "model_args": model_args, "log_samples": log_samples, "out": out})
    results = run_eval(cfg)
    if results:
        console.print(leaderboard_table(results["leaderboard"], title=f"Open PL LLM Leaderboard: {out}"))
        console.print(f"results: {out}/results.json, {out}/leaderboard.md, {out}/leaderboard.png")


@eval_group.command("import-data")
@click.option("--from", "src", required=True, help="The shared task folder (klej/, 8tags/, ppc/, poquad/).")
@click.option("--out", required=True, help="Output folder: <key>/{train,test}.jsonl per data set.")
@click.option("--only", multiple=True, help="Only these data sets (e.g. dyk; repeat).")
def import_data_command(src, out, only) -> None:
    """Convert local KLEJ / 8TAGS / PPC / PoQuAD files into the tasks' schema, for 'gniazdo eval --data-dir'.

    Where no labelled test set is public (DYK, PSC, CBD, PoQuAD) part of the available data is held out as
    test; such scores compare our runs with each other, not with the published leaderboard.

    \b
    Example:
      gniazdo eval import-data --from ../shared/data/pl/tasks --out data/pl-tasks
    """
    from rich.table import Table

    from gniazdo.eval.import_data import import_data

    counts = import_data(src, out, list(only) or None)
    table = Table(title=f"task data written to {out}", title_justify="left")
    for col in ("data set", "train", "test"):
        table.add_column(col, justify="left" if col == "data set" else "right")
    for key, splits in counts.items():
        table.add_row(key, f"{splits.get('train', 0):,}", f"{splits.get('test', 0):,}")
    console.print(table)


@eval_group.command("compare")
@click.argument("runs", nargs=-1, required=True)
@click.option("--out", default=None, help="Also write compare.md and compare.png to this folder.")
def compare_command(runs, out) -> None:
    """Put 'gniazdo eval' runs side by side: normalised score per task and the averages.

    \b
    Example:
      gniazdo eval compare eval/tiny eval/bielik --out eval/compare
    """
    from gniazdo.eval.report import compare

    click.echo(compare(list(runs), out))


@eval_group.command("tasks")
def tasks_command() -> None:
    """List the tasks: kind, leaderboard metric, baseline, Hub dataset and local data key.

    \b
    Example:
      gniazdo eval tasks
    """
    from rich.table import Table

    from gniazdo.eval.scores import TASKS, known_baseline

    table = Table(title="Open PL LLM Leaderboard tasks", title_justify="left")
    for col in ("task", "kind", "metric", "baseline", "data key"):
        table.add_column(col)
    for name, spec in TASKS.items():
        b = known_baseline(name)
        table.add_row(name, spec.kind, spec.metric.split(",")[0], "from data" if b is None else f"{b:.1f}",
                      spec.key)
    console.print(table)
