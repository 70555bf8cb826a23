"""What ``gniazdo corpus info`` and ``sample`` show: a corpus's manifest and stats, and a few documents."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Iterator

from gniazdo.corpus import expand_inputs, read_documents
from gniazdo.corpus.base import ReaderOptions
from gniazdo.corpus.speakleash import ARCHIVE_SUFFIX, INDEX_SUFFIX, manifest_path, read_manifest
from gniazdo.corpus.stats import ManifestStats
from gniazdo.document import Document


def corpus_info(path: str | Path, options: ReaderOptions | None = None) -> dict[str, Any]:
    """The manifest (archive), the index (pipeline output folder or ``.index.json``), or stats computed by
    reading the documents (any other input). ``source`` says which."""
    path = Path(path)
    if path.name.endswith(INDEX_SUFFIX):
        return {"source": "index", **json.loads(path.read_text(encoding="utf-8"))}
    if path.is_dir():
        indexes = sorted(path.glob(f"*{INDEX_SUFFIX}"))
        if len(indexes) == 1:
            return corpus_info(indexes[0])
    if path.name.endswith(ARCHIVE_SUFFIX) and manifest_path(path).exists():
        manifest = read_manifest(path)
        manifest["size_matches"] = manifest.get("file_size") == path.stat().st_size
        return {"source": "manifest", **manifest}
    stats = ManifestStats()
    for doc in read_documents([path], options):
        stats.add(doc)
    return {"source": "computed", "name": path.name, "stats": stats.to_dict()}


def sample_documents(paths: list[str], n: int, seed: int | None = 0, first: bool = False,
                     options: ReaderOptions | None = None) -> list[Document]:
    """``n`` documents: the first ones, or a uniform sample by reservoir sampling (one pass, O(n) memory)."""
    docs: Iterator[Document] = read_documents(expand_inputs(paths), options)
    if first:
        return [doc for _, doc in zip(range(n), docs)]
    rng = random.Random(seed)
    reservoir: list[Document] = []
    for i, doc in enumerate(docs):
        if i < n:
            reservoir.append(doc)
        else:
            j = rng.randint(0, i)
            if j < n:
                reservoir[j] = doc
    return reservoir
