"""The interface of a near-duplicate expert.

An expert turns documents into fixed-width signatures (one row per document, numpy), derives LSH band keys
from them (documents sharing a key in any band are candidate pairs), and scores any pair directly from the two
signatures — so a pair proposed by one expert can be judged by every other (voting). Everything works on
batches of documents and arrays of pairs, vectorised with numpy.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar, Sequence

import numpy as np

from gniazdo.config import Config


class Expert(ABC):
    """One near-duplicate detector. Subclasses set ``name`` and ``Params``."""

    name: ClassVar[str] = ""
    Params: ClassVar[type[Config]]

    def __init__(self, params: Config | None = None, **kwargs) -> None:
        self.params = params if params is not None else self.Params(**kwargs)

    @abstractmethod
    def signatures(self, texts: Sequence[str]) -> np.ndarray:
        """A (len(texts), width) array; row i is document i's signature."""

    @abstractmethod
    def band_keys(self, sigs: np.ndarray) -> np.ndarray:
        """A (n, bands) uint64 array: documents that share a value in some column are candidates."""

    @abstractmethod
    def similarity(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Similarity of the pairs (a[k], b[k]) of signature rows, shape (k,), in [0, 1]."""

    @abstractmethod
    def is_duplicate(self, similarity: np.ndarray) -> np.ndarray:
        """The expert's verdict (bool array) for similarities it computed."""

    def state(self) -> dict[str, np.ndarray]:
        """What the expert learned from a corpus (cosine: idf), saved with an index; most learn nothing."""
        return {}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        pass
