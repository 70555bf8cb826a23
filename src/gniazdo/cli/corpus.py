"""``gniazdo corpus``: look into and convert corpora (SpeakLeash archives, JSONL, Parquet, text, WARC, HTML)."""

from __future__ import annotations

import json

import click

from gniazdo.cli.report import console, stats_table

_FORMATS = click.Choice(["auto", "speakleash", "jsonl", "txt", "parquet", "warc", "html"])


def reader_options(fmt: str, text_field: str, id_field: str, txt_mode: str):
    from gniazdo.corpus.base import ReaderOptions

    return ReaderOptions(format=fmt, text_field=text_field, id_field=id_field, txt_mode=txt_mode)


def input_options(f):
    f = click.option("--format", "fmt", type=_FORMATS, default="auto", show_default=True,
                     help="Input format (auto: from the file extension).")(f)
    f = click.option("--text-field", default="text", show_default=True, help="JSONL/Parquet text field.")(f)
    f = click.option("--id-field", default="id", show_default=True, help="JSONL/Parquet id field.")(f)
    f = click.option("--txt-mode", type=click.Choice(["file", "blocks", "lines"]), default="file",
                     show_default=True, help=".txt: one document per file, blank-line-separated block, or line.")(f)
    return f


@click.group()
def corpus() -> None:
    """Inspect and convert corpora.

    \b
    Example:
      gniazdo corpus info ../shared/data/pl/corpus/spichlerz/benchmark_sm.jsonl.zst
    """


@corpus.command()
@click.argument("path", type=click.Path())
@input_options
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON instead of tables.")
def info(path: str, fmt: str, text_field: str, id_field: str, txt_mode: str, as_json: bool) -> None:
    """Show the manifest and stats of PATH: an archive, a pipeline output folder, an index, or any input.

    \b
    Example:
      gniazdo corpus info benchmark_sm.jsonl.zst
    """
    from gniazdo.corpus.inspect import corpus_info
    from gniazdo.errors import UserError
    from pathlib import Path

    if not Path(path).exists():
        raise UserError(f"input not found: {path}")
    data = corpus_info(path, reader_options(fmt, text_field, id_field, txt_mode))
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    stats = data.pop("stats", {})
    shards = data.pop("shards", None)
    for key, value in data.items():
        if isinstance(value, (list, dict)):
            value = json.dumps(value, ensure_ascii=False)
        console.print(f"[bold]{key}[/bold]: {value}")
    if shards is not None:
        console.print(f"[bold]shards[/bold]: {len(shards)}")
    console.print(stats_table(stats))


@corpus.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("-n", "n", default=5, show_default=True, help="How many documents.")
@click.option("--seed", default=0, show_default=True, help="Random seed of the sample.")
@click.option("--first", is_flag=True, help="The first N documents instead of a random sample.")
@click.option("--chars", default=600, show_default=True, help="Show at most this many characters of each text.")
@click.option("--jsonl", "as_jsonl", is_flag=True, help="Print whole documents as JSON lines.")
@input_options
def sample(paths, n, seed, first, chars, as_jsonl, fmt, text_field, id_field, txt_mode) -> None:
    """Print N documents of PATHS, sampled uniformly (or the first N).

    \b
    Example:
      gniazdo corpus sample benchmark_sm.jsonl.zst -n 5
    """
    from rich.panel import Panel

    from gniazdo.corpus.inspect import sample_documents
    from gniazdo.corpus.jsonl import document_record

    docs = sample_documents(list(paths), n, seed, first, reader_options(fmt, text_field, id_field, txt_mode))
    for doc in docs:
        if as_jsonl:
            click.echo(json.dumps(document_record(doc), ensure_ascii=False))
            continue
        text = doc.text if len(doc.text) <= chars else doc.text[:chars] + " […]"
        meta = json.dumps(doc.meta, ensure_ascii=False)
        console.print(Panel(text, title=doc.id, subtitle=meta[:200], title_align="left"), markup=False)


@corpus.command()
@click.argument("inputs", nargs=-1, required=True)
@click.argument("out", nargs=1)
@click.option("--to", "to_fmt", type=click.Choice(["speakleash", "jsonl", "parquet"]), default=None,
              help="Output format (default: from OUT: .jsonl.zst/folder → speakleash, .jsonl(.gz), .parquet).")
@click.option("--name", default=None, help="Archive name (default: from OUT).")
@click.option("--shard-size", default=None, help="Split SpeakLeash output into shards of this size, e.g. 100MB.")
@click.option("--add-ids", is_flag=True, help="Store each document's id as meta.id in SpeakLeash output.")
@click.option("--strict", is_flag=True, help="Stop at the first bad record (default: skip it, report the count).")
@input_options
def convert(inputs, out, to_fmt, name, shard_size, add_ids, strict, fmt, text_field, id_field, txt_mode) -> None:
    """Convert INPUTS (any readable format) to OUT, streaming.

    \b
    Examples:
      gniazdo corpus convert benchmark_sm.jsonl.zst bsm.parquet
      gniazdo corpus convert bsm.parquet roundtrip/bsm.jsonl.zst
      gniazdo corpus convert 'books/*.txt' books.jsonl.zst --txt-mode blocks
    """
    from gniazdo.corpus.convert import convert_corpus

    result = convert_corpus(list(inputs), out, to_fmt=to_fmt, name=name, shard_size=shard_size, add_ids=add_ids,
                            strict=strict, options=reader_options(fmt, text_field, id_field, txt_mode))
    console.print(f"wrote {result['documents']:,} documents to {', '.join(result['outputs'])}")
    if result["errors"]:
        console.print(f"[yellow]skipped {result['errors']:,} bad records; first: {result['first_error']}")
