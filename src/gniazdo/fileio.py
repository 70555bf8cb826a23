"""Small file helpers shared by every stage: atomic writes and compressed-text opening."""

from __future__ import annotations

import gzip
import io
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterator

import zstandard


def tmp_path_for(path: Path) -> Path:
    """A temp name next to ``path`` (same filesystem, so the final rename is atomic)."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


@contextmanager
def atomic_open(path: str | Path, mode: str = "wb", **kwargs: Any) -> Iterator[IO]:
    """Open a temp file next to ``path``; rename it over ``path`` only if the block finishes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o644)  # mkstemp makes 0600; outputs are meant to be shared like any written file
    try:
        with open(tmp, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: str | Path, obj: Any) -> None:
    with atomic_open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=2)
        f.write("\n")


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_open(path, "w", encoding="utf-8") as f:
        f.write(text)


class TruncatedStream(EOFError):
    """A compressed file ended in the middle of a frame (a download or a write cut short)."""


def _zstd_chunks(raw: IO[bytes], chunk_size: int = 1 << 16) -> Iterator[bytes]:
    """Decompress a zstd file frame by frame; unlike ``stream_reader`` this notices a truncated last frame."""
    dctx = zstandard.ZstdDecompressor()
    dobj, pending = dctx.decompressobj(), False
    while chunk := raw.read(chunk_size):
        while chunk:
            pending = True
            out = dobj.decompress(chunk)
            if out:
                yield out
            if dobj.eof:  # frame complete; concatenated frames continue in unused_data
                chunk, dobj, pending = dobj.unused_data, dctx.decompressobj(), False
            else:
                chunk = b""
    if pending:
        raise TruncatedStream("zstd stream ends in the middle of a frame")


class _ChunkStream(io.RawIOBase):
    """A read-only file object over an iterator of byte chunks."""

    def __init__(self, raw: IO[bytes], chunks: Iterator[bytes]) -> None:
        self._raw = raw
        self._chunks = chunks
        self._buf = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        while not len(self._buf):
            try:
                self._buf = memoryview(next(self._chunks))
            except StopIteration:
                return 0
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n

    def close(self) -> None:
        self._raw.close()
        super().close()


def iter_lines(path: str | Path) -> Iterator[bytes]:
    """Every line of a (possibly .zst/.gz compressed) file as bytes. Lines of plain and .gz files keep their
    newline; lines of .zst files don't (they are split from whole decompressed chunks, which is what makes this
    fast). A truncated .zst raises :class:`TruncatedStream`."""
    path = str(path)
    if not path.endswith(".zst"):
        with open_binary_stream(path) as f:
            yield from f
        return
    with open(path, "rb") as raw:
        tail = b""
        for chunk in _zstd_chunks(raw):
            lines = chunk.split(b"\n")
            if len(lines) == 1:
                tail += chunk
                continue
            lines[0] = tail + lines[0]
            tail = lines.pop()
            yield from lines
        if tail:
            yield tail


def open_binary_stream(path: str | Path) -> IO[bytes]:
    """Open a file for reading bytes, transparently decompressing .zst and .gz.

    A truncated .zst raises :class:`TruncatedStream` (an ``EOFError``) at its end, as gzip does.
    """
    path = str(path)
    raw = open(path, "rb")
    if path.endswith(".zst"):
        return io.BufferedReader(_ChunkStream(raw, _zstd_chunks(raw)), buffer_size=1 << 20)
    if path.endswith(".gz"):
        return gzip.GzipFile(fileobj=raw, mode="rb")
    return raw


class CommitOnExit:
    """``with`` support for writers of temp files: ``close()`` (make final) on success, ``abort()`` on error."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
