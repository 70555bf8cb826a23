"""``gniazdo dedup``: near-duplicate removal over a whole corpus, in memory.

Reads the corpus, votes (:mod:`gniazdo.dedup.run`), clusters the accepted pairs, keeps one document per
cluster by the keep rule and writes:

    OUT/corpus.jsonl.zst (+ .manifest)    survivors; a survivor of a cluster gets meta.dup_cluster_id
                                          (its own id: clusters are named by their survivor) and
                                          meta.dup_cluster_size
    OUT/excluded/near_dup/                removed documents, meta.duplicate_of = their survivor's id
    OUT/dedup.json                        counts, per-expert pairs, agreement matrix, cluster-size histogram
    OUT/cluster_sizes.png                 the histogram (with --report)
    OUT/config.resolved.yaml

With ``index: DIR`` the corpus is also deduplicated against every corpus indexed before (their copies in the
new corpus are removed, ``dedup.json`` lists ``matched_earlier``: new id → earlier id) and its survivors are
added to the index (:mod:`gniazdo.dedup.index`).

Memory: the texts and every expert's signatures (~1.2 KB a document with the defaults, index included). The
out-of-core run (band-partitioned signatures on disk) is the next step of this stage.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterable

import numpy as np
from pydantic import Field

from gniazdo.config import Config, save_resolved
from gniazdo.corpus import read_documents
from gniazdo.corpus.base import ReaderOptions
from gniazdo.corpus.speakleash import SpeakLeashWriter
from gniazdo.dedup.clusters import choose_survivors, cluster_size_histogram, find_clusters, keep_scores
from gniazdo.dedup.index import DedupIndex
from gniazdo.dedup.run import NearDedupParams, Votes, vote_signatures
from gniazdo.document import Document
from gniazdo.fileio import write_json_atomic


class DedupConfig(Config):
    inputs: list[str] = Field(min_length=1)
    out: str
    reader: ReaderOptions = ReaderOptions()
    near: NearDedupParams = NearDedupParams()
    keep: str = "first"  # first | longest | quality | meta:KEY
    name: str = "corpus"
    report: bool = False
    index: str | None = None  # deduplicate against the corpora in this index too, then add the survivors
    memory_mb: float | None = Field(None, gt=0)  # set: the out-of-core run, memory bounded by this budget
    batch_docs: int | None = Field(None, ge=1)  # documents signed at a time out of core (None: from the budget)
    workers: int = Field(1, ge=1)  # processes signing batches in the out-of-core run


def dedup_corpus(cfg: DedupConfig) -> dict[str, Any]:
    if cfg.memory_mb is not None:
        return _dedup_out_of_core(cfg)
    return _dedup_in_memory(cfg)


def _dedup_out_of_core(cfg: DedupConfig) -> dict[str, Any]:
    from gniazdo.dedup.outofcore import dedup_out_of_core

    t0 = time.perf_counter()
    out = Path(cfg.out)
    index = None
    if cfg.index:
        index = DedupIndex(cfg.index, cfg.near)
        index.forget({d.id for d in read_documents(cfg.inputs, cfg.reader)})  # see _dedup_in_memory
    r = dedup_out_of_core(cfg, cfg.near.build_experts(), out, index)
    names = (index.ids[: r["old"]] if index is not None else []) + r["ids"]
    kept, matched = _write(read_documents(cfg.inputs, cfg.reader), r["old"], r["cluster_ids"], r["sizes"],
                           r["survivors"], names, out, cfg.name)
    summary = {"documents": r["n"], "kept": kept, "removed": r["n"] - kept, "indexed_before": r["old"],
               "matched_earlier": matched,
               "clusters_with_duplicates": int(np.sum(r["sizes"] > 1)),
               "cluster_sizes": {str(k): v for k, v in cluster_size_histogram(r["sizes"]).items()},
               "out_of_core": {k: r[k] for k in ("partitions", "peak_bytes", "budget_bytes", "candidate_records",
                                                 "accepted_records")},
               "seconds": round(time.perf_counter() - t0, 3)}
    save_resolved(cfg, out)
    write_json_atomic(out / "dedup.json", summary)
    if cfg.report:
        plot_cluster_sizes(cluster_size_histogram(r["sizes"]), out / "cluster_sizes.png")
    return summary


def _dedup_in_memory(cfg: DedupConfig) -> dict[str, Any]:
    t0 = time.perf_counter()
    out = Path(cfg.out)
    docs = list(read_documents(cfg.inputs, cfg.reader))
    experts = cfg.near.build_experts()
    index = DedupIndex(cfg.index, cfg.near) if cfg.index else None
    if index is not None:
        index.forget({d.id for d in docs})  # this corpus's own entries, from a run killed before it finished
    old = len(index) if index is not None else 0
    if old:
        index.restore(experts)  # e.g. cosine's idf from the first corpus: one vector space for all
    new_sigs = {e.name: e.signatures([d.text for d in docs]) for e in experts}
    sigs = {k: np.concatenate([index.signatures[k], v]) for k, v in new_sigs.items()} if old else new_sigs
    involving = np.r_[np.zeros(old, dtype=bool), np.ones(len(docs), dtype=bool)] if old else None
    votes = vote_signatures(experts, sigs, cfg.near.vote, cfg.near.max_bucket, involving)
    cluster_ids, sizes = find_clusters(votes.pairs[votes.accepted], old + len(docs))
    scores = keep_scores(cfg.keep, np.array([len(d.text) for d in docs]), [d.meta for d in docs])
    survivors = choose_survivors(cluster_ids, np.r_[np.full(old, np.inf), scores])  # indexed documents win
    names = (index.ids if old else []) + [d.id for d in docs]
    kept, matched = _write(docs, old, cluster_ids, sizes, survivors, names, out, cfg.name)
    if index is not None:
        keep = survivors[old:] == np.arange(old, old + len(docs))
        index.add(experts, [d.id for d, k in zip(docs, keep) if k], {k: v[keep] for k, v in new_sigs.items()})
    summary = {"documents": len(docs), "kept": kept, "removed": len(docs) - kept,
               "clusters_with_duplicates": int(np.sum(sizes > 1)), **_expert_report(votes),
               "cluster_sizes": {str(k): v for k, v in cluster_size_histogram(sizes).items()},
               "indexed_before": old, "matched_earlier": matched, "seconds": round(time.perf_counter() - t0, 3)}
    save_resolved(cfg, out)
    write_json_atomic(out / "dedup.json", summary)
    if cfg.report:
        plot_cluster_sizes(cluster_size_histogram(sizes), out / "cluster_sizes.png")
    return summary


def _write(docs: Iterable[Document], old: int, cluster_ids: np.ndarray, sizes: np.ndarray, survivors: np.ndarray,
           names: list[str], out: Path, name: str) -> tuple[int, dict[str, str]]:
    """Write the new documents (global indices ``old + j``): survivors to OUT, copies to excluded/near_dup/.
    Returns how many were kept and, for copies of indexed (earlier) documents, new id → earlier id."""
    main = SpeakLeashWriter(out, name, add_id=True)
    excluded = SpeakLeashWriter(out / "excluded" / "near_dup", name, add_id=True)
    kept, matched = 0, {}
    try:
        for j, doc in enumerate(docs):
            i = old + j
            if survivors[i] == i:
                if sizes[cluster_ids[i]] > 1:
                    doc.meta["dup_cluster_id"] = doc.id  # a cluster is named by its survivor
                    doc.meta["dup_cluster_size"] = int(sizes[cluster_ids[i]])
                main.write(doc)
                kept += 1
            else:
                doc.meta["duplicate_of"] = names[survivors[i]]
                if survivors[i] < old:
                    matched[doc.id] = names[survivors[i]]
                excluded.write(doc)
    except BaseException:
        main.abort()
        excluded.abort()
        raise
    main.close()
    excluded.close()
    return kept, matched


def _expert_report(votes: Votes) -> dict[str, Any]:
    names = list(votes.verdict)
    return {
        "candidate_pairs": int(len(votes.pairs)),
        "accepted_pairs": int(votes.accepted.sum()),
        "experts": {n: {"proposed": int(votes.proposed[n].sum()), "says_duplicate": int(votes.verdict[n].sum()),
                        "alone": int(len(votes.expert_pairs(n)))} for n in names},
        "agreement": {a: {b: round(v, 4) for (x, b), v in votes.agreement().items() if x == a} for a in names},
    }


def plot_cluster_sizes(histogram: dict[int, int], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display: write the file only
    import matplotlib.pyplot as plt

    sizes = sorted(k for k in histogram if k > 1)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.bar([str(s) for s in sizes], [histogram[s] for s in sizes], color="#b03a2e")
    ax.set_xlabel("cluster size (documents)")
    ax.set_ylabel("clusters")
    ax.set_title(f"near-duplicate clusters ({sum(histogram[s] for s in sizes)} with copies)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
