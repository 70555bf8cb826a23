"""The Step interface: a step takes an iterator of Documents and yields Documents.

Three kinds, all configured by a pydantic ``Params`` model whose fields are the step's YAML keys:

* :class:`Step` — transforms or annotates documents (``run``).
* :class:`Filter` — keeps or drops each document (``keep``) and says *why* it dropped one; dropped documents
  go to ``excluded/<reason>/`` so nothing is silently lost.
* :class:`GlobalFilter` — a decision that needs the whole corpus (exact dedup): each document gets a key and a
  score in one pass, one document per key survives. The executor splits the pipeline there (datatrove's
  signature → decide → filter), so it stays exact with many workers (see ``pipeline/decide.py``).
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, ClassVar, Iterator

from gniazdo.config import Config
from gniazdo.document import Document
from gniazdo.errors import UserError

ExcludeFn = Callable[[Document, str], None]


class NoParams(Config):
    pass


class Step:
    """Base of every pipeline step. Subclasses set ``name``, ``Params`` and override :meth:`run`."""

    name: ClassVar[str] = ""
    Params: ClassVar[type[Config]] = NoParams

    def __init__(self, params: Config | None = None, **kwargs: Any) -> None:
        self.params = params if params is not None else self.Params(**kwargs)
        self.exclude: ExcludeFn = lambda doc, reason: None

    def run(self, docs: Iterator[Document]) -> Iterator[Document]:
        yield from docs

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params!r})"


class Filter(Step):
    """A step that drops documents. :meth:`keep` returns True to keep, or the reason (a short slug) to drop."""

    def keep(self, doc: Document) -> bool | str:
        raise NotImplementedError

    def run(self, docs: Iterator[Document]) -> Iterator[Document]:
        for doc in docs:
            verdict = self.keep(doc)
            if verdict is True:
                yield doc
            else:
                self.exclude(doc, verdict if isinstance(verdict, str) else self.name)


class GlobalFilter(Step):
    """Keeps one document per key across the whole corpus: the one with the highest :meth:`score`, the first
    in corpus order among equals. Subclasses define :meth:`key` (up to 16 bytes, e.g. a 128-bit hash)."""

    reason: ClassVar[str] = "duplicate"

    def key(self, doc: Document) -> bytes:
        raise NotImplementedError

    def score(self, doc: Document) -> float:
        return 0.0

    def mark_survivor(self, doc: Document, duplicates: int) -> None:
        """Annotate a kept document that had ``duplicates`` copies removed."""

    def mark_duplicate(self, doc: Document, survivor_id: str) -> None:
        """Annotate a removed copy (it goes to ``excluded/<reason>/``) with the id of the one kept."""

    def decide(self, prefixes: list, done) -> None:
        """The one global decision over all tasks' signatures (see ``pipeline/decide.py``): by default one
        survivor per key. A subclass may decide otherwise (near-duplicates: by a vote over pairs) as long as it
        writes the same per-task decision files."""
        from gniazdo.pipeline.decide import decide

        decide(prefixes, done)


_REGISTRY: dict[str, type[Step]] = {}


def register(cls: type[Step]) -> type[Step]:
    """Class decorator: make a step available to pipelines by its ``name``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    _REGISTRY[cls.name] = cls
    return cls


def registered_steps() -> dict[str, type[Step]]:
    import gniazdo.data  # noqa: F401  (importing the package registers the built-in steps)

    return dict(sorted(_REGISTRY.items()))


def step_class(name: str) -> type[Step]:
    """A step by registered name, or by import path ``package.module:Class`` for user-defined steps."""
    if ":" in name:
        module, _, attr = name.partition(":")
        try:
            cls = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as e:
            raise UserError(f"cannot import step '{name}': {e}") from None
        if not (isinstance(cls, type) and issubclass(cls, Step)):
            raise UserError(f"'{name}' is not a gniazdo Step class")
        return cls
    steps = registered_steps()
    if name not in steps:
        raise UserError(f"unknown step '{name}' (valid: {', '.join(steps)}, or module:Class)")
    return steps[name]
