"""The Open PL LLM Leaderboard tasks as lm-evaluation-harness YAMLs.

This folder is an lm-eval *include path*: ``lm_eval --include_path <this folder> --tasks polish_mc`` or
``TaskManager(include_path=TASKS_DIR)``. The prompts, choices, gold mappings, splits and metrics follow
SpeakLeash's fork of lm-evaluation-harness (the leaderboard's engine); ``utils.py`` holds the few functions the
YAMLs call. Datasets default to the Hugging Face Hub ones the leaderboard uses; ``gniazdo eval --data-dir``
switches every task to local JSONL files in the same schema (see ``gniazdo.eval.runner``).
"""

from pathlib import Path

TASKS_DIR = Path(__file__).resolve().parent
SAMPLE_DATA_DIR = TASKS_DIR / "sample"  # a few hand-written documents per task, for the offline demo

__all__ = ["TASKS_DIR", "SAMPLE_DATA_DIR"]
