"""The end-to-end demo on the built-in sample corpus, on CPU, in minutes. Each stage calls the stage's public
API in order; every later stage of gniazdo adds itself here."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from gniazdo.corpus.inspect import corpus_info
from gniazdo.pipeline import InputConfig, OutputConfig, PipelineConfig, run_pipeline
from gniazdo.resources import sample_path

# The data pipeline SpeakLeash-style: repair, anonymise, keep Polish, measure, grade, filter, deduplicate.
DEMO_STEPS: list[dict[str, Any]] = [
    {"step": "normalize"},
    {"step": "anonymize"},
    {"step": "language", "keep": ["pl"]},
    {"step": "metrics"},
    {"step": "quality"},
    {"step": "heuristics"},
    {"step": "exact_dedup", "keep": "quality"},
]


def demo_pipeline_config(out: Path, workers: int = 1) -> PipelineConfig:
    return PipelineConfig(
        input=InputConfig(paths=[str(sample_path("corpus.jsonl"))]),
        output=OutputConfig(path=str(out / "corpus"), name="sample",
                            info={"description": "gniazdo sample corpus after the demo pipeline",
                                  "license": "CC0-1.0", "sources": [{"name": "gniazdo-sample"}]}),
        steps=DEMO_STEPS,
        workers=workers,
    )


def run_demo(out: str | Path = "demo-out", workers: int = 1, fresh: bool = True,
             progress: bool = True) -> dict[str, Any]:
    """Run every demo stage; returns each stage's summary keyed by stage name."""
    from gniazdo.cli.report import console, print_pipeline_summary

    out = Path(out)
    if fresh and out.exists():
        shutil.rmtree(out)
    results: dict[str, Any] = {}
    t0 = time.perf_counter()

    console.rule("[bold]1. corpus → data pipeline (normalize, anonymize, language, metrics, quality, "
                 "heuristics, exact dedup)")
    cfg = demo_pipeline_config(out, workers)
    stats = run_pipeline(cfg, progress=progress)
    print_pipeline_summary(stats, cfg.output.path)
    quality = corpus_info(Path(cfg.output.path))["stats"].get("quality", {})
    console.print("quality of the kept documents: " + ", ".join(f"{k} {v:.0%}" for k, v in quality.items()))
    results["pipeline"] = {**stats, "quality": quality}

    console.rule(f"[bold]done in {time.perf_counter() - t0:.1f}s — outputs in {out}/")
    return results
