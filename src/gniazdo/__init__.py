"""gniazdo: build a national-language LLM end to end, Polish first."""

__version__ = "0.1.0"
