"""Spichlerz, the corpus store: every format gniazdo reads and writes, behind one reader/writer interface.

    from gniazdo.corpus import read_documents, open_writer
    for doc in read_documents(["archive.jsonl.zst"]): ...
"""

from __future__ import annotations

import glob
import json
from pathlib import Path
from typing import Iterable, Iterator

from gniazdo.corpus.base import FORMATS, ErrorHandler, Reader, ReaderOptions, Writer, file_stem, raise_on_error
from gniazdo.corpus.speakleash import (ARCHIVE_SUFFIX, INDEX_SUFFIX, DatasetInfo, SpeakLeashWriter, manifest_path,
                                       read_manifest)
from gniazdo.document import Document
from gniazdo.errors import UserError

_SUFFIXES = {
    "jsonl": (".jsonl", ".jsonl.gz", ".jsonl.zst", ".ndjson", ".json.gz"),
    "txt": (".txt", ".txt.gz", ".txt.zst"),
    "parquet": (".parquet",),
    "warc": (".warc", ".warc.gz"),
    "html": (".html", ".htm"),
}


def detect_format(path: Path) -> str | None:
    """The format of a file by its name; ``.jsonl.zst`` with a ``.manifest`` beside it is a SpeakLeash archive."""
    name = path.name.lower()
    if name.endswith(ARCHIVE_SUFFIX) and manifest_path(path).exists():
        return "speakleash"
    for fmt, suffixes in _SUFFIXES.items():
        if name.endswith(suffixes):
            return fmt
    return None


def _reader_class(fmt: str) -> type[Reader]:
    if fmt in ("jsonl", "speakleash"):
        from gniazdo.corpus.jsonl import JsonlReader as cls
    elif fmt == "txt":
        from gniazdo.corpus.text import TextReader as cls
    elif fmt == "parquet":
        from gniazdo.corpus.parquet import ParquetReader as cls
    elif fmt == "warc":
        from gniazdo.corpus.warc import WarcReader as cls
    elif fmt == "html":
        from gniazdo.corpus.html import HtmlReader as cls
    else:
        raise UserError(f"unknown format '{fmt}' (valid: {', '.join(FORMATS)})")
    return cls


def open_reader(path: str | Path, options: ReaderOptions | None = None) -> Reader:
    path = Path(path)
    options = options or ReaderOptions()
    fmt = options.format if options.format != "auto" else detect_format(path)
    if fmt is None:
        raise UserError(f"cannot tell the format of {path} from its name; set the format "
                        f"(valid: {', '.join(FORMATS)})")
    return _reader_class(fmt)(path, options)


def expand_inputs(patterns: Iterable[str | Path], explicit_format: bool = False) -> list[Path]:
    """Paths, globs and folders → a sorted list of input files. A pattern that matches nothing is an error."""
    files: list[Path] = []
    for pattern in patterns:
        pattern = str(pattern)
        matches = sorted(glob.glob(pattern, recursive=True)) if glob.has_magic(pattern) else [pattern]
        if not matches or not Path(matches[0]).exists():
            raise UserError(f"input not found: {pattern}")
        for m in map(Path, matches):
            if m.is_dir():
                files.extend(_folder_inputs(m))
            elif m.name.endswith(INDEX_SUFFIX):
                files.extend(_index_shards(m))
            elif explicit_format or detect_format(m) or not glob.has_magic(pattern):
                files.append(m)
    if not files:
        raise UserError(f"no readable input files in: {', '.join(map(str, patterns))}")
    return files


def _index_shards(index: Path) -> list[Path]:
    data = json.loads(index.read_text(encoding="utf-8"))
    return [index.parent / s["archive"] for s in data.get("shards", [])]


def _folder_inputs(folder: Path) -> list[Path]:
    """A corpus folder's files: the shards its index lists (a pipeline output, without excluded/ and
    errors.jsonl), else every readable file below it, hidden ones excepted."""
    indexes = sorted(folder.glob(f"*{INDEX_SUFFIX}"))
    if len(indexes) == 1:
        return _index_shards(indexes[0])
    return [p for p in sorted(folder.rglob("*"))
            if p.is_file() and detect_format(p)
            and not any(part.startswith(".") for part in p.relative_to(folder).parts)]


def read_documents(paths: Iterable[str | Path], options: ReaderOptions | None = None,
                   on_error: ErrorHandler = raise_on_error) -> Iterator[Document]:
    """Stream every Document of every input (files, globs, folders), in order."""
    options = options or ReaderOptions()
    for path in expand_inputs(paths, explicit_format=options.format != "auto"):
        yield from open_reader(path, options).read(on_error)


OUTPUT_FORMATS = ("speakleash", "jsonl", "parquet")


def output_format_for(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith(ARCHIVE_SUFFIX) or "." not in name:
        return "speakleash"
    if name.endswith((".jsonl", ".jsonl.gz", ".ndjson")):
        return "jsonl"
    raise UserError(f"cannot tell the output format of {path}; use an extension .jsonl.zst, .jsonl, "
                    f".jsonl.gz or .parquet, or a folder")


def open_writer(out: str | Path, fmt: str | None = None, *, name: str | None = None,
                shard_size: int | None = None, info: DatasetInfo | None = None, add_id: bool = False) -> Writer:
    """A writer for ``out``: a SpeakLeash archive (``x.jsonl.zst`` or a folder), JSONL or Parquet file."""
    out = Path(out)
    fmt = fmt or output_format_for(out)
    if fmt == "speakleash":
        if out.name.endswith(ARCHIVE_SUFFIX):
            return SpeakLeashWriter(out.parent, name or out.name[: -len(ARCHIVE_SUFFIX)], info, shard_size, add_id)
        return SpeakLeashWriter(out, name or out.name, info, shard_size, add_id)
    if fmt == "jsonl":
        from gniazdo.corpus.jsonl import JsonlWriter

        return JsonlWriter(out if "." in out.name else out / f"{name or out.name}.jsonl.zst")
    if fmt == "parquet":
        from gniazdo.corpus.parquet import ParquetWriter

        return ParquetWriter(out if out.name.endswith(".parquet") else out / f"{name or out.name}.parquet")
    raise UserError(f"unknown output format '{fmt}' (valid: {', '.join(OUTPUT_FORMATS)})")


__all__ = [
    "Document", "Reader", "ReaderOptions", "Writer", "DatasetInfo", "SpeakLeashWriter", "detect_format",
    "open_reader", "expand_inputs", "read_documents", "open_writer", "read_manifest", "file_stem",
    "raise_on_error", "OUTPUT_FORMATS",
]
