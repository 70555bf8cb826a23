"""Parquet in and out. Written files have columns ``id``, ``text`` and ``meta`` (a JSON string, since meta
differs between documents); read files may have any columns: the text field, the id field, a ``meta``
column (JSON string or struct), and every other column goes into meta."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterator

from gniazdo.corpus.base import ErrorHandler, Reader, Writer, file_stem, raise_on_error
from gniazdo.document import BadRecord, Document


class ParquetReader(Reader):
    def read(self, on_error: ErrorHandler = raise_on_error, start: int = 0,
             end: int | None = None) -> Iterator[Document]:
        import pyarrow.parquet as pq

        opts = self.options
        try:
            pf = pq.ParquetFile(self.path)
        except Exception as e:  # pyarrow raises several types for a file that is not Parquet
            on_error(BadRecord(str(self.path), 0, f"not a readable Parquet file ({e})"))
            return
        if opts.text_field not in pf.schema_arrow.names:
            on_error(BadRecord(str(self.path), 0, f"no column '{opts.text_field}' "
                                                  f"(columns: {', '.join(pf.schema_arrow.names)})"))
            return
        stem, row = file_stem(self.path), 0
        for batch in pf.iter_batches(batch_size=1024):
            for rec in batch.to_pylist():
                row += 1
                doc = self._to_document(rec, row, stem, on_error)
                if doc is not None:
                    yield doc

    def _to_document(self, rec: dict, row: int, stem: str, on_error: ErrorHandler) -> Document | None:
        opts = self.options
        text = rec.pop(opts.text_field, None)
        if not isinstance(text, str):
            on_error(BadRecord(str(self.path), row, f"text field '{opts.text_field}' missing or not a string",
                               json.dumps(rec, ensure_ascii=False, default=str)))
            return None
        meta = rec.pop("meta", None)
        if isinstance(meta, str):
            meta = json.loads(meta)
        meta = dict(meta or {})
        doc_id = rec.pop(opts.id_field, None)
        for k, v in rec.items():
            meta.setdefault(k, v)
        return Document(str(doc_id) if doc_id is not None else f"{stem}:{row}", text, meta)


class ParquetWriter(Writer):
    def __init__(self, path: str | Path, row_group_size: int = 2048) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        self.row_group_size = row_group_size
        self._rows: dict[str, list] = {"id": [], "text": [], "meta": []}
        self._writer = None

    def write(self, doc: Document) -> None:
        self._rows["id"].append(doc.id)
        self._rows["text"].append(doc.text)
        self._rows["meta"].append(json.dumps(doc.meta, ensure_ascii=False))
        if len(self._rows["id"]) >= self.row_group_size:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table({k: pa.array(v, pa.string()) for k, v in self._rows.items()})
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.tmp, table.schema, compression="zstd")
        self._writer.write_table(table)
        self._rows = {k: [] for k in self._rows}

    def close(self) -> list[Path]:
        if self._rows["id"] or self._writer is None:
            self._flush()
        self._writer.close()
        os.replace(self.tmp, self.path)
        return [self.path]

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self.tmp.unlink(missing_ok=True)
