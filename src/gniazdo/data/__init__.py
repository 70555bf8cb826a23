"""Built-in pipeline steps, one module each. Importing this package registers them by name."""

from gniazdo.data import exact_dedup, length_filter  # noqa: F401
