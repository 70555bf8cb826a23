"""WARC files (Common Crawl style, plain or .gz): HTML responses → text via trafilatura."""

from __future__ import annotations

from typing import Iterator

from gniazdo.corpus.base import ErrorHandler, Reader, raise_on_error
from gniazdo.corpus.html import html_to_text
from gniazdo.document import BadRecord, Document


class WarcReader(Reader):
    def read(self, on_error: ErrorHandler = raise_on_error, start: int = 0,
             end: int | None = None) -> Iterator[Document]:
        from warcio.archiveiterator import ArchiveIterator
        from warcio.exceptions import ArchiveLoadFailed

        n = 0
        with open(self.path, "rb") as f:
            try:
                for record in ArchiveIterator(f):
                    if record.rec_type != "response":
                        continue
                    n += 1
                    ctype = record.http_headers.get_header("Content-Type", "") if record.http_headers else ""
                    if "html" not in ctype.lower():
                        continue
                    url = record.rec_headers.get_header("WARC-Target-URI")
                    text, meta = html_to_text(record.content_stream().read(), url=url)
                    if not text:
                        continue  # pages of pure boilerplate are common; not an input error
                    rec_id = record.rec_headers.get_header("WARC-Record-ID") or f"{self.path.name}:{n}"
                    meta = {**meta, "url": url,
                            "warc_date": record.rec_headers.get_header("WARC-Date")}
                    yield Document(rec_id.strip("<>"), text, meta)
            except (ArchiveLoadFailed, OSError, EOFError) as e:
                on_error(BadRecord(str(self.path), n + 1, f"corrupt WARC ({e})"))
