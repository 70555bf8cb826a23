"""Loading a pipeline YAML with overrides, validating its steps before any work starts."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from gniazdo.config import apply_overrides, read_yaml, validate
from gniazdo.errors import UserError
from gniazdo.pipeline.config import PipelineConfig, build_steps


def load_pipeline(path: str | Path, overrides: Sequence[str] = ()) -> PipelineConfig:
    data = apply_overrides(read_yaml(path), overrides)
    cfg = validate(PipelineConfig, data, source=str(path))
    try:
        build_steps(cfg.steps)
    except UserError as e:
        raise UserError(f"{path}: {e}") from None
    return cfg
