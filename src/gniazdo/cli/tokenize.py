"""``gniazdo tokenize``: a corpus → memory-mappable token shards for training."""

from __future__ import annotations

import click

from gniazdo.cli.report import console


@click.command()
@click.option("--tokenizer", "tokenizer_path", required=True, help="Tokenizer folder (tokenizer.json).")
@click.option("--corpus", multiple=True, required=True, help="Corpus files, globs or folders (repeat).")
@click.option("--out", required=True, help="Output folder: train-*.tok, val-*.tok, meta.json.")
@click.option("--mixture", default=None, help="YAML of weights per source / quality / category.")
@click.option("--val-fraction", type=float, default=0.01, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--shard-tokens", type=int, default=100_000_000, show_default=True, help="Tokens per shard.")
@click.option("--workers", type=int, default=1, show_default=True, help="Processes (one input file per task).")
def tokenize(tokenizer_path, corpus, out, mixture, val_fraction, seed, shard_tokens, workers) -> None:
    """Tokenize a corpus into binary shards (</s> between documents, a document index, meta.json).

    Re-running the same command after a kill resumes: finished input files are skipped.

    \b
    Example:
      gniazdo tokenize --tokenizer tok/pl32k --corpus out/web --out shards/web --mixture mix.yaml
    """
    from gniazdo.shards import tokenize_corpus

    meta = tokenize_corpus(tokenizer_path, list(corpus), out, mixture=mixture, val_fraction=val_fraction,
                           seed=seed, shard_tokens=shard_tokens, workers=workers)
    n = sum(len(v) for v in meta["shards"].values())
    tokens = meta["tokens"]["after_mixture"]
    console.print(f"{n} shards in {out}: {tokens['train']['tokens']:,} train and {tokens['val']['tokens']:,} val "
                  f"tokens; {out}/meta.json has tokens per source, quality and category")
