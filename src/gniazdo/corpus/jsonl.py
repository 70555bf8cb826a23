"""JSON Lines in and out (plain, .gz, .zst). SpeakLeash archives are JSONL.zst, so they read through here too.

A record becomes ``Document(id, text, meta)``: ``text`` from the text field, ``meta`` from a ``meta`` object
when there is one plus every other top-level field (so a scraped page's ``url``, ``title``... are kept),
``id`` from the id field, else ``meta.id``, else ``<file stem>:<line number>`` (stable across runs and splits).
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import IO, Any, Iterable, Iterator

import orjson
import zstandard

from gniazdo.corpus.base import ErrorHandler, Reader, Writer, file_stem, raise_on_error
from gniazdo.document import BadRecord, Document
from gniazdo.fileio import iter_lines


def _count_newlines(f: IO[bytes], upto: int) -> int:
    f.seek(0)
    left, n = upto, 0
    while left > 0:
        chunk = f.read(min(left, 16 << 20))
        if not chunk:
            break
        n += chunk.count(b"\n")
        left -= len(chunk)
    return n


class JsonlReader(Reader):
    """Reads ``.jsonl``, ``.jsonl.gz``, ``.jsonl.zst`` (SpeakLeash archives included)."""

    def __init__(self, path, options=None) -> None:
        super().__init__(path, options)
        self.splittable = not str(self.path).endswith((".gz", ".zst"))
        self.stem = file_stem(self.path)

    def read(self, on_error: ErrorHandler = raise_on_error, start: int = 0,
             end: int | None = None) -> Iterator[Document]:
        path = str(self.path)
        if os.path.getsize(path) == 0:
            on_error(BadRecord(path, 0, "empty file"))
            return
        if start or end is not None:
            yield from self._read_range(on_error, start, end)
            return
        yield from self._read_lines(iter_lines(path), on_error, line_no=0, pos=0, end=None)

    def _read_range(self, on_error: ErrorHandler, start: int, end: int | None) -> Iterator[Document]:
        with open(self.path, "rb") as f:
            pos = 0
            if start:
                # Align to the first line that *starts* at or after ``start``; the previous range owns the rest.
                f.seek(start - 1)
                pos = start - 1 + len(f.readline())
            line_no = _count_newlines(f, pos)
            f.seek(pos)
            yield from self._read_lines(f, on_error, line_no, pos, end)

    def _read_lines(self, f: Iterable[bytes], on_error: ErrorHandler, line_no: int, pos: int,
                    end: int | None) -> Iterator[Document]:
        path = str(self.path)
        try:
            for raw in f:
                if end is not None and pos >= end:
                    return
                pos += len(raw)
                line_no += 1
                doc = self._parse(raw, line_no, on_error)
                if doc is not None:
                    yield doc
        except (zstandard.ZstdError, EOFError, gzip.BadGzipFile, OSError) as e:
            on_error(BadRecord(path, line_no + 1, f"truncated or corrupt compressed stream ({e})"))

    def _parse(self, raw: bytes, line_no: int, on_error: ErrorHandler) -> Document | None:
        try:
            obj = orjson.loads(raw)  # validates UTF-8 too; parses bytes without a decode step
        except orjson.JSONDecodeError as e:
            if not raw.strip():
                return None
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as u:
                on_error(BadRecord(str(self.path), line_no, f"invalid UTF-8 at byte {u.start}",
                                   raw.decode("utf-8", "backslashreplace")))
                return None
            on_error(BadRecord(str(self.path), line_no, f"malformed JSON ({e.msg} at column {e.colno})", line))
            return None
        return self._to_document(obj, line_no, raw, on_error)

    def _to_document(self, obj: Any, line_no: int, raw: bytes, on_error: ErrorHandler) -> Document | None:
        opts = self.options
        if not isinstance(obj, dict):
            on_error(BadRecord(str(self.path), line_no, f"expected a JSON object, got {type(obj).__name__}",
                               raw.decode("utf-8")))
            return None
        text = obj.get(opts.text_field)
        if not isinstance(text, str):
            why = "missing" if text is None else f"not a string ({type(text).__name__})"
            on_error(BadRecord(str(self.path), line_no, f"text field '{opts.text_field}' {why}", raw.decode("utf-8")))
            return None
        del obj[opts.text_field]
        doc_id = obj.pop(opts.id_field, None)
        meta = obj.pop("meta") if isinstance(obj.get("meta"), dict) else {}  # fresh from the parser: no copy
        for key, value in obj.items():
            meta.setdefault(key, value)
        if doc_id is None:
            doc_id = meta.get("id")
        if doc_id is None:
            doc_id = f"{self.stem}:{line_no}"
        return Document(str(doc_id), text, meta)


def document_record(doc: Document) -> dict[str, Any]:
    return {"id": doc.id, "text": doc.text, "meta": doc.meta}


class JsonlWriter(Writer):
    """Writes ``{"id", "text", "meta"}`` lines to one file (compressed by its extension)."""

    def __init__(self, path: str | Path, compression_level: int = 3, compression_threads: int = -1) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        self._raw = open(self.tmp, "wb")
        self._out: IO[bytes]
        if self.path.name.endswith(".zst"):
            # threads >= 1 is zstd's multi-threaded mode; its output is the same whatever the thread count,
            # so archives stay byte-identical between runs on different machines.
            cctx = zstandard.ZstdCompressor(level=compression_level, threads=compression_threads)
            self._out = cctx.stream_writer(self._raw, closefd=False)
        elif self.path.name.endswith(".gz"):
            self._out = gzip.GzipFile(fileobj=self._raw, mode="wb", mtime=0)
        else:
            self._out = self._raw
        self.documents = 0
        self.bytes_written = 0  # uncompressed

    def write(self, doc: Document) -> None:
        self.write_record(document_record(doc))

    def write_record(self, record: dict[str, Any]) -> None:
        line = orjson.dumps(record) + b"\n"
        self._out.write(line)
        self.documents += 1
        self.bytes_written += len(line)

    def close(self) -> list[Path]:
        if self._out is not self._raw:
            self._out.close()
        self._raw.flush()
        os.fsync(self._raw.fileno())
        self._raw.close()
        os.replace(self.tmp, self.path)
        return [self.path]

    def abort(self) -> None:
        try:
            if self._out is not self._raw:
                self._out.close()
            self._raw.close()
        finally:
            self.tmp.unlink(missing_ok=True)
