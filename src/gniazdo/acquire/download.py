"""The one resumable HTTP downloader every ``gniazdo data pull`` uses.

``Downloader.fetch(url, dest)``:

* writes to ``<dest>.part`` and renames it to ``dest`` (atomically, after an fsync) only when complete;
  a ``dest`` that exists is complete and is skipped (when an expected size is known, only if it matches);
* resumes a ``.part`` left by an earlier run or a dropped connection with ``Range: bytes=<have>-``, guarded
  by ``If-Range`` (the ETag / Last-Modified seen when the download began, kept in ``<dest>.part.validator``)
  so a file that changed on the server restarts instead of being spliced; a server that ignores Range
  (200 instead of 206) or answers with another range also restarts from byte 0;
* checks the byte count against Content-Length / Content-Range and against ``expected_size`` when given;
* retries connection errors, timeouts, truncated bodies, 429 and 5xx with exponential backoff; other
  HTTP errors (404...) fail at once;
* bytes are stored exactly as served (``Accept-Encoding: identity``, no transparent decompression);
* shows a rich progress bar on a terminal (stderr).

Every failure is a one-line :class:`~gniazdo.errors.UserError` that names the URL.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import requests
import urllib3
from rich.console import Console
from rich.progress import (BarColumn, DownloadColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TaskID,
                           TextColumn, TimeRemainingColumn, TransferSpeedColumn)
from rich.text import Text

from gniazdo import __version__
from gniazdo.errors import UserError

USER_AGENT = f"gniazdo/{__version__} (+https://github.com/gniazdo; python-requests/{requests.__version__})"
_RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}
_CONTENT_RANGE = re.compile(r"bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)")


@dataclass
class PullResult:
    """What a pull produced: the archive, its document count, and what was skipped (reason → count)."""

    archive: Path
    documents: int
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return self.archive.stat().st_size


class HTTPStatusError(UserError):
    """The server answered a non-retryable HTTP error (404, 403...)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def prepare_out(out: str | Path, args: dict[str, Any]) -> Path:
    """Create the output folder and record a pull's resolved arguments as ``OUT/pull.resolved.yaml``."""
    from gniazdo.config import save_resolved

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"output {out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    save_resolved({**args, "out": str(out.resolve())}, out, name="pull.resolved.yaml")
    return out


class _Retry(Exception):
    """A transient failure worth another attempt (after ``wait`` seconds, when the server said so)."""

    def __init__(self, reason: str, wait: float | None = None) -> None:
        super().__init__(reason)
        self.wait = wait


def _one_line(err: BaseException | str, limit: int = 200) -> str:
    text = str(err).strip()
    line = text.splitlines()[0] if text else type(err).__name__
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _describe(err: BaseException) -> str:
    """A network error in a few words: ``connection failed: [Errno 111] Connection refused``, ``timed out``."""
    if isinstance(err, (requests.Timeout, urllib3.exceptions.TimeoutError)):
        return "timed out"
    if isinstance(err, requests.ConnectionError):
        m = re.search(r"\[Errno -?\d+\] [^'\")\]]+", str(err))
        if m:
            return f"connection failed: {m.group(0).strip()}"
    if isinstance(err, (requests.exceptions.ChunkedEncodingError, urllib3.exceptions.ProtocolError)):
        return f"connection broken: {_one_line(err, 120)}"
    return _one_line(err)


def _parse_content_range(value: str | None) -> tuple[int | None, int | None]:
    """``bytes 100-199/1000`` → (100, 1000); ``bytes */1000`` → (None, 1000); total None when ``*``."""
    m = _CONTENT_RANGE.fullmatch((value or "").strip())
    if not m:
        return None, None
    start = int(m.group(1)) if m.group(1) is not None else None
    total = int(m.group(3)) if m.group(3) != "*" else None
    return start, total


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    return min(float(value), 60.0) if value.strip().isdigit() else None


