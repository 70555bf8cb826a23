"""HTML files (one document each) and the HTML-to-text extraction the WARC reader shares."""

from __future__ import annotations

from typing import Iterator

from gniazdo.corpus.base import ErrorHandler, Reader, file_stem, raise_on_error
from gniazdo.document import BadRecord, Document
from gniazdo.fileio import open_binary_stream


def html_to_text(html: str | bytes, url: str | None = None) -> tuple[str | None, dict]:
    """Main text and metadata of a page via trafilatura (boilerplate such as menus and footers removed)."""
    import trafilatura

    text = trafilatura.extract(html, url=url, include_comments=False, include_tables=True,
                               favor_precision=True, deduplicate=False)
    meta: dict = {}
    if text:
        md = trafilatura.extract_metadata(html)
        if md is not None:
            meta = {k: v for k, v in (("title", md.title), ("date", md.date), ("url", md.url or url))
                    if v}
    return text, meta


class HtmlReader(Reader):
    def read(self, on_error: ErrorHandler = raise_on_error, start: int = 0,
             end: int | None = None) -> Iterator[Document]:
        with open_binary_stream(self.path) as f:
            raw = f.read()
        try:
            html = raw.decode("utf-8")
        except UnicodeDecodeError:
            html = raw.decode("cp1250", errors="replace")  # old Polish pages; trafilatura would guess too
        text, meta = html_to_text(html)
        if not text:
            on_error(BadRecord(str(self.path), 0, "no text could be extracted from the HTML"))
            return
        yield Document(file_stem(self.path), text, {"source": self.path.name, **meta})
