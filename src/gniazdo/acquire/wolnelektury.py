"""Wolne Lektury (https://wolnelektury.pl): the public API's plain-text books → one SpeakLeash archive.

The API: ``<api>/books/`` lists every book (``slug``, ``title``, ``author``, ``href``...; a JSON list, or a
page ``{"results": [...], "next": url}`` which is followed); ``<api>/books/<slug>/`` describes one book
(``title``, ``url``, ``authors: [{name}]``, ``txt``: the plain-text file, empty for a book that is only a
collection of its children, which are listed as books of their own). The API has no licence field today; a
``license`` the API gives is used as is, otherwise the licence is read from the text's footer.

A ``.txt`` book is ``<header>`` + ``<text>`` + a footer. What :func:`clean_text` removes:

* the footer: from the **last** line that is exactly ``-----`` to the end (the "Ta lektura, podobnie jak
  tysiące innych..." note, licence, source edition, editors, funders, ISBN); a ``-----`` line that is not
  followed by such a note (a scene break inside the book) is left alone;
* the header: the title block (author line, title, subtitle, parent work, ``tłum. ...`` translators,
  ``ISBN ...``) — up to and including the ``ISBN`` line when one is among the first 12 non-blank lines
  before the first run of two or more blank lines; without an ISBN line, everything before that run, but
  only when it is short (at most 12 non-blank lines) and contains the book's title or an author's name.
  Otherwise nothing is removed, so body text is never cut by a guess;
* CRLF / CR line ends become LF, a byte-order mark goes, and blank lines at both ends are trimmed.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any, Iterable, Iterator
from urllib.parse import urljoin

from gniazdo.acquire.download import Downloader, HTTPStatusError, PullResult, prepare_out
from gniazdo.corpus.speakleash import DatasetInfo, SpeakLeashWriter, Source
from gniazdo.document import Document
from gniazdo.errors import UserError

DEFAULT_API_URL = "https://wolnelektury.pl/api/"
NAME = "wolnelektury"
PUBLIC_DOMAIN = "public domain"
MAX_HEADER_LINES = 12

_FOOTER_MARKERS = ("wolnelektury", "wolne lektury", "licencji", "domenie publicznej")
_LICENSED = re.compile(r"udostępniony na licencji\s+(.+?)\s*(?::|\()\s*(https?://[^\s)]+)", re.S)
_SLUG = re.compile(r"[\w.-]+")
_ISBN = re.compile(r"ISBN(?:[\s:-]|$)", re.I)


def _norm(s: str) -> str:
    return " ".join(s.split()).casefold()


def split_footer(text: str) -> tuple[str, str]:
    """(body, footer): the footer starts at the last ``-----`` line when what follows is the WL note."""
    lines = text.split("\n")
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].strip() == "-----":
            footer = "\n".join(lines[i + 1:])
            if any(m in footer.casefold() for m in _FOOTER_MARKERS):
                return "\n".join(lines[:i]), footer
            break
    return text, ""


def strip_header(text: str, title: str = "", authors: Iterable[str] = ()) -> tuple[str, list[str]]:
    """Remove the title block (see the module docstring); return (text, the header lines removed)."""
    lines = text.split("\n")
    start = 0
    while start < len(lines) and not lines[start].strip():
        start += 1
    end = None  # the first run of two or more blank lines
    for i in range(start, min(len(lines) - 1, start + 3 * MAX_HEADER_LINES)):
        if not lines[i].strip() and not lines[i + 1].strip():
            end = i
            break
    block = [i for i in range(start, end if end is not None else len(lines)) if lines[i].strip()]
    block = block[:MAX_HEADER_LINES + 1]
    isbn = next((i for i in block[:MAX_HEADER_LINES] if _ISBN.match(lines[i].strip())), None)
    if isbn is not None:  # the ISBN line is the header's last line whenever there is one
        end = isbn + 1
    elif end is None or not block or len(block) > MAX_HEADER_LINES:
        return text, []
    header = [line.strip() for line in lines[start:end] if line.strip()]
    if isbn is None:
        joined = _norm(" ".join(header))
        names = [_norm(a) for a in authors if a and a.strip()]
        if not ((title.strip() and _norm(title) in joined) or any(n in joined for n in names)):
            return text, []
    return "\n".join(lines[end:]), header


def footer_license(footer: str) -> str | None:
    """The licence a WL footer states: ``public domain``, ``<name> (<url>)``, or None when it says neither."""
    flat = " ".join(footer.split())
    m = _LICENSED.search(flat)
    if m:
        return f"{m.group(1).strip()} ({m.group(2).rstrip('.')})"
    if "domenie publicznej" in flat.casefold():
        return PUBLIC_DOMAIN
    return None


def clean_text(raw: str, title: str = "", authors: Iterable[str] = ()) -> tuple[str, str | None]:
    """A downloaded ``.txt`` → (the book's text, the licence its footer states or None)."""
    text = raw.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    text, footer = split_footer(text)
    text, _ = strip_header(text, title, authors)
    lines = [line.rstrip() for line in text.split("\n")]
    return "\n".join(lines).strip("\n"), footer_license(footer) if footer else None


def _slug_of(item: dict[str, Any]) -> str | None:
    slug = item.get("slug") or str(item.get("href") or "").rstrip("/").rsplit("/", 1)[-1]
    return slug if slug and _SLUG.fullmatch(slug) else None


def list_books(dl: Downloader, api_url: str, cache: Path) -> Iterator[dict[str, Any]]:
    """Every entry of ``<api>/books/`` (following ``next`` when the API pages its answer)."""
    url: str | None = urljoin(api_url, "books/")
    page = 0
    while url:
        page += 1
        data = dl.fetch_json(url, cache / f"books-{page:04d}.json", label="book list")
        if isinstance(data, list):
            items, url = data, None
        elif isinstance(data, dict) and isinstance(data.get("results"), list):
            items, url = data["results"], data.get("next") or None
        else:
            raise UserError(f"{urljoin(api_url, 'books/')}: unexpected answer (not a list of books)")
        yield from (item for item in items if isinstance(item, dict))


def pull_wolnelektury(out: str | Path, *, books: list[str] | None = None, limit: int | None = None,
                      api_url: str = DEFAULT_API_URL, downloader: Downloader | None = None,
                      keep_downloads: bool = False) -> PullResult:
    """Download Wolne Lektury books (all, or the ``books`` slugs; at most ``limit``) into
    ``<out>/wolnelektury.jsonl.zst`` + manifest (+ ``pull.resolved.yaml``). Downloads are kept under
    ``<out>/.download/wolnelektury`` while the pull runs (a re-run after a failure reuses them) and removed
    when it succeeds. A listed book that answers 403/404/410 is skipped and counted; one named in
    ``books`` is an error."""
    if limit is not None and limit < 1:
        raise UserError(f"--limit must be at least 1 (got {limit})")
    api_url = api_url if api_url.endswith("/") else api_url + "/"
    dl = downloader or Downloader()
    out = prepare_out(out, {"source": "wolnelektury", "api_url": api_url, "books": books, "limit": limit,
                            "keep_downloads": keep_downloads, "retries": dl.retries})
    cache = out / ".download" / NAME
    skipped: dict[str, int] = {}
    licenses: set[str] = set()
    info = DatasetInfo(description="Wolne Lektury: books from wolnelektury.pl, plain text without the "
                                   "title header and the licence footer",
                       sources=[Source(name="Wolne Lektury", url=api_url)])
    writer = SpeakLeashWriter(out, NAME, info)
    written = 0
    try:
        with dl:
            entries = [{"slug": s} for s in books] if books else list(list_books(dl, api_url, cache))
            counter = dl.add_counter("books", min(len(entries), limit or len(entries)))
            for entry in entries:
                if limit is not None and written >= limit:
                    break
                slug = _slug_of(entry)
                if slug is None:
                    skipped["no usable slug"] = skipped.get("no usable slug", 0) + 1
                    continue
                try:
                    doc, why = _pull_book(dl, api_url, cache, slug, entry)
                except HTTPStatusError as e:
                    if books or e.status not in (403, 404, 410):
                        raise  # a book asked for by name must be there
                    doc, why = None, f"listed but not downloadable (HTTP {e.status})"
                if doc is None:
                    skipped[why] = skipped.get(why, 0) + 1
                    continue
                writer.write(doc)
                licenses.add(doc.meta["license"])
                written += 1
                dl.progress.advance(counter)
        info.license = (next(iter(licenses)) if len(licenses) == 1
                        else "mixed: see each document's meta.license" if licenses else "")
        info.sources[0].license = info.license or None
        archive = writer.close()[0]
    except BaseException:
        writer.abort()
        raise
    if not keep_downloads:
        shutil.rmtree(cache, ignore_errors=True)
        _rmdir_if_empty(out / ".download")
    return PullResult(archive=archive, documents=written, skipped=skipped)


def _pull_book(dl: Downloader, api_url: str, cache: Path, slug: str,
               entry: dict[str, Any]) -> tuple[Document | None, str]:
    detail_url = urljoin(api_url, f"books/{slug}/")
    detail = dl.fetch_json(detail_url, cache / "books" / f"{slug}.json", label=slug)
    if not isinstance(detail, dict):
        raise UserError(f"{detail_url}: unexpected answer (not a book)")
    txt = detail.get("txt")
    if not isinstance(txt, str) or not txt.strip():
        return None, "no plain text (a collection, or not yet public)"
    txt_url = urljoin(detail_url, txt.strip())
    path = dl.fetch(txt_url, cache / "txt" / f"{slug}.txt", label=slug)
    raw = path.read_bytes().decode("utf-8", errors="replace")
    title = str(detail.get("title") or entry.get("title") or "")
    authors = [str(a.get("name")) for a in detail.get("authors") or [] if isinstance(a, dict) and a.get("name")]
    if not authors and entry.get("author"):
        authors = [str(entry["author"])]
    text, footer_lic = clean_text(raw, title, authors)
    if not text.strip():
        return None, "empty text"
    api_lic = detail.get("license")
    license_ = str(api_lic) if isinstance(api_lic, str) and api_lic.strip() else footer_lic or "unknown"
    meta = {"slug": slug, "title": title, "author": ", ".join(authors),
            "url": str(detail.get("url") or entry.get("url") or detail_url), "license": license_}
    return Document(f"{NAME}:{slug}", text, meta), ""


def _rmdir_if_empty(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass
