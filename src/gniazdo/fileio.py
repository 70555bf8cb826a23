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


class _ZstdRaw(io.RawIOBase):
    """Decompresses a zstd file frame by frame and, unlike ``stream_reader``, notices a truncated last frame."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._dctx = zstandard.ZstdDecompressor()
        self._chunks = self._decompressed()
        self._buf = b""

    def _decompressed(self) -> Iterator[bytes]:
        dobj, pending = self._dctx.decompressobj(), False
        while chunk := self._raw.read(1 << 20):
            while chunk:
                pending = True
                out = dobj.decompress(chunk)
                if out:
                    yield out
                if dobj.eof:  # frame complete; concatenated frames continue in unused_data
                    chunk, dobj, pending = dobj.unused_data, self._dctx.decompressobj(), False
                else:
                    chunk = b""
        if pending:
            raise TruncatedStream("zstd stream ends in the middle of a frame")

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        while not self._buf:
            try:
                self._buf = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n

    def close(self) -> None:
        self._raw.close()
        super().close()


def open_binary_stream(path: str | Path) -> IO[bytes]:
    """Open a file for reading bytes, transparently decompressing .zst and .gz.

    A truncated .zst raises :class:`TruncatedStream` (an ``EOFError``) at its end, as gzip does.
    """
    path = str(path)
    raw = open(path, "rb")
    if path.endswith(".zst"):
        return io.BufferedReader(_ZstdRaw(raw), buffer_size=1 << 20)
    if path.endswith(".gz"):
        return gzip.GzipFile(fileobj=raw, mode="rb")
    return raw
