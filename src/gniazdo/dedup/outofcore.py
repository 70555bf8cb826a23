"""``gniazdo dedup --memory-mb N``: the same vote on corpora far larger than memory.

Two passes over the input and files on disk in between (``OUT/.work/``), each phase holding at most about the
budget in memory:

1. **Sign**, batch by batch: each expert's signatures are appended to ``sig.<expert>.bin`` (read back later as a
   memory map), and every band's keys, with the document numbers, are written **partitioned by band and by key
   range**: ``bands/<expert>.<band>.<part>.bin``. The number of parts comes from the budget and the input size.
2. **Candidates**, one partition at a time: sort by key, pairs within equal-key buckets (as ``lsh.candidate_pairs``
   does, star-capped) appended to ``pairs.<expert>.bin``.
3. **Judge**, in chunks of pairs: every expert scores every candidate from the memory-mapped signatures; the rule
   decides; accepted pairs go to ``accepted.bin``.
4. **Clusters and survivors** over the accepted pairs: the only per-document arrays held whole (cluster id,
   score: 16 bytes a document).
5. **Write**: the input is read again and every document goes to the output or to ``excluded/near_dup/``.

The cosine expert's idf is fitted on the first batch (a sample of the corpus) rather than on all documents.
"""

from __future__ import annotations

import math
import shutil
from collections import deque
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from gniazdo.corpus import expand_inputs, read_documents
from gniazdo.dedup.clusters import choose_survivors, find_clusters, keep_scores
from gniazdo.dedup.expert import Expert
from gniazdo.dedup.lsh import _column_pairs
from gniazdo.dedup.voting import VoteRule
from gniazdo.document import Document

_KEY_DOC = np.dtype([("key", "<u8"), ("doc", "<i8")])
# What signing one document holds at a time: its text (~3 KB of web text as Python str) and signatures
# (~1.2 KB with the default experts), with room for shingle arrays.
_BYTES_PER_DOC = 8 * 1024


class Budget:
    """Tracks the largest array a phase holds, to show (and test) that memory follows the setting."""

    def __init__(self, megabytes: float) -> None:
        self.bytes = int(megabytes * 1024 * 1024)
        self.peak = 0

    def hold(self, *arrays: np.ndarray) -> None:
        self.peak = max(self.peak, sum(a.nbytes for a in arrays))


