"""``gniazdo tokenizer``: train, extend and compare tokenizers."""

from __future__ import annotations

import json

import click

from gniazdo.cli.report import console


@click.group()
def tokenizer() -> None:
    """Train a tokenizer on a corpus, extend an existing one for Polish, compare tokenizers.

    \b
    Example:
      gniazdo tokenizer train --corpus out/web --vocab-size 32000 --out tok/pl32k
    """


@tokenizer.command()
@click.option("--corpus", "corpus", multiple=True, required=True, help="Corpus files, globs or folders (repeat).")
@click.option("--vocab-size", type=int, default=32000, show_default=True)
@click.option("--out", required=True, help="Output folder (tokenizer.json, tokenizer_config.json, ...).")
@click.option("--model", type=click.Choice(["bpe", "unigram"]), default="bpe", show_default=True)
@click.option("--digits", type=click.Choice(["whole", "each", "group3"]), default="whole", show_default=True,
              help="Numbers: whole pre-tokens, a token per digit, or groups of up to three digits.")
@click.option("--limit-docs", type=int, default=None, help="Train on at most this many documents.")
def train(corpus, vocab_size, out, model, digits, limit_docs) -> None:
    """Train a byte-level BPE (or Unigram) tokenizer with ChatML special tokens, loadable by transformers.

    \b
    Example:
      gniazdo tokenizer train --corpus out/web --corpus books/ --vocab-size 32000 --out tok/pl32k
    """
    from gniazdo.config import validate
    from gniazdo.tokenizer import TokenizerTrainConfig, train_tokenizer

    cfg = validate(TokenizerTrainConfig, {"corpus": list(corpus), "vocab_size": vocab_size, "out": out,
                                          "model": model, "digits": digits,
                                          "limit_docs": limit_docs})
    path = train_tokenizer(cfg)
    console.print(f"tokenizer written to {path}")


@tokenizer.command()
@click.option("--tokenizer", "tokenizers", multiple=True, required=True,
              help="HF tokenizer folder / tokenizer.json, or a sentencepiece .model (repeat to compare).")
@click.option("--compare", multiple=True, help="More tokenizers to compare (same as repeating --tokenizer).")
@click.option("--corpus", multiple=True, required=True, help="Text to measure on (repeat).")
@click.option("--limit-docs", type=int, default=None)
@click.option("--png", default=None, help="Also write a bar chart of fertility to this PNG.")
def stats(tokenizers, compare, corpus, limit_docs, png) -> None:
    """Fertility (tokens per word), characters per token, single-token words, byte fallback; a markdown table.

    \b
    Example:
      gniazdo tokenizer stats --tokenizer tok/pl32k --compare ../shared/data/tokenizers/bielik-v3-apt4 \\
          --corpus ../shared/data/pl/corpus/books/lalka-tom-pierwszy.txt --png fertility.png
    """
    from gniazdo.tokenizer.stats import markdown_table, plot_fertility, tokenizer_stats

    rows = tokenizer_stats([*tokenizers, *compare], list(corpus), limit_docs)
    click.echo(markdown_table(rows))
    if png:
        plot_fertility(rows, png)
        console.print(f"chart: {png}")


@tokenizer.command()
@click.option("--base", required=True, help="The tokenizer to extend (HF byte-level BPE folder).")
@click.option("--corpus", multiple=True, required=True, help="Corpus to learn new tokens from (repeat).")
@click.option("--add", "add", type=int, required=True, help="How many new tokens to append.")
@click.option("--out", required=True, help="Output folder: tokenizer.json and new_tokens.json.")
@click.option("--limit-docs", type=int, default=None)
def extend(base, corpus, add, out, limit_docs) -> None:
    """Append N tokens learned from a corpus to an existing tokenizer; every old token keeps its id.

    new_tokens.json maps each new token to the old tokens it is made of (to initialise its embedding).

    \b
    Example:
      gniazdo tokenizer extend --base models/base --corpus out/web --add 8000 --out tok/extended
    """
    from gniazdo.corpus import read_documents
    from gniazdo.tokenizer.extend import extend_tokenizer

    texts = [d.text for d in read_documents(list(corpus))]
    report = extend_tokenizer(base, texts, add, out, limit_docs)
    console.print(f"added {report['added']:,} tokens (ids {report['first_new_id']}–{report['last_new_id']}); "
                  f"fertility {report['fertility_before']:.3f} → {report['fertility_after']:.3f}")
    click.echo(json.dumps({k: v for k, v in report.items() if k != "examples"}, ensure_ascii=False))
