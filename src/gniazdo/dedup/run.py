"""Voting over the three experts, in memory: candidates from every expert, every expert's verdict on every
candidate, the vote rule, clusters and survivors.

1. Each configured expert computes its signatures and proposes candidate pairs from its LSH bands.
2. The union of all proposals is scored by **every** expert directly from the signatures (an expert that did
   not propose a pair is asked about it anyway), giving one verdict per expert per pair.
3. The rule (``all`` / ``any`` / ``majority`` / an expression such as ``"minhash & (simhash | cosine)"``)
   accepts or rejects each pair; accepted pairs are joined into clusters (union-find) and the keep rule
   picks one survivor per cluster.

This module holds everything in memory (signatures: ~1 KB a document for MinHash at 128 permutations); the
out-of-core run with band-partitioned signatures on disk builds on the same pieces.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Sequence

import numpy as np
from pydantic import Field

from gniazdo.config import Config
from gniazdo.dedup.clusters import find_clusters
from gniazdo.dedup.cosine import CosineExpert, CosineParams
from gniazdo.dedup.expert import Expert
from gniazdo.dedup.lsh import candidate_pairs
from gniazdo.dedup.minhash import MinHashExpert, MinHashParams
from gniazdo.dedup.simhash import SimHashExpert, SimHashParams
from gniazdo.dedup.voting import VoteRule

ExpertName = Literal["minhash", "simhash", "cosine"]


class NearDedupParams(Config):
    experts: list[ExpertName] = Field(default_factory=lambda: ["minhash", "simhash", "cosine"], min_length=1)
    vote: str = "majority"
    minhash: MinHashParams = Field(default_factory=lambda: MinHashParams(threshold=0.5))
    # SimHash as a judge: k=12 bits catches edited copies; 4 bands keep its own proposals cheap (k ≤ 3 sure).
    simhash: SimHashParams = Field(default_factory=lambda: SimHashParams(max_distance=12, bands=4))
    cosine: CosineParams = Field(default_factory=CosineParams)
    max_bucket: int = Field(1000, ge=2)

    def build_experts(self) -> list[Expert]:
        classes = {"minhash": (MinHashExpert, self.minhash), "simhash": (SimHashExpert, self.simhash),
                   "cosine": (CosineExpert, self.cosine)}
        return [classes[name][0](classes[name][1]) for name in dict.fromkeys(self.experts)]


@dataclass
class Votes:
    """Every candidate pair with who proposed it, each expert's similarity and verdict, and the outcome."""

    pairs: np.ndarray  # (m, 2) int64, i < j
    proposed: dict[str, np.ndarray] = field(default_factory=dict)
    similarity: dict[str, np.ndarray] = field(default_factory=dict)
    verdict: dict[str, np.ndarray] = field(default_factory=dict)
    accepted: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    def expert_pairs(self, name: str) -> np.ndarray:
        """The pairs an expert alone would report: those it proposed and judged duplicate."""
        return self.pairs[self.proposed[name] & self.verdict[name]]

    def agreement(self) -> dict[tuple[str, str], float]:
        """Share of candidate pairs on which two experts give the same verdict."""
        names = list(self.verdict)
        return {(a, b): float(np.mean(self.verdict[a] == self.verdict[b])) if len(self.pairs) else 1.0
                for a in names for b in names}


def _merge_pairs(proposals: dict[str, np.ndarray], n: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Union of the experts' candidate pairs, and for each expert a mask of the pairs it proposed."""
    codes = {name: p[:, 0] * n + p[:, 1] for name, p in proposals.items()}
    union = np.unique(np.concatenate(list(codes.values()))) if codes else np.zeros(0, np.int64)
    pairs = np.stack([union // n, union % n], axis=1) if len(union) else np.zeros((0, 2), np.int64)
    return pairs, {name: np.isin(union, c) for name, c in codes.items()}


def vote(texts: Sequence[str], params: NearDedupParams | None = None) -> Votes:
    p = params or NearDedupParams()
    experts = p.build_experts()
    return vote_signatures(experts, {e.name: e.signatures(texts) for e in experts}, p.vote, p.max_bucket)


def vote_signatures(experts: list[Expert], sigs: dict[str, np.ndarray], rule: str, max_bucket: int = 1000,
                    involving: np.ndarray | None = None) -> Votes:
    """The vote over precomputed signatures; with ``involving`` (a bool mask of documents) only pairs that touch
    one of those documents are judged (an incremental run judges new documents, not old pairs again)."""
    vote_rule = VoteRule(rule, [e.name for e in experts])
    n = len(next(iter(sigs.values())))
    proposals = {e.name: candidate_pairs(e.band_keys(sigs[e.name]), max_bucket=max_bucket) for e in experts}
    if involving is not None:
        proposals = {k: p[involving[p[:, 0]] | involving[p[:, 1]]] for k, p in proposals.items()}
    pairs, proposed = _merge_pairs(proposals, n)
    votes = Votes(pairs, proposed)
    for e in experts:
        s = sigs[e.name]
        votes.similarity[e.name] = e.similarity(s[pairs[:, 0]], s[pairs[:, 1]]) if len(pairs) else np.zeros(0)
        votes.verdict[e.name] = np.asarray(e.is_duplicate(votes.similarity[e.name]), dtype=bool)
    votes.accepted = vote_rule.evaluate(votes.verdict) if len(pairs) else np.zeros(0, dtype=bool)
    return votes


def duplicate_pairs(texts: Sequence[str], threshold: float | None = None,
                    params: NearDedupParams | None = None) -> np.ndarray:
    """Accepted pairs (m, 2); ``threshold`` sets MinHash's Jaccard threshold (the benchmark's knob)."""
    p = params or NearDedupParams()
    if threshold is not None:
        p = p.model_copy(update={"minhash": p.minhash.model_copy(update={"threshold": threshold})})
    votes = vote(texts, p)
    return votes.pairs[votes.accepted]


def clusters(votes: Votes, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Cluster id (smallest member index) of every document, and sizes indexed by cluster id."""
    return find_clusters(votes.pairs[votes.accepted], n)
