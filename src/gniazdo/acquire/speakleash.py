"""A published SpeakLeash dataset: ``<base>/<NAME>.manifest`` + ``<base>/<NAME>.jsonl.zst``, verified.

The manifest comes first; the archive is then downloaded (resumably) and must be exactly
``manifest["file_size"]`` bytes — the check the ``speakleash`` package itself makes before it reads one.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

from gniazdo.acquire.download import Downloader, PullResult, prepare_out
from gniazdo.corpus.speakleash import ARCHIVE_SUFFIX, MANIFEST_SUFFIX, verify_archive
from gniazdo.errors import UserError


def pull_speakleash(name: str, base_url: str, out: str | Path, *,
                    downloader: Downloader | None = None) -> PullResult:
    """Download dataset ``name`` from ``base_url`` into ``out`` (+ ``pull.resolved.yaml``) and verify the
    archive's size against the manifest."""
    if not name or "/" in name or name in (".", ".."):
        raise UserError(f"invalid dataset name '{name}' (a plain name like 'wolne_lektury_corpus')")
    base = base_url.rstrip("/") + "/"
    dl = downloader or Downloader()
    out = prepare_out(out, {"source": "speakleash", "name": name, "base_url": base, "retries": dl.retries})
    manifest_url = base + quote(name) + MANIFEST_SUFFIX
    archive_url = base + quote(name) + ARCHIVE_SUFFIX
    manifest_file = out / (name + MANIFEST_SUFFIX)
    archive = out / (name + ARCHIVE_SUFFIX)
    with dl:
        dl.fetch(manifest_url, manifest_file, label=manifest_file.name)
        try:
            manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            manifest_file.unlink(missing_ok=True)
            raise UserError(f"{manifest_url}: not a valid manifest ({e.__class__.__name__}: "
                            f"{str(e).splitlines()[0] if str(e) else ''})") from None
        size = manifest.get("file_size") if isinstance(manifest, dict) else None
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise UserError(f"{manifest_url}: manifest has no valid file_size (got {size!r})")
        dl.fetch(archive_url, archive, expected_size=size, label=archive.name)
    verify_archive(archive)  # the manifest beside the archive agrees with the file on disk
    stats = manifest.get("stats") if isinstance(manifest.get("stats"), dict) else {}
    documents = stats.get("documents", 0)
    return PullResult(archive=archive, documents=documents if isinstance(documents, int) else 0)
