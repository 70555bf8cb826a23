"""What the two dedup steps share: the keep rule that picks a survivor, and how removed copies are marked."""

from __future__ import annotations

import numpy as np
from pydantic import field_validator

from gniazdo.config import Config
from gniazdo.dedup.clusters import keep_scores
from gniazdo.document import Document
from gniazdo.errors import UserError
from gniazdo.pipeline.step import GlobalFilter


class KeepRuleParams(Config):
    keep: str = "first"  # first | longest | quality | meta:KEY (see gniazdo.dedup.clusters.keep_scores)

    @field_validator("keep")
    @classmethod
    def _known_rule(cls, rule: str) -> str:
        try:
            keep_scores(rule, np.zeros(0), [])  # an unknown rule fails here, before any work starts
        except UserError as e:
            raise ValueError(str(e)) from None  # so the config error names the key
        return rule


class SurvivorFilter(GlobalFilter):
    """A global filter whose survivor is chosen by ``params.keep`` and whose copies point to it."""

    def score(self, doc: Document) -> float:
        return float(keep_scores(self.params.keep, np.array([len(doc.text)]), [doc.meta])[0])

    def mark_duplicate(self, doc: Document, survivor_id: str) -> None:
        doc.meta["duplicate_of"] = survivor_id