def _batches(docs: Iterator[Document], size: int) -> Iterator[list[Document]]:
    batch: list[Document] = []
    for doc in docs:
        batch.append(doc)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _sign_batch(experts: list[Expert], texts: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Signatures and band keys of one batch, per expert (the part worth spreading over processes)."""
    out = {}
    for e in experts:
        sigs = e.signatures(texts)
        out[e.name] = (sigs, e.band_keys(sigs))
    return out


def _write_batch(signed: dict[str, tuple[np.ndarray, np.ndarray]], first_doc: int, sig_files: dict, work: Path,
                 parts: int, budget: Budget) -> None:
    for name, (sigs, keys) in signed.items():
        sig_files[name].write(np.ascontiguousarray(sigs).tobytes())
        budget.hold(sigs, keys)
        rec = np.empty(len(sigs), dtype=_KEY_DOC)
        rec["doc"] = np.arange(first_doc, first_doc + len(sigs))
        for b in range(keys.shape[1]):
            rec["key"] = keys[:, b]
            part = (rec["key"] % np.uint64(parts)).astype(np.int64)
            for p in np.unique(part).tolist():
                # opened per write, in append mode: experts × bands × parts files would exceed the open-file
                # limit if all were kept open (the work folder starts empty)
                with open(work / "bands" / f"{name}.{b}.{p}.bin", "ab") as f:
                    f.write(rec[part == p].tobytes())


def sign(cfg, experts: list[Expert], work: Path, budget: Budget, parts: int,
         first_doc: int = 0) -> tuple[int, np.ndarray, list[str]]:
    """Phase 1: signatures and partitioned band keys on disk; returns the document count, keep scores and ids.
    With ``cfg.workers`` > 1 batches are signed in that many processes (at most two batches each in flight, so
    memory stays bounded); files are written in corpus order by this process."""
    n, scores, ids = first_doc, [], []
    batch_docs = cfg.batch_docs or max(1, budget.bytes // _BYTES_PER_DOC)
    batches = _batches(read_documents(cfg.inputs, cfg.reader), batch_docs)
    sig_files = {e.name: open(work / f"sig.{e.name}.bin", "ab") for e in experts}
    pool = None
    try:
        first = next(batches, None)
        if first is None:
            return 0, np.zeros(0), []
        pending: deque = deque([(first, _sign_batch(experts, [d.text for d in first]))])  # cosine fits here
        if cfg.workers > 1:
            import multiprocessing as mp

            pool = mp.get_context("spawn").Pool(cfg.workers)
        for batch in batches:
            texts = [d.text for d in batch]
            pending.append((batch, pool.apply_async(_sign_batch, (experts, texts)) if pool
                            else _sign_batch(experts, texts)))
            while len(pending) > (2 * cfg.workers if pool else 0):
                n = _flush(pending.popleft(), n, sig_files, work, parts, budget, cfg, scores, ids)
        while pending:
            n = _flush(pending.popleft(), n, sig_files, work, parts, budget, cfg, scores, ids)
    finally:
        if pool is not None:
            pool.terminate()
        for f in sig_files.values():
            f.close()
    return n - first_doc, np.concatenate(scores), ids


def _flush(item, n: int, sig_files, work: Path, parts: int, budget: Budget, cfg, scores: list, ids: list) -> int:
    batch, signed = item
    signed = signed if isinstance(signed, dict) else signed.get()  # signed here, or a worker's AsyncResult
    _write_batch(signed, n, sig_files, work, parts, budget)
    scores.append(keep_scores(cfg.keep, np.array([len(d.text) for d in batch]), [d.meta for d in batch]))
    ids += [d.id for d in batch]
    return n + len(batch)


def candidates(experts: list[Expert], work: Path, budget: Budget, max_bucket: int, old: int = 0) -> None:
    """Phase 2: candidate pairs per band partition, appended per expert (pairs of two indexed documents, the
    first ``old``, were judged when they were indexed and are skipped)."""
    for e in experts:
        with open(work / f"pairs.{e.name}.bin", "wb") as out:
            for path in sorted((work / "bands").glob(f"{e.name}.*.bin")):
                rec = np.fromfile(path, dtype=_KEY_DOC)
                budget.hold(rec)
                m = len(rec)
                codes = _column_pairs(rec["key"], max_bucket)
                pairs = np.stack([rec["doc"][codes // max(m, 1)], rec["doc"][codes % max(m, 1)]], axis=1)
                pairs = np.sort(pairs, axis=1).astype(np.int64)
                out.write(pairs[pairs[:, 1] >= old].tobytes())


def judge(experts: list[Expert], rule: str, work: Path, n: int, budget: Budget) -> dict[str, Any]:
    """Phase 3: every expert's verdict on every candidate, chunk by chunk; accepted pairs to disk."""
    vote_rule = VoteRule(rule, [e.name for e in experts])
    sigs = {e.name: np.memmap(work / f"sig.{e.name}.bin", dtype=np.uint64, mode="r").reshape(n, -1)
            for e in experts}
    # A chunk of pairs costs its 16 bytes plus the two signature rows gathered per pair, one expert at a time.
    chunk = max(1, budget.bytes // (16 + max(2 * s.shape[1] * 8 for s in sigs.values())))
    judged = {e.name: 0 for e in experts}
    accepted_total = 0
    with open(work / "accepted.bin", "wb") as out:
        for proposer in experts:
            all_pairs = np.memmap(work / f"pairs.{proposer.name}.bin", dtype=np.int64, mode="r").reshape(-1, 2)
            for start in range(0, len(all_pairs), chunk):
                pairs = np.asarray(all_pairs[start: start + chunk])
                verdicts = {}
                for e in experts:
                    a, b = np.asarray(sigs[e.name][pairs[:, 0]]), np.asarray(sigs[e.name][pairs[:, 1]])
                    budget.hold(pairs, a, b)
                    verdicts[e.name] = np.asarray(e.is_duplicate(e.similarity(a, b)), dtype=bool)
                ok = vote_rule.evaluate(verdicts)
                out.write(pairs[ok].tobytes())
                judged[proposer.name] += len(pairs)
                accepted_total += int(ok.sum())
    return {"candidate_records": judged, "accepted_records": accepted_total}


def _sign_index(index, experts: list[Expert], work: Path, parts: int, budget: Budget) -> int:
    """The indexed documents become documents 0..old-1 of this run (their signatures and band keys)."""
    old = len(index)
    sig_files = {e.name: open(work / f"sig.{e.name}.bin", "wb") for e in experts}
    try:
        step = max(1, budget.bytes // _BYTES_PER_DOC)
        for start in range(0, old, step):
            signed = {e.name: (index.signatures[e.name][start: start + step],
                               e.band_keys(index.signatures[e.name][start: start + step])) for e in experts}
            _write_batch(signed, start, sig_files, work, parts, budget)
    finally:
        for f in sig_files.values():
            f.close()
    return old


def dedup_out_of_core(cfg, experts: list[Expert], out: Path, index=None) -> dict[str, Any]:
    """Phases 1-4; returns per-document survivors and cluster sizes plus run figures (phase 5 is the caller's).
    With an index, its documents come first (they always survive) and the new survivors are added to it."""
    budget = Budget(cfg.memory_mb)
    work = out / ".work"
    shutil.rmtree(work, ignore_errors=True)
    (work / "bands").mkdir(parents=True)
    input_bytes = sum(p.stat().st_size for p in expand_inputs(cfg.inputs))
    # A band file holds 16 bytes a document; count a document per KB of input (generous for web text) and
    # split every band into enough key ranges for one to fit in the budget.
    parts = max(1, math.ceil((input_bytes / 1024 * 16) / max(budget.bytes, 1)))
    old = 0
    if index is not None and len(index):
        index.restore(experts)
        old = _sign_index(index, experts, work, parts, budget)
    n, scores, ids = sign(cfg, experts, work, budget, parts, first_doc=old)
    total = old + n
    if n:
        candidates(experts, work, budget, cfg.near.max_bucket, old)
        figures = judge(experts, cfg.near.vote, work, total, budget)
        accepted = np.fromfile(work / "accepted.bin", dtype=np.int64).reshape(-1, 2)
    else:  # nothing to map or judge (np.memmap refuses empty files)
        figures = {"candidate_records": {e.name: 0 for e in experts}, "accepted_records": 0}
        accepted = np.zeros((0, 2), dtype=np.int64)
    cluster_ids, sizes = find_clusters(accepted, total)
    survivors = choose_survivors(cluster_ids, np.r_[np.full(old, np.inf), scores])  # indexed documents win
    if index is not None and n:
        keep = survivors[old:] == np.arange(old, total)
        new_sigs = {e.name: np.memmap(work / f"sig.{e.name}.bin", dtype=np.uint64, mode="r")
                    .reshape(total, -1)[old:][keep] for e in experts}
        index.add(experts, [i for i, k in zip(ids, keep) if k], new_sigs)
    shutil.rmtree(work, ignore_errors=True)
    return {"n": n, "old": old, "ids": ids, "cluster_ids": cluster_ids, "sizes": sizes, "survivors": survivors,
            "partitions": parts, "peak_bytes": budget.peak, "budget_bytes": budget.bytes, **figures}
