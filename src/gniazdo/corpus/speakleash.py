"""SpeakLeash archives: ``<name>.jsonl.zst`` (one ``{"text", "meta"}`` a line) + ``<name>.manifest`` (JSON).

The ``speakleash`` package accepts a local archive only when ``manifest.file_size`` equals the size of the
``.jsonl.zst`` in bytes, so the manifest is written after the archive is final. Large outputs are sharded by
compressed size; every shard is a complete SpeakLeash dataset with its own manifest, and a corpus-level
``<name>.index.json`` lists the shards and their summed stats.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from gniazdo.config import Config
from gniazdo.corpus.base import Writer
from gniazdo.corpus.jsonl import JsonlWriter
from gniazdo.corpus.stats import ManifestStats
from gniazdo.document import Document
from gniazdo.errors import UserError
from gniazdo.fileio import write_json_atomic

ARCHIVE_SUFFIX = ".jsonl.zst"
MANIFEST_SUFFIX = ".manifest"
INDEX_SUFFIX = ".index.json"


class Source(Config):
    name: str
    url: str | None = None
    license: str | None = None


class DatasetInfo(Config):
    """The descriptive part of a manifest (the rest, ``file_size`` and ``stats``, is computed)."""

    project: str = "SpeakLeash"
    description: str = ""
    license: str = ""
    language: str = "pl"
    sources: list[Source] = []


def manifest_path(archive: str | Path) -> Path:
    archive = Path(archive)
    return archive.with_name(archive.name[: -len(ARCHIVE_SUFFIX)] + MANIFEST_SUFFIX)


def read_manifest(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if path.name.endswith(ARCHIVE_SUFFIX):
        path = manifest_path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"manifest not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: not a valid manifest ({e})") from None


def build_manifest(name: str, info: DatasetInfo, file_size: int, stats: ManifestStats) -> dict[str, Any]:
    sources = [s.model_dump(exclude_none=True) for s in info.sources] or [{"name": name}]
    return {
        "project": info.project,
        "name": name,
        "description": info.description,
        "license": info.license,
        "language": info.language,
        "sources": sources,
        "file_size": file_size,
        "stats": stats.to_dict(),
        "creation_date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def speakleash_record(doc: Document, add_id: bool) -> dict[str, Any]:
    meta = doc.meta
    if add_id and "id" not in meta:
        meta = {**meta, "id": doc.id}
    return {"text": doc.text, "meta": meta}


class SpeakLeashWriter(Writer):
    """Writes one archive, or size-bounded shards ``<name>-00000.jsonl.zst``..., each with its manifest.

    ``shard_size`` counts uncompressed JSONL bytes (zstd buffers its output, so compressed size is only
    known at the end of a frame); archives are typically 3–4× smaller than that.

    ``add_id`` stores ``doc.id`` as ``meta.id`` (pipeline outputs keep the input record's id this way);
    ``corpus convert`` leaves it off so a round trip keeps meta identical.
    """

    def __init__(self, out_dir: str | Path, name: str, info: DatasetInfo | None = None,
                 shard_size: int | None = None, add_id: bool = False, compression_level: int = 3) -> None:
        self.out_dir = Path(out_dir)
        self.name = name
        self.info = DatasetInfo.model_validate(info) if isinstance(info, dict) else (info or DatasetInfo())
        self.shard_size = shard_size
        self.add_id = add_id
        self.level = compression_level
        self._shards: list[tuple[str, JsonlWriter, ManifestStats]] = []
        self._current: tuple[str, JsonlWriter, ManifestStats] | None = None

    def _shard_name(self, k: int) -> str:
        return f"{self.name}-{k:05d}" if self.shard_size else self.name

    def _open_shard(self) -> tuple[str, JsonlWriter, ManifestStats]:
        name = self._shard_name(len(self._shards))
        shard = (name, JsonlWriter(self.out_dir / (name + ARCHIVE_SUFFIX), self.level), ManifestStats())
        self._shards.append(shard)
        return shard

    def write(self, doc: Document) -> None:
        if self._current is None:
            self._current = self._open_shard()
        _, writer, stats = self._current
        writer.write_record(speakleash_record(doc, self.add_id))
        stats.add(doc)
        if self.shard_size and writer.bytes_written >= self.shard_size:
            self._current = None  # the next document opens a new shard

    def close(self) -> list[Path]:
        if not self._shards:
            self._open_shard()  # an empty corpus is still a valid (empty) archive
        paths: list[Path] = []
        for name, writer, stats in self._shards:
            archive = writer.close()[0]
            manifest = build_manifest(name, self.info, archive.stat().st_size, stats)
            write_json_atomic(manifest_path(archive), manifest)
            paths.append(archive)
        return paths

    def abort(self) -> None:
        for _, writer, _ in self._shards:
            writer.abort()

    @property
    def stats(self) -> ManifestStats:
        total = ManifestStats()
        for _, _, s in self._shards:
            total.merge(s)
        return total


def write_index(out_dir: str | Path, name: str, archives: list[Path], info: DatasetInfo | None = None) -> Path:
    """Write ``<name>.index.json``: the shards in order with their sizes and stats, and the corpus totals."""
    out_dir = Path(out_dir)
    total = ManifestStats()
    shards = []
    for archive in archives:
        manifest = read_manifest(archive)
        total.merge(ManifestStats.from_dict(manifest.get("stats", {})))
        shards.append({"archive": os.path.relpath(archive, out_dir), "file_size": manifest.get("file_size"),
                       "documents": manifest.get("stats", {}).get("documents", 0)})
    info = info or DatasetInfo()
    index = {"project": info.project, "name": name, "description": info.description, "license": info.license,
             "language": info.language, "shards": shards, "stats": total.to_dict()}
    path = out_dir / (name + INDEX_SUFFIX)
    write_json_atomic(path, index)
    return path


def verify_archive(archive: str | Path) -> None:
    """Raise a UserError unless the manifest's ``file_size`` matches the archive (the speakleash check)."""
    archive = Path(archive)
    manifest = read_manifest(archive)
    size = archive.stat().st_size
    if manifest.get("file_size") != size:
        raise UserError(f"{archive}: manifest file_size {manifest.get('file_size')} != actual size {size}")
