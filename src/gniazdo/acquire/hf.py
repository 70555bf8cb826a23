"""A Hugging Face dataset, streamed with ``datasets`` (``streaming=True``), written as a SpeakLeash archive.

Each record becomes one document: the text field is the text, every other field goes to ``meta`` (values
that are not JSON — dates, bytes, numpy scalars — become JSON-friendly). Records whose text is empty or
null are skipped and counted.

``--data-files`` that are ``http(s)://`` URLs are first fetched with gniazdo's resumable downloader into
``<out>/.download/hf/`` (removed when the pull succeeds) and then streamed from disk, so a dropped
connection resumes instead of starting over; local paths, globs and ``hf://`` paths go to ``datasets`` as
given. A Hub dataset without data files streams from the Hub as ``datasets`` does it (its cache, its
token from ``HF_TOKEN`` / ``huggingface-cli login``).
"""

from __future__ import annotations

import base64
import datetime as _dt
import re
import shutil
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import unquote, urlparse

from gniazdo.acquire.download import Downloader, PullResult, prepare_out
from gniazdo.corpus.speakleash import DatasetInfo, SpeakLeashWriter, Source
from gniazdo.document import Document
from gniazdo.errors import UserError


def default_name(dataset: str, config: str | None = None) -> str:
    """``allegro/klej-dyk`` + ``default`` → ``allegro_klej-dyk_default``: a safe archive name."""
    raw = dataset.rstrip("/") + (f"_{config}" if config else "")
    return re.sub(r"[^\w.-]+", "_", raw).strip("._") or "hf"


def jsonable(value: Any) -> Any:
    """A record value as something ``json.dumps`` accepts."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return jsonable(value.tolist())
    return str(value)


def _local_name(url: str, used: set[str]) -> str:
    name = Path(unquote(urlparse(url).path)).name or "data"
    name = re.sub(r"[^\w.-]+", "_", name)
    candidate, k = name, 1
    while candidate in used:
        candidate, k = f"{k}-{name}", k + 1
    used.add(candidate)
    return candidate


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0]}" if text else type(e).__name__


def pull_hf(dataset: str, out: str | Path, *, config: str | None = None, split: str = "train",
            text_field: str = "text", data_files: Sequence[str] = (), limit: int | None = None,
            name: str | None = None, downloader: Downloader | None = None,
            keep_downloads: bool = False) -> PullResult:
    """Stream ``dataset`` (``config``, ``split``; or a builder such as ``json`` with ``data_files``) into
    ``<out>/<name>.jsonl.zst`` + manifest (+ ``pull.resolved.yaml``), at most ``limit`` documents."""
    if limit is not None and limit < 1:
        raise UserError(f"--limit must be at least 1 (got {limit})")
    name = name or default_name(dataset, config)
    dl = downloader or Downloader()
    out = prepare_out(out, {"source": "hf", "dataset": dataset, "config": config, "split": split,
                            "text_field": text_field, "data_files": list(data_files), "limit": limit,
                            "name": name, "keep_downloads": keep_downloads, "retries": dl.retries})
    cache = out / ".download" / "hf"
    files: list[str] = []
    used: set[str] = set()
    with dl:
        for f in data_files:
            if f.startswith(("http://", "https://")):
                files.append(str(dl.fetch(f, cache / _local_name(f, used))))
            else:
                files.append(f)
        try:
            import datasets
        except ImportError:  # pragma: no cover - a declared dependency
            raise UserError("the 'datasets' package is needed for 'pull hf' (pip install datasets)") from None
        what = f"dataset '{dataset}'" + (f" (config '{config}')" if config else "")
        try:
            ds = datasets.load_dataset(dataset, config, split=split, data_files=files or None, streaming=True)
        except Exception as e:  # datasets raises many types (not found, bad split, network); one line each
            raise UserError(f"cannot load {what}, split '{split}': {_first_line(e)}") from None
        dataset_license = getattr(getattr(ds, "info", None), "license", "") or ""
        info = DatasetInfo(description=f"Hugging Face {what}, split '{split}'", license=dataset_license,
                           sources=[Source(name=dataset, url=_hub_url(dataset, files),
                                           license=dataset_license or None)])
        writer = SpeakLeashWriter(out, name, info)
        written, skipped = 0, {}
        counter = dl.add_counter("records", limit)
        try:
            records = iter(ds)
            while limit is None or written < limit:
                try:
                    record = next(records)
                except StopIteration:
                    break
                except Exception as e:
                    raise UserError(f"reading {what} failed: {_first_line(e)}") from None
                if written == 0 and not skipped and text_field not in record:
                    raise UserError(f"{what} has no field '{text_field}' (fields: {', '.join(record)}); "
                                    f"choose one with --text-field")
                text = record.get(text_field)
                if not isinstance(text, str) or not text.strip():
                    why = "empty text" if isinstance(text, str) or text is None else "text is not a string"
                    skipped[why] = skipped.get(why, 0) + 1
                    continue
                meta = {k: jsonable(v) for k, v in record.items() if k != text_field}
                writer.write(Document(f"{name}:{written}", text, meta))
                written += 1
                dl.progress.advance(counter)
            archive = writer.close()[0]
        except BaseException:
            writer.abort()
            raise
    if not keep_downloads and data_files:
        shutil.rmtree(cache, ignore_errors=True)
        try:
            (out / ".download").rmdir()
        except OSError:
            pass
    return PullResult(archive=archive, documents=written, skipped=skipped)


def _hub_url(dataset: str, files: list[str]) -> str | None:
    if files or "/" not in dataset:
        return None
    return f"https://huggingface.co/datasets/{dataset}"
