"""Inference: generation with a KV cache, sampling, streaming, continuous batching, and the chat loop.

    from gniazdo.infer import Engine, SamplingParams
    engine = Engine("out/export")
    print(engine.generate(["Stolica Polski to"], SamplingParams(temperature=0))[0].text)
"""

from gniazdo.infer.engine import (
    Completion, ContextLengthError, DecodeBatch, Engine, Event, IncrementalDecoder, InvalidRequest, Request,
    StopText,
)
from gniazdo.infer.sampling import InvalidSamplingParams, SamplingParams, sample

__all__ = [
    "Engine",
    "SamplingParams",
    "InvalidSamplingParams",
    "Completion",
    "ContextLengthError",
    "InvalidRequest",
    "DecodeBatch",
    "Event",
    "Request",
    "IncrementalDecoder",
    "StopText",
    "sample",
]
