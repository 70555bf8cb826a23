"""Plain text files: one document per file, one per blank-line-separated block (``txt_mode: blocks``), or one
per non-empty line (``txt_mode: lines``, e.g. OSCAR / Common Crawl line dumps).

Line endings are normalised to ``\\n`` (Wolne Lektury's books, for one, come with CRLF).
"""

from __future__ import annotations

import re
from typing import Iterator

from gniazdo.corpus.base import ErrorHandler, Reader, file_stem, raise_on_error
from gniazdo.document import BadRecord, Document
from gniazdo.fileio import open_binary_stream

_BLANK_LINES = re.compile(r"\n[ \t]*\n+")


class TextReader(Reader):
    def read(self, on_error: ErrorHandler = raise_on_error, start: int = 0,
             end: int | None = None) -> Iterator[Document]:
        with open_binary_stream(self.path) as f:
            data = f.read()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            line = data[: e.start].count(b"\n") + 1
            on_error(BadRecord(str(self.path), line, f"invalid UTF-8 at byte {e.start}"))
            return
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        stem = file_stem(self.path)
        if self.options.txt_mode == "lines":
            for i, line in enumerate(text.split("\n")):
                if line.strip():
                    yield Document(f"{stem}:{i + 1}", line.strip(), {"source": self.path.name})
            return
        if self.options.txt_mode == "file":
            if text.strip():
                yield Document(stem, text.strip("\n"), {"source": self.path.name})
            return
        for i, block in enumerate(b for b in _BLANK_LINES.split(text) if b.strip()):
            yield Document(f"{stem}:{i + 1}", block.strip("\n"), {"source": self.path.name})