class _AmountColumn(ProgressColumn):
    """Bytes (with speed) for downloads, ``n/total`` for counter bars."""

    def __init__(self) -> None:
        super().__init__()
        self._bytes, self._speed, self._count = DownloadColumn(), TransferSpeedColumn(), MofNCompleteColumn()

    def render(self, task: Task) -> Text:
        if task.fields.get("counter"):
            return self._count.render(task)
        return Text.assemble(self._bytes.render(task), " ", self._speed.render(task))


def part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def _validator_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part.validator")


class Downloader:
    """Resumable, retrying, verified downloads (see the module docstring). Use as a context manager to
    show one progress display for all the files of a pull."""

    def __init__(self, *, retries: int = 5, backoff: float = 1.0, timeout: tuple[float, float] = (10.0, 60.0),
                 progress: bool = True, chunk_size: int = 1 << 16,
                 session: requests.Session | None = None) -> None:
        if retries < 0:
            raise UserError(f"retries must be >= 0 (got {retries})")
        self.retries = retries
        self.backoff = backoff
        self.timeout = timeout
        self.chunk_size = chunk_size
        if session is None:
            session = requests.Session()
            session.headers["User-Agent"] = USER_AGENT
        self.session = session
        enabled = progress and sys.stderr.isatty()
        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), _AmountColumn(),
                                 TimeRemainingColumn(),
                                 console=Console(stderr=True), disable=not enabled, transient=False)

    # -- context: one live progress display ------------------------------------------------------------
    def __enter__(self) -> "Downloader":
        self.progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.stop()
        self.session.close()

    def add_counter(self, description: str, total: int | None) -> TaskID:
        """An extra bar (books, records) in the same display; move it with ``self.progress.advance``."""
        return self.progress.add_task(description, total=total, counter=True)

    # -- downloads -------------------------------------------------------------------------------------
    def fetch(self, url: str, dest: str | Path, expected_size: int | None = None, *,
              headers: Mapping[str, str] | None = None, label: str | None = None) -> Path:
        """Download ``url`` to ``dest`` (resuming, retrying, verifying); return ``dest``.

        A ``dest`` that already exists is taken as complete (when ``expected_size`` is given it must
        match, else it is downloaded again).
        """
        dest = Path(dest)
        if dest.exists():
            if expected_size is None or dest.stat().st_size == expected_size:
                return dest
            dest.unlink()  # a different size than expected: not the file we want
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = part_path(dest)
        task = self.progress.add_task(label or dest.name, total=expected_size)
        last, wait = "", 0.0
        try:
            for attempt in range(self.retries + 1):
                if attempt:
                    time.sleep(wait)
                try:
                    self._attempt(url, dest, part, expected_size, headers or {}, task)
                    return dest
                except _Retry as e:
                    last = str(e)
                    wait = e.wait if e.wait is not None else self.backoff * (2 ** attempt)
                except (requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema,
                        requests.exceptions.InvalidURL) as e:
                    raise UserError(f"download failed: {url}: invalid URL ({_one_line(e)})") from None
                except (requests.RequestException, urllib3.exceptions.HTTPError) as e:
                    last = _describe(e)
                    wait = self.backoff * (2 ** attempt)
                except OSError as e:  # the local side: disk full, permissions
                    raise UserError(f"download failed: {url}: cannot write {part}: {_one_line(e)}") from None
            n = self.retries + 1
            raise UserError(f"download failed after {n} attempt{'s' if n > 1 else ''}: {url}: {last}")
        finally:
            self.progress.remove_task(task)

    def _attempt(self, url: str, dest: Path, part: Path, expected: int | None, extra: Mapping[str, str],
                 task: TaskID) -> None:
        have = part.stat().st_size if part.exists() else 0
        if expected is not None and have > expected:
            have = self._restart(part)
        if expected is not None and have == expected and have > 0:
            self._finish(part, dest, expected, url)
            return
        req_headers = {"Accept-Encoding": "identity", **extra}
        validator = _validator_path(dest)
        if have:
            req_headers["Range"] = f"bytes={have}-"
            if validator.exists():
                req_headers["If-Range"] = validator.read_text(encoding="utf-8").strip()
        with self.session.get(url, headers=req_headers, stream=True, timeout=self.timeout,
                              allow_redirects=True) as r:
            if r.status_code == 416 and have:
                # Nothing left to send from ``have``: complete if the server's size is ours, else start over.
                _, total = _parse_content_range(r.headers.get("Content-Range"))
                if total == have and (expected is None or expected == have):
                    self._finish(part, dest, expected, url)
                    return
                self._restart(part)
                raise _Retry(f"HTTP 416 for a partial file of {have} bytes; restarting", wait=0.0)
            if r.status_code in _RETRY_STATUS:
                raise _Retry(f"HTTP {r.status_code} {r.reason}", wait=_retry_after(r))
            if r.status_code >= 400:
                raise HTTPStatusError(f"download failed: {url}: HTTP {r.status_code} {r.reason}", r.status_code)
            if have and r.status_code == 206:
                start, total = _parse_content_range(r.headers.get("Content-Range"))
                if start != have:  # some other range: do not splice, start over
                    self._restart(part)
                    raise _Retry(f"server answered range start {start} for a request from {have}", wait=0.0)
                mode = "ab"
                if total is None and r.headers.get("Content-Length", "").isdigit():
                    total = have + int(r.headers["Content-Length"])
            else:  # 200: a fresh download, or a server that ignored Range / a file that changed (If-Range)
                have, mode = 0, "wb"
                total = int(r.headers["Content-Length"]) if r.headers.get("Content-Length", "").isdigit() else None
                self._save_validator(validator, r)
            if expected is not None and total is not None and total != expected:
                raise UserError(f"download failed: {url}: size mismatch: expected {expected:,} bytes, "
                                f"the server sends {total:,}")
            self.progress.update(task, total=total if total is not None else expected, completed=have)
            with open(part, mode) as f:
                for chunk in r.raw.stream(self.chunk_size, decode_content=False):
                    f.write(chunk)
                    self.progress.advance(task, len(chunk))
                f.flush()
                os.fsync(f.fileno())
        size = part.stat().st_size
        if total is not None and size < total:
            raise _Retry(f"connection closed after {size:,} of {total:,} bytes")
        if total is not None and size > total:
            self._restart(part)
            raise _Retry(f"received {size:,} bytes, more than the {total:,} announced; restarting")
        self._finish(part, dest, expected, url)

    def _finish(self, part: Path, dest: Path, expected: int | None, url: str) -> None:
        size = part.stat().st_size
        if expected is not None and size != expected:
            self._restart(part)
            raise UserError(f"download failed: {url}: size mismatch: expected {expected:,} bytes, "
                            f"received {size:,}")
        os.replace(part, dest)
        _validator_path(dest).unlink(missing_ok=True)

    @staticmethod
    def _restart(part: Path) -> int:
        part.unlink(missing_ok=True)
        return 0

    @staticmethod
    def _save_validator(path: Path, r: requests.Response) -> None:
        etag = r.headers.get("ETag", "")
        value = etag if etag and not etag.startswith("W/") else r.headers.get("Last-Modified", "")
        if value:
            path.write_text(value, encoding="utf-8")
        else:
            path.unlink(missing_ok=True)

    def fetch_json(self, url: str, dest: str | Path, *, label: str | None = None) -> Any:
        """Download a JSON document to ``dest`` (so a re-run reuses it) and parse it."""
        dest = self.fetch(url, dest, headers={"Accept": "application/json"}, label=label)
        try:
            return json.loads(Path(dest).read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            Path(dest).unlink(missing_ok=True)  # do not keep an error page as if it were the answer
            raise UserError(f"{url}: not valid JSON ({_one_line(e)})") from None


def download(url: str, dest: str | Path, expected_size: int | None = None, **options: Any) -> Path:
    """One-off :meth:`Downloader.fetch` with default settings (``options`` go to :class:`Downloader`)."""
    with Downloader(**options) as d:
        return d.fetch(url, dest, expected_size)
