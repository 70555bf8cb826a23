"""Built-in pipeline steps, one module each. Importing this package registers them by name."""

from gniazdo.data import (  # noqa: F401
    anonymize,
    exact_dedup,
    heuristics,
    language,
    length_filter,
    metrics,
    near_dedup,
    normalize,
    quality,
)
