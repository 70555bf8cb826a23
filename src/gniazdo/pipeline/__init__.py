"""The pipeline engine: reader → steps → writer, with per-step stats, workers and resume."""

from gniazdo.pipeline.config import InputConfig, OutputConfig, PipelineConfig, build_steps
from gniazdo.pipeline.executor import run_pipeline
from gniazdo.pipeline.step import Filter, GlobalFilter, Step, register, registered_steps

__all__ = ["PipelineConfig", "InputConfig", "OutputConfig", "build_steps", "run_pipeline", "Step", "Filter",
           "GlobalFilter", "register", "registered_steps"]
