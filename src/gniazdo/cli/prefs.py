"""``gniazdo prefs``: preference pairs for DPO / DPOP / IPO / ORPO: prepare them, precompute reference log-probs."""

from __future__ import annotations

import click

from gniazdo.cli.report import console

TRUNCATION = ("drop", "truncate_prompt")  # = gniazdo.prefs.prepare.TRUNCATION (not imported: keeps startup light)


def _prepare_options(f):
    """The options shared by ``prepare`` and ``reference`` (which prepares first)."""
    for option in reversed([
        click.option("--data", multiple=True, required=True, help="Preference JSONL files, globs or folders (repeat)."),
        click.option("--out", required=True, help="Output folder: train/, val/, meta.json."),
        click.option("--max-len", type=int, default=1024, show_default=True, help="Tokens of prompt + answer."),
        click.option("--template", type=click.Choice(["chatml", "mistral"]), default="chatml", show_default=True),
        click.option("--truncation", type=click.Choice(TRUNCATION), default="drop", show_default=True,
                     help="Pairs longer than --max-len: drop them, or cut the prompt from the left."),
        click.option("--val-fraction", type=float, default=0.0, show_default=True),
        click.option("--seed", type=int, default=0, show_default=True),
        click.option("--skip-bad", is_flag=True, help="Skip and count bad records instead of stopping at the first."),
        click.option("--no-progress", is_flag=True),
    ]):
        f = option(f)
    return f


def _summary(meta: dict, out: str) -> None:
    c = meta["counts"]
    console.print(f"{c['kept']:,} of {c['read']:,} pairs kept ({c['truncated_prompt']:,} prompts truncated, "
                  f"{c['dropped_too_long']:,} too long, {c['dropped_prompt_differs']:,} prompts tokenized apart, "
                  f"{c['bad']:,} bad records); train {c['train']:,}, val {c['val']:,} pairs in {out}")


@click.group()
def prefs() -> None:
    """Preference pairs (prompt, chosen, rejected) for DPO / DPOP / IPO / ORPO training.

    \b
    Example:
      gniazdo prefs prepare --tokenizer tok/pl32k --data prefs.jsonl --out prefs/ --val-fraction 0.05
      gniazdo prefs reference --model models/sft --data prefs.jsonl --out prefs/
    """


@prefs.command()
@click.option("--tokenizer", "tokenizer_path", required=True, help="Tokenizer folder (tokenizer.json).")
@_prepare_options
def prepare(tokenizer_path, data, out, max_len, template, truncation, val_fraction, seed, skip_bad,
            no_progress) -> None:
    """Tokenize preference pairs with a chat template: prompt + chosen, prompt + rejected, loss on the answers.

    \b
    Example:
      gniazdo prefs prepare --tokenizer tok/pl32k --data prefs.jsonl --out prefs/ --max-len 2048 \\
          --truncation truncate_prompt --val-fraction 0.05
    """
    from gniazdo.prefs.prepare import prepare_prefs

    meta = prepare_prefs(tokenizer_path, list(data), out, max_len=max_len, template=template,
                         val_fraction=val_fraction, seed=seed, truncation=truncation, strict=not skip_bad,
                         progress=not no_progress)
    _summary(meta, out)


@prefs.command()
@click.option("--model", "model_dir", default=None, help="Reference model folder (HF format, with its tokenizer).")
@click.option("--server", default=None, help="Or: base URL of an OpenAI-compatible server (vLLM...).")
@click.option("--server-model", default=None, help="The model name the server knows (with --server).")
@click.option("--tokenizer", "tokenizer_path", default=None, help="Tokenizer folder (with --server).")
@click.option("--api-key", envvar="OPENAI_API_KEY", default=None, help="Bearer token for --server [$OPENAI_API_KEY].")
@_prepare_options
@click.option("--batch-size", type=int, default=8, show_default=True, help="Sequences per forward pass / request.")
@click.option("--dtype", type=click.Choice(["float32", "bfloat16", "float16"]), default="float32",
              show_default=True, help="Reference weights' dtype (log-softmax is fp32 anyway).")
@click.option("--device", default="cpu", show_default=True)
def reference(model_dir, server, server_model, tokenizer_path, api_key, data, out, max_len, template, truncation,
              val_fraction, seed, skip_bad, no_progress, batch_size, dtype, device) -> None:
    """Prepare the pairs (reusing --out when it holds the same data) and precompute the reference model's
    log-probs of every answer, so preference training needs no reference model in memory.

    \b
    Example:
      gniazdo prefs reference --model models/sft --data prefs.jsonl --out prefs/ --batch-size 16
      gniazdo prefs reference --server http://localhost:8000 --server-model bielik --tokenizer tok/pl32k \\
          --data prefs.jsonl --out prefs/
    """
    from gniazdo.prefs.prepare import prepare_prefs
    from gniazdo.prefs.reference import compute_reference, compute_reference_from_server

    if (model_dir is None) == (server is None):
        raise click.UsageError("give either --model or --server")
    if server is not None and (server_model is None or tokenizer_path is None):
        raise click.UsageError("--server needs --server-model and --tokenizer")
    meta = prepare_prefs(tokenizer_path or model_dir, list(data), out, max_len=max_len, template=template,
                         val_fraction=val_fraction, seed=seed, truncation=truncation, strict=not skip_bad,
                         reuse=True, progress=not no_progress)
    _summary(meta, out)
    if server is not None:
        meta = compute_reference_from_server(server, server_model, out, api_key=api_key, batch_size=batch_size,
                                             progress=not no_progress)
    else:
        meta = compute_reference(model_dir, out, batch_size=batch_size, dtype=dtype, device=device,
                                 progress=not no_progress)
    console.print(f"reference log-probs of {meta['counts']['kept']:,} pairs ({meta['reference']['source']} "
                  f"{meta['reference']['model']}) written to {out}/{{train,val}}/ref_logps.npy")
