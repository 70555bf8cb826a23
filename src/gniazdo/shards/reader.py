"""Read token shards: every shard memory-mapped, addressed as one long token stream."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np

from gniazdo.errors import UserError
from gniazdo.shards.format import HEADER_SIZE, SHARD_SUFFIX, Header, read_header


class TokenShards:
    """Shards (a list of files, or a folder and an optional name prefix such as ``"train"``) as one token stream.

    ``window(i, length)`` reads tokens ``[i, i + length)`` of the concatenation, across shard boundaries when
    needed; ``doc_starts`` holds the global start offset of every document (for document-aware masking).
    """

    def __init__(self, paths: str | Path | Iterable[str | Path], prefix: str | None = None) -> None:
        self.paths = _shard_paths(paths, prefix)
        self.headers: list[Header] = [read_header(p) for p in self.paths]
        dtypes = {np.dtype(h.dtype) for h in self.headers}
        self.dtype = max(dtypes, key=lambda d: d.itemsize)
        self._tokens = [np.memmap(p, dtype=h.dtype, mode="r", offset=HEADER_SIZE, shape=(h.n_tokens,))
                        if h.n_tokens else np.zeros(0, h.dtype) for p, h in zip(self.paths, self.headers)]
        sizes = np.array([h.n_tokens for h in self.headers], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(sizes)])  # global start of each shard, and the total
        starts = []
        for p, h, base in zip(self.paths, self.headers, self.offsets[:-1]):
            local = np.fromfile(p, dtype="<u8", count=h.n_docs, offset=h.index_offset).astype(np.int64)
            if local.size and (local[0] != 0 or np.any(np.diff(local) < 0) or local[-1] > h.n_tokens):
                raise UserError(f"{p}: corrupt document index")
            starts.append(local + base)
        self.doc_starts = np.concatenate(starts) if starts else np.zeros(0, np.int64)

    @property
    def n_tokens(self) -> int:
        return int(self.offsets[-1])

    def __len__(self) -> int:
        return self.n_tokens

    @property
    def n_docs(self) -> int:
        return int(self.doc_starts.size)

    def window(self, i: int, length: int) -> np.ndarray:
        """Tokens ``[i, i + length)`` of the whole stream (a copy, in the widest shard dtype)."""
        if length < 0 or i < 0 or i + length > self.n_tokens:
            raise IndexError(f"window [{i}, {i + length}) is outside the {self.n_tokens} tokens")
        out = np.empty(length, dtype=self.dtype)
        pos, filled = i, 0
        shard = int(np.searchsorted(self.offsets, i, side="right")) - 1
        while filled < length:
            local = pos - int(self.offsets[shard])
            take = min(length - filled, int(self.offsets[shard + 1]) - pos)
            out[filled:filled + take] = self._tokens[shard][local:local + take]
            filled += take
            pos += take
            shard += 1
        return out

    def doc_starts_in(self, i: int, length: int) -> np.ndarray:
        """Positions, relative to ``i``, where a document starts inside the window ``[i, i + length)``."""
        lo, hi = np.searchsorted(self.doc_starts, [i, i + length])
        return self.doc_starts[lo:hi] - i

    def document(self, j: int) -> np.ndarray:
        """The tokens of document ``j`` (its ``</s>`` included)."""
        start = int(self.doc_starts[j])
        end = int(self.doc_starts[j + 1]) if j + 1 < self.n_docs else self.n_tokens
        return self.window(start, end - start)


def _shard_paths(paths: str | Path | Iterable[str | Path], prefix: str | None) -> list[Path]:
    if isinstance(paths, (str, Path)) and Path(paths).is_dir():
        pattern = f"{prefix}-*{SHARD_SUFFIX}" if prefix else f"*{SHARD_SUFFIX}"
        found = sorted(Path(paths).glob(pattern))
        if not found:
            raise UserError(f"no token shards ({pattern}) in {paths}")
        return found
    found = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    if not found:
        raise UserError("no token shards given")
    return found
