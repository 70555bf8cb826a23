"""The ``near_dedup`` pipeline step: near-duplicates by three experts and a vote, global across the run.

A :class:`GlobalFilter` whose decision is not one survivor per key but the vote of :mod:`gniazdo.dedup.run`:
the step splits the pipeline there (as ``exact_dedup`` does), then one process reads every document that
reached it, votes on the candidate pairs of all experts, clusters the accepted pairs and keeps one survivor per
cluster by ``keep`` (``first``, ``longest``, ``quality``, ``meta:KEY``). Survivors with copies get
``meta.dup_cluster_id`` (the survivor's own id) and ``meta.dup_cluster_size``; removed copies go to
``excluded/near_dup/`` with ``meta.duplicate_of``. The decision holds the texts in memory (as
``gniazdo dedup`` does); put ``exact_dedup`` first so exact copies never reach it.

    - step: near_dedup
      vote: majority            # or all, any, "minhash & (simhash | cosine)"
      keep: quality
      cosine: {threshold: 0.85}
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gniazdo.corpus.jsonl import JsonlReader
from gniazdo.data.survivors import KeepRuleParams, SurvivorFilter
from gniazdo.dedup.clusters import choose_survivors, find_clusters
from gniazdo.dedup.run import NearDedupParams, vote
from gniazdo.document import Document
from gniazdo.pipeline.decide import task_sizes, write_decisions
from gniazdo.pipeline.step import register


class NearDedupStepParams(NearDedupParams, KeepRuleParams):
    pass


@register
class NearDedup(SurvivorFilter):
    """Drop near-duplicates: MinHash, SimHash and cosine experts combined by a vote; one survivor per cluster."""

    name = "near_dedup"
    reason = "near_dup"
    Params = NearDedupStepParams

    def key(self, doc: Document) -> bytes:
        return b""  # no key: the decision below votes on pairs instead

    def mark_survivor(self, doc: Document, duplicates: int) -> None:
        doc.meta["dup_cluster_id"] = doc.id
        doc.meta["dup_cluster_size"] = duplicates + 1

    def decide(self, prefixes: list[Path], done: Path) -> None:
        if done.exists():
            return
        texts = [d.text for p in prefixes for d in JsonlReader(p.with_suffix(".jsonl.zst")).read()]
        scores = np.concatenate([np.load(p.with_suffix(".sig.npz"))["scores"] for p in prefixes]) if prefixes \
            else np.zeros(0)
        votes = vote(texts, self.params)
        cluster_ids, sizes = find_clusters(votes.pairs[votes.accepted], len(texts))
        survivor = choose_survivors(cluster_ids, scores)
        write_decisions(prefixes, task_sizes(prefixes), survivor, sizes[cluster_ids] - 1, done)
