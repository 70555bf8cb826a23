"""``gniazdo data pull``: download raw sources into SpeakLeash archives."""

from __future__ import annotations

import click

from gniazdo.errors import UserError

_out = click.option("--out", "out", required=True, type=click.Path(file_okay=False),
                    help="Output folder (created); the archive, its manifest and pull.resolved.yaml go here.")
_retries = click.option("--retries", type=click.IntRange(min=0), default=5, show_default=True,
                        help="Retries per file after a connection error, a timeout or a 5xx/429 answer.")
_no_progress = click.option("--no-progress", is_flag=True, help="Do not show progress bars.")
_keep = click.option("--keep-downloads", is_flag=True,
                     help="Keep the raw downloads in OUT/.download/ (removed after success by default); "
                          "a later run reuses them instead of downloading again.")


def _downloader(retries: int, no_progress: bool):
    from gniazdo.acquire import Downloader

    return Downloader(retries=retries, progress=not no_progress)


def _report(result) -> None:
    click.echo(f"{result.documents:,} documents → {result.archive} ({result.size:,} bytes)")
    for reason, n in sorted(result.skipped.items()):
        click.echo(f"skipped {n:,}: {reason}")


@click.group()
def pull() -> None:
    """Download raw sources (Wolne Lektury, Hugging Face, SpeakLeash) as SpeakLeash archives.

    Downloads resume: re-running the same command after a failure or Ctrl-C continues where it stopped.

    \b
    Example:
      gniazdo data pull wolnelektury --out data/raw/wolnelektury --limit 20
    """


@pull.command("wolnelektury")
@_out
@click.option("--books", default=None, metavar="SLUG,SLUG",
              help="Only these books (slugs, comma-separated), e.g. pan-tadeusz,lalka-tom-pierwszy.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most N books.")
@click.option("--api-url", default=None, help="Wolne Lektury API root [default: https://wolnelektury.pl/api/].")
@_keep
@_retries
@_no_progress
def wolnelektury(out: str, books: str | None, limit: int | None, api_url: str | None, keep_downloads: bool,
                 retries: int, no_progress: bool) -> None:
    """Download Wolne Lektury books as plain text into OUT/wolnelektury.jsonl.zst.

    One document per book, without the title header (author, title, translator, ISBN) and the licence
    footer (from the last '-----' line); meta: slug, title, author, url, license.

    \b
    Example:
      gniazdo data pull wolnelektury --out data/raw/wolnelektury --books pan-tadeusz,lalka-tom-pierwszy
    """
    from gniazdo.acquire.wolnelektury import DEFAULT_API_URL, pull_wolnelektury

    slugs = [s.strip() for s in books.split(",") if s.strip()] if books else None
    if books is not None and not slugs:
        raise UserError("--books is empty; give slugs separated by commas")
    _report(pull_wolnelektury(out, books=slugs, limit=limit, api_url=api_url or DEFAULT_API_URL,
                              downloader=_downloader(retries, no_progress), keep_downloads=keep_downloads))


@pull.command("hf")
@click.argument("dataset")
@_out
@click.option("--config", "config_name", default=None, help="Dataset configuration (subset) name.")
@click.option("--split", default="train", show_default=True, help="Split to read.")
@click.option("--text-field", default="text", show_default=True, help="The field holding the text.")
@click.option("--data-files", multiple=True,
              help="Data file(s): a path, glob or URL (repeat the option for several); URLs are downloaded "
                   "resumably first.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most N documents.")
@click.option("--name", default=None, help="Archive name [default: from DATASET and --config].")
@_keep
@_retries
@_no_progress
def hf(dataset: str, out: str, config_name: str | None, split: str, text_field: str, data_files: tuple[str, ...],
       limit: int | None, name: str | None, keep_downloads: bool, retries: int, no_progress: bool) -> None:
    """Stream a Hugging Face dataset (streaming=True) into OUT/<name>.jsonl.zst.

    The text field becomes the text; every other field goes to meta.

    \b
    Example:
      gniazdo data pull hf allegro/klej-polemo2-in --split train --limit 1000 --out data/raw/polemo
      gniazdo data pull hf json --data-files https://example.org/pl.jsonl.zst --out data/raw/pl
    """
    from gniazdo.acquire.hf import pull_hf

    _report(pull_hf(dataset, out, config=config_name, split=split, text_field=text_field,
                    data_files=list(data_files), limit=limit, name=name,
                    downloader=_downloader(retries, no_progress), keep_downloads=keep_downloads))


@pull.command("speakleash")
@click.argument("name")
@click.option("--base-url", required=True, help="Where NAME.manifest and NAME.jsonl.zst are published.")
@_out
@_retries
@_no_progress
def speakleash(name: str, base_url: str, out: str, retries: int, no_progress: bool) -> None:
    """Download a SpeakLeash dataset (NAME.manifest + NAME.jsonl.zst) and verify its size.

    The archive must be exactly the manifest's file_size bytes, as the speakleash package requires.

    \b
    Example:
      gniazdo data pull speakleash wolne_lektury_corpus --base-url https://example.org/speakleash --out data/sl
    """
    from gniazdo.acquire.speakleash import pull_speakleash

    _report(pull_speakleash(name, base_url, out, downloader=_downloader(retries, no_progress)))
