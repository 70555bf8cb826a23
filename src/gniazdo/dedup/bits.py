"""Bit tools shared by the experts: a 64-bit mixing bijection and popcount, vectorised over uint64 arrays."""

from __future__ import annotations

import numpy as np

_M1 = np.uint64(0xFF51AFD7ED558CCD)
_M2 = np.uint64(0xC4CEB9FE1A85EC53)


def mix64(h: np.ndarray) -> np.ndarray:
    """murmur3's 64-bit finaliser, a bijection on uint64 (distinct inputs never collide), on a copy: spreads
    structured values (band bits, seeds XOR hashes) over all 64 bits."""
    h = np.asarray(h, dtype=np.uint64).copy()
    with np.errstate(over="ignore"):
        h ^= h >> np.uint64(33)
        h *= _M1
        h ^= h >> np.uint64(33)
        h *= _M2
        h ^= h >> np.uint64(33)
    return h


_BYTE_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.int64)


def popcount(x: np.ndarray) -> np.ndarray:
    """Set bits of each uint64 (numpy ≥ 2 has it in C; older numpy uses a byte table)."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(x).astype(np.int64)
    x = np.ascontiguousarray(x, dtype="<u8")
    return _BYTE_POPCOUNT[x.view(np.uint8).reshape(-1, 8)].sum(axis=1).reshape(x.shape)
