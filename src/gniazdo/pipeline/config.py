"""The pipeline YAML: ``input`` → ``steps`` → ``output``, and how many ``workers``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ByteSize, Field

from gniazdo.config import Config, validate
from gniazdo.corpus.base import ReaderOptions
from gniazdo.corpus.speakleash import DatasetInfo
from gniazdo.errors import UserError
from gniazdo.pipeline.step import Step, step_class


class InputConfig(ReaderOptions):
    paths: list[str] = Field(min_length=1)
    # Plain line-based files larger than this are split into byte-range tasks.
    task_size: ByteSize = ByteSize(64 * 1024 * 1024)


class OutputConfig(Config):
    path: str
    format: Literal["speakleash", "parquet", "jsonl"] = "speakleash"
    name: str = "corpus"
    shard_size: ByteSize | None = None  # uncompressed JSONL bytes per shard; None: one file per task
    excluded: bool = True  # write dropped documents to excluded/<reason>/
    info: DatasetInfo = DatasetInfo()


class PipelineConfig(Config):
    input: InputConfig
    output: OutputConfig
    steps: list[dict[str, Any]] = []
    workers: int = Field(default=1, ge=1)
    strict: bool = False  # stop at the first bad record instead of logging it to errors.jsonl

    def build_steps(self) -> list[Step]:
        return build_steps(self.steps)


def build_steps(specs: list[dict[str, Any]]) -> list[Step]:
    """``[{step: NAME, **params}]`` → Step objects; errors name the key as ``steps.N.key``."""
    steps = []
    for i, spec in enumerate(specs):
        if not isinstance(spec, dict) or "step" not in spec:
            raise UserError(f"steps.{i}: each step needs a 'step: NAME' key")
        params = {k: v for k, v in spec.items() if k != "step"}
        cls = step_class(str(spec["step"]))
        steps.append(cls(validate(cls.Params, params, prefix=f"steps.{i}.")))
    return steps
