"""Reader and writer interfaces shared by every corpus format."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Callable, Iterator, Literal

from gniazdo.config import Config
from gniazdo.document import BadRecord, Document
from gniazdo.fileio import CommitOnExit

ErrorHandler = Callable[[BadRecord], None]

FORMATS = ("speakleash", "jsonl", "txt", "parquet", "warc", "html")


class ReaderOptions(Config):
    """How to turn a source's records into Documents."""

    format: Literal["auto", "speakleash", "jsonl", "txt", "parquet", "warc", "html"] = "auto"
    text_field: str = "text"
    id_field: str = "id"
    txt_mode: Literal["file", "blocks", "lines"] = "file"  # .txt: a document per file, blank-line block, or line


def raise_on_error(bad: BadRecord) -> None:
    from gniazdo.errors import UserError

    raise UserError(bad.describe())


class Reader(ABC):
    """Streams Documents from one file. Bad records go to ``on_error``; reading then goes on."""

    #: whether :meth:`read` honours a byte range (plain line-based files only)
    splittable = False

    def __init__(self, path: str | Path, options: ReaderOptions | None = None) -> None:
        self.path = Path(path)
        self.options = options or ReaderOptions()

    @abstractmethod
    def read(self, on_error: ErrorHandler = raise_on_error, start: int = 0,
             end: int | None = None) -> Iterator[Document]:
        """Yield the file's Documents (those whose line starts in [start, end) when splittable)."""


class Writer(CommitOnExit, ABC):
    """Writes Documents to temp files; :meth:`close` makes them final (atomically), :meth:`abort` drops them."""

    @abstractmethod
    def write(self, doc: Document) -> None: ...

    @abstractmethod
    def close(self) -> list[Path]:
        """Finish, rename temp files to their final names, return the final paths."""

    @abstractmethod
    def abort(self) -> None: ...



def file_stem(path: Path) -> str:
    """``dir/name.jsonl.zst`` → ``name``: the stem used for generated ids and archive names."""
    name = path.name
    for suffix in (".zst", ".gz"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return name.rsplit(".", 1)[0] if "." in name else name
