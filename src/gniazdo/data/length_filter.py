"""Drop documents that are too short or too long, by characters or by words."""

from __future__ import annotations

import re

from pydantic import Field

from gniazdo.config import Config
from gniazdo.document import Document
from gniazdo.pipeline.step import Filter, register

_WORD = re.compile(r"\w+")


class LengthParams(Config):
    min_chars: int = Field(0, ge=0)
    max_chars: int | None = Field(None, ge=1)
    min_words: int = Field(0, ge=0)
    max_words: int | None = Field(None, ge=1)


@register
class LengthFilter(Filter):
    """Drop documents too short or too long: reasons too_short/too_long (chars), too_few_words/too_many_words."""

    name = "length_filter"
    Params = LengthParams

    def keep(self, doc: Document) -> bool | str:
        p: LengthParams = self.params
        n = len(doc.text)
        if n < p.min_chars:
            return "too_short"
        if p.max_chars is not None and n > p.max_chars:
            return "too_long"
        if p.min_words or p.max_words is not None:
            words = len(_WORD.findall(doc.text))
            if words < p.min_words:
                return "too_few_words"
            if p.max_words is not None and words > p.max_words:
                return "too_many_words"
        return True
