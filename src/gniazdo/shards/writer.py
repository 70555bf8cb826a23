"""Write token shards: one file at a time (:class:`ShardWriter`), a rolling series of ~N-token shards
(:class:`ShardSeries`), and a whole corpus tokenized into train/val shards (:func:`tokenize_corpus`).

Every file is written under a temp name and renamed into place on close, so a killed run never leaves a
half-written shard behind. Shard names carry a prefix (``train``, ``val``; later one per input task), so several
tasks can each write their own shards into the same folder without clashing.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from gniazdo.errors import UserError
from gniazdo.fileio import CommitOnExit, write_json_atomic
from gniazdo.shards.format import HEADER_SIZE, SHARD_SUFFIX, Header, dtype_for
from gniazdo.shards.mixture import Mixture, unit_hash

DEFAULT_SHARD_TOKENS = 100_000_000
ENCODE_BATCH = 256


class ShardWriter(CommitOnExit):
    """One shard file: documents appended as token-id arrays, each followed by ``eos_id`` (when given)."""

    def __init__(self, path: str | Path, vocab_size: int, eos_id: int | None = None) -> None:
        self.path = Path(path)
        self.vocab_size = vocab_size
        self.dtype = dtype_for(vocab_size)
        if eos_id is not None and not 0 <= eos_id < vocab_size:
            raise UserError(f"eos id {eos_id} is outside the vocabulary of {vocab_size}")
        self.eos_id = eos_id
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        self._tmp = Path(tmp)
        self._f = os.fdopen(fd, "wb")
        self._f.write(b"\0" * HEADER_SIZE)  # the real header is written on close, when the counts are known
        self._starts: list[int] = []
        self.n_tokens = 0
        self.closed = False

    @property
    def n_docs(self) -> int:
        return len(self._starts)

    def add(self, ids: Sequence[int] | np.ndarray) -> None:
        """Append one document's token ids (and ``</s>`` after them)."""
        arr = np.asarray(ids, dtype=np.int64)
        if arr.size and (arr.min() < 0 or arr.max() >= self.vocab_size):
            bad = int(arr.min()) if arr.min() < 0 else int(arr.max())
            raise UserError(f"{self.path}: token id {bad} is outside the vocabulary of {self.vocab_size}")
        if self.eos_id is not None:
            arr = np.append(arr, self.eos_id)
        self._starts.append(self.n_tokens)
        self._f.write(arr.astype(self.dtype).tobytes())
        self.n_tokens += int(arr.size)

    def close(self) -> Path:
        """Write the index and header, then rename the shard into place."""
        if self.closed:
            return self.path
        header = Header(self.dtype, self.n_tokens, self.n_docs)
        try:
            self._f.write(b"\0" * (header.index_offset - HEADER_SIZE - self.n_tokens * self.dtype.itemsize))
            self._f.write(np.asarray(self._starts, dtype="<u8").tobytes())
            self._f.seek(0)
            self._f.write(header.pack())
            self._f.flush()
            os.fsync(self._f.fileno())
            self._f.close()
            os.chmod(self._tmp, 0o644)
            os.replace(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise
        self.closed = True
        return self.path

    def abort(self) -> None:
        """Drop the half-written shard."""
        if not self._f.closed:
            self._f.close()
        self._tmp.unlink(missing_ok=True)
        self.closed = True



class ShardSeries:
    """Shards ``{prefix}-00000.tok``, ``{prefix}-00001.tok``, ... in ``folder``; a new one is started once the
    current one holds ``shard_tokens`` tokens (documents are never split across shards)."""

    def __init__(self, folder: str | Path, prefix: str, vocab_size: int, eos_id: int | None,
                 shard_tokens: int = DEFAULT_SHARD_TOKENS) -> None:
        if shard_tokens < 1:
            raise UserError(f"shard_tokens must be positive, got {shard_tokens}")
        self.folder, self.prefix = Path(folder), prefix
        self.vocab_size, self.eos_id, self.shard_tokens = vocab_size, eos_id, shard_tokens
        self.shards: list[dict[str, Any]] = []
        self._current: ShardWriter | None = None

    def add(self, ids: Sequence[int] | np.ndarray) -> None:
        if self._current is None:
            name = f"{self.prefix}-{len(self.shards):05d}{SHARD_SUFFIX}"
            self._current = ShardWriter(self.folder / name, self.vocab_size, self.eos_id)
        self._current.add(ids)
        if self._current.n_tokens >= self.shard_tokens:
            self._finish()

    def _finish(self) -> None:
        w, self._current = self._current, None
        if w is not None:
            w.close()
            self.shards.append({"path": w.path.name, "tokens": w.n_tokens, "documents": w.n_docs})

    def close(self) -> list[dict[str, Any]]:
        self._finish()
        return self.shards

    def abort(self) -> None:
        if self._current is not None:
            self._current.abort()
            self._current = None


def _load_tokenizer(tokenizer_path: str | Path):
    from tokenizers import Tokenizer

    path = Path(tokenizer_path)
    file = path / "tokenizer.json" if path.is_dir() else path
    if not file.is_file():
        raise UserError(f"tokenizer not found: {file}")
    try:
        return Tokenizer.from_file(str(file)), file
    except Exception as e:  # tokenizers raises a bare Exception on a malformed file
        raise UserError(f"{file}: not a HF tokenizers file: {str(e).splitlines()[0] if str(e) else e}") from None


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def is_val(doc_id: str, seed: int, val_fraction: float) -> bool:
    """Whether a document belongs to the validation split: a hash of its id and the seed, so the split does not
    depend on the order or the other documents of the corpus."""
    return unit_hash(seed, "val", doc_id) < val_fraction


class _Tally:
    """Tokens and documents per source / quality / category."""

    def __init__(self) -> None:
        self.tokens = 0
        self.documents = 0
        self.by: dict[str, dict[str, int]] = {g: defaultdict(int) for g in ("source", "quality", "category")}

    def add(self, n: int, source: str, meta: dict[str, Any], copies: int = 1) -> None:
        if copies <= 0:
            return
        self.tokens += n * copies
        self.documents += copies
        self.by["source"][source] += n * copies
        self.by["quality"][str(meta.get("quality", "none"))] += n * copies
        self.by["category"][str(meta.get("category", "none"))] += n * copies

    def as_dict(self) -> dict[str, Any]:
        return {"tokens": self.tokens, "documents": self.documents,
                **{g: dict(sorted(v.items())) for g, v in self.by.items()}}


def tokenize_corpus(tokenizer_path: str | Path, inputs: Iterable[str | Path], out: str | Path,
                    mixture: Mixture | str | Path | None = None, val_fraction: float = 0.01, seed: int = 0,
                    shard_tokens: int = DEFAULT_SHARD_TOKENS, eos_id: int | None = None,
                    eos_token: str = "</s>", batch_size: int = ENCODE_BATCH, workers: int = 1) -> dict[str, Any]:
    """Tokenize documents into ``out/train-TTTTT-NNNNN.tok`` and ``out/val-TTTTT-NNNNN.tok`` shards (one series
    per input file TTTTT) and ``out/meta.json``.

    A document goes to val when a hash of its id and ``seed`` falls below ``val_fraction``. The mixture applies to
    train (dropping, sampling, repeating documents); val keeps each document once, except those the mixture
    weighs 0 (dropped sources stay out of val too). Token counts include each document's ``</s>``.

    Each input file is a task: ``workers`` processes run them, each task's shards are written atomically and
    then a marker ``out/.done/TTTTT.json``; re-running the same command after a kill skips finished tasks and
    redoes the others, giving byte-identical shards (everything depends only on the documents and the seed).
    """
    from gniazdo.corpus import expand_inputs

    if not 0 <= val_fraction < 1:
        raise UserError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if isinstance(mixture, (str, Path)):
        mixture = Mixture.load(mixture)
    tokenizer, tok_file = _load_tokenizer(tokenizer_path)
    vocab_size = tokenizer.get_vocab_size(with_added_tokens=True)
    if eos_id is None:
        eos_id = tokenizer.token_to_id(eos_token)
        if eos_id is None:
            raise UserError(f"{tok_file}: the tokenizer has no '{eos_token}' token; give eos_id or eos_token")
    out = Path(out)
    files = expand_inputs(inputs)
    job = _Job(str(tok_file), str(out), mixture, val_fraction, seed, shard_tokens, eos_id, batch_size)
    pending = [(i, str(p)) for i, p in enumerate(files) if not _marker(out, i).exists()]
    for stale in out.glob(".*.tmp*") if out.exists() else []:
        stale.unlink(missing_ok=True)  # temp files of a killed run
    if workers > 1 and len(pending) > 1:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(min(workers, len(pending))) as pool:
            pool.starmap(_run_task, [(job, i, p) for i, p in pending])
    else:
        for i, p in pending:
            _run_task(job, i, p)
    return _merge(job, files, tok_file, vocab_size)


@dataclass(frozen=True)
class _Job:
    tokenizer: str
    out: str
    mixture: Mixture | None
    val_fraction: float
    seed: int
    shard_tokens: int
    eos_id: int
    batch_size: int


def _marker(out: Path, task: int) -> Path:
    return out / ".done" / f"{task:05d}.json"


@functools.lru_cache(maxsize=2)
def _encoder(tokenizer_path: str, mtime_ns: int, size: int):
    """The tokenizer and its batch encoder, kept for the next task of this process (its cache of pre-tokens
    stays warm); keyed by the file's time and size too, so a rewritten tokenizer file is read again."""
    from gniazdo.tokenizer.cached_encode import batch_encoder

    tokenizer, _ = _load_tokenizer(tokenizer_path)
    return tokenizer, batch_encoder(tokenizer)


def _run_task(job: _Job, task: int, path: str) -> None:
    """Tokenize one input file into its own train/val series, then write its marker."""
    from gniazdo.corpus import file_stem, read_documents

    stat = os.stat(job.tokenizer)
    tokenizer, encode = _encoder(job.tokenizer, stat.st_mtime_ns, stat.st_size)
    vocab_size = tokenizer.get_vocab_size(with_added_tokens=True)
    out = Path(job.out)
    series = {split: ShardSeries(out, f"{split}-{task:05d}", vocab_size, job.eos_id, job.shard_tokens)
              for split in ("train", "val")}
    before, after = _Tally(), {split: _Tally() for split in series}
    stem = file_stem(Path(path))
    try:
        batch: list = []
        for doc in read_documents([path]):
            batch.append(doc)
            if len(batch) >= job.batch_size:
                _write_batch(encode, batch, stem, job.mixture, job.seed, job.val_fraction, series, before, after)
                batch = []
        if batch:
            _write_batch(encode, batch, stem, job.mixture, job.seed, job.val_fraction, series, before, after)
        shards = {split: s.close() for split, s in series.items()}
    except BaseException:
        for s in series.values():
            s.abort()
        raise
    write_json_atomic(_marker(out, task), {"before": before.as_dict(),
                                           "after": {k: t.as_dict() for k, t in after.items()},
                                           "shards": shards})


def _merge(job: _Job, files: list[Path], tok_file: Path, vocab_size: int) -> dict[str, Any]:
    """meta.json from the tasks' markers, in task order."""
    out = Path(job.out)
    markers = [json.loads(_marker(out, i).read_text(encoding="utf-8")) for i in range(len(files))]
    meta = {
        "format": "gniazdo-token-shards", "version": 1,
        "tokenizer": {"path": str(tok_file), "sha256": sha256_of(tok_file), "vocab_size": vocab_size,
                      "eos_id": job.eos_id, "dtype": str(dtype_for(vocab_size).name)},
        "inputs": [str(p) for p in files],
        "seed": job.seed, "val_fraction": job.val_fraction, "shard_tokens": job.shard_tokens,
        "mixture": job.mixture.model_dump(mode="json") if job.mixture is not None else None,
        "tokens": {"before_mixture": _sum_tallies([m["before"] for m in markers]),
                   "after_mixture": {split: _sum_tallies([m["after"][split] for m in markers])
                                     for split in ("train", "val")}},
        "shards": {split: [s for m in markers for s in m["shards"][split]] for split in ("train", "val")},
    }
    write_json_atomic(out / "meta.json", meta)
    return meta


def _sum_tallies(tallies: list[dict[str, Any]]) -> dict[str, Any]:
    total: dict[str, Any] = {"tokens": 0, "documents": 0, "source": {}, "quality": {}, "category": {}}
    for t in tallies:
        total["tokens"] += t["tokens"]
        total["documents"] += t["documents"]
        for group in ("source", "quality", "category"):
            for k, v in t[group].items():
                total[group][k] = total[group].get(k, 0) + v
    for group in ("source", "quality", "category"):
        total[group] = dict(sorted(total[group].items()))
    return total


def _write_batch(encode, batch, stem, mixture, seed, val_fraction, series, before, after) -> None:
    for doc, ids in zip(batch, encode([d.text for d in batch])):
        source = str(doc.meta.get("source") or stem)
        n = len(ids) + 1  # with its </s>
        before.add(n, source, doc.meta)
        copies = mixture.copies(doc.id, source, doc.meta, seed) if mixture is not None else 1
        if is_val(doc.id, seed, val_fraction):
            split, copies = "val", min(copies, 1)
        else:
            split = "train"
        for _ in range(copies):
            series[split].add(ids)
        after[split].add(n, source, doc.meta, copies)
