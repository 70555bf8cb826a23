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

Memory: the texts and every expert's signatures (~1.2 KB a document with the defaults). The out-of-core run
(band-partitioned signatures on disk) is the next step of this stage.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from gniazdo.config import Config, save_resolved
from gniazdo.corpus import read_documents
from gniazdo.corpus.base import ReaderOptions
from gniazdo.corpus.speakleash import SpeakLeashWriter
from gniazdo.dedup.clusters import choose_survivors, cluster_size_histogram, find_clusters, keep_scores
from gniazdo.dedup.run import NearDedupParams, Votes, vote
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


def dedup_corpus(cfg: DedupConfig) -> dict[str, Any]:
    t0 = time.perf_counter()
    out = Path(cfg.out)
    docs = list(read_documents(cfg.inputs, cfg.reader))
    votes = vote([d.text for d in docs], cfg.near)
    cluster_ids, sizes = find_clusters(votes.pairs[votes.accepted], len(docs))
    scores = keep_scores(cfg.keep, np.array([len(d.text) for d in docs]), [d.meta for d in docs])
    survivors = choose_survivors(cluster_ids, scores)
    kept, removed = _write(docs, cluster_ids, sizes, survivors, out, cfg.name)
    summary = {"documents": len(docs), "kept": kept, "removed": removed,
               "clusters_with_duplicates": int(np.sum(sizes > 1)), **_expert_report(votes),
               "cluster_sizes": {str(k): v for k, v in cluster_size_histogram(sizes).items()},
               "seconds": round(time.perf_counter() - t0, 3)}
    save_resolved(cfg, out)
    write_json_atomic(out / "dedup.json", summary)
    if cfg.report:
        plot_cluster_sizes(cluster_size_histogram(sizes), out / "cluster_sizes.png")
    return summary


def _write(docs: list[Document], cluster_ids: np.ndarray, sizes: np.ndarray, survivors: np.ndarray, out: Path,
           name: str) -> tuple[int, int]:
    main = SpeakLeashWriter(out, name, add_id=True)
    excluded = SpeakLeashWriter(out / "excluded" / "near_dup", name, add_id=True)
    kept = removed = 0
    try:
        for i, doc in enumerate(docs):
            size = int(sizes[cluster_ids[i]])
            if survivors[i] == i:
                if size > 1:
                    doc.meta["dup_cluster_id"] = doc.id  # a cluster is named by its survivor
                    doc.meta["dup_cluster_size"] = size
                main.write(doc)
                kept += 1
            else:
                doc.meta["duplicate_of"] = docs[survivors[i]].id
                excluded.write(doc)
                removed += 1
    except BaseException:
        main.abort()
        excluded.abort()
        raise
    main.close()
    excluded.close()
    return kept, removed


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
