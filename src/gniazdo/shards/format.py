"""The token-shard file format: one self-contained file per shard, memory-mappable.

Layout (little-endian)::

    offset 0   header, 64 bytes
                 magic        8 bytes  b"GNZTOK\\0\\0"
                 version      u32      1
                 dtype code   u32      1 = uint16, 2 = uint32 (token ids are never signed)
                 token count  u64
                 doc count    u64
                 reserved     zeros up to byte 64
    offset 64  tokens         token count x itemsize
               padding        zeros up to the next multiple of 8
               doc index      doc count x u64: the start offset of each document within this shard's tokens

The document index lives in the same file (after the tokens, not in a sidecar), so a shard is written and renamed
into place as one unit and can never lose its index. Each document's tokens end with the end-of-sequence id, so
document ``j`` spans ``[start[j], start[j+1])`` (the last one up to the token count), its ``</s>`` included.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gniazdo.errors import UserError

MAGIC = b"GNZTOK\0\0"
VERSION = 1
HEADER_SIZE = 64
SHARD_SUFFIX = ".tok"
_HEAD = struct.Struct("<8sIIQQ")  # magic, version, dtype code, tokens, docs (32 bytes; the rest is reserved)
_DTYPES = {1: np.dtype("<u2"), 2: np.dtype("<u4")}
_CODES = {dt: code for code, dt in _DTYPES.items()}


def dtype_for(vocab_size: int) -> np.dtype:
    """The smallest unsigned dtype that holds every id of a vocabulary: uint16 up to 65,536 ids, else uint32."""
    if vocab_size < 1:
        raise UserError(f"vocabulary size must be positive, got {vocab_size}")
    if vocab_size > 2**32:
        raise UserError(f"vocabulary size {vocab_size} does not fit in uint32 token ids")
    return _DTYPES[1] if vocab_size <= 65_536 else _DTYPES[2]


@dataclass(frozen=True)
class Header:
    dtype: np.dtype
    n_tokens: int
    n_docs: int
    version: int = VERSION

    def pack(self) -> bytes:
        head = _HEAD.pack(MAGIC, self.version, _CODES[np.dtype(self.dtype)], self.n_tokens, self.n_docs)
        return head + b"\0" * (HEADER_SIZE - len(head))

    @property
    def index_offset(self) -> int:
        """Byte offset of the document index: right after the tokens, aligned to 8 bytes."""
        end = HEADER_SIZE + self.n_tokens * np.dtype(self.dtype).itemsize
        return (end + 7) // 8 * 8

    @property
    def file_size(self) -> int:
        return self.index_offset + 8 * self.n_docs


def parse_header(raw: bytes, path: str | Path = "<bytes>") -> Header:
    """Decode and validate the 64 header bytes of ``path``; anything wrong is a one-line UserError."""
    if len(raw) < HEADER_SIZE:
        raise UserError(f"{path}: not a token shard (file shorter than the {HEADER_SIZE}-byte header)")
    magic, version, code, n_tokens, n_docs = _HEAD.unpack_from(raw)
    if magic != MAGIC:
        raise UserError(f"{path}: not a token shard (bad magic {magic!r}, expected {MAGIC!r})")
    if version != VERSION:
        raise UserError(f"{path}: token shard version {version} is not supported (this gniazdo reads {VERSION})")
    if code not in _DTYPES:
        raise UserError(f"{path}: unknown token dtype code {code} (valid: 1 = uint16, 2 = uint32)")
    return Header(_DTYPES[code], n_tokens, n_docs, version)


def read_header(path: str | Path) -> Header:
    """The validated header of a shard file; also checks the file is as long as the header says."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"token shard not found: {path}")
    with open(path, "rb") as f:
        header = parse_header(f.read(HEADER_SIZE), path)
    size = path.stat().st_size
    if size != header.file_size:
        raise UserError(f"{path}: token shard is {size} bytes, its header says {header.file_size} "
                        f"(truncated or corrupt)")
    return header
