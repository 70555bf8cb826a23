"""Fixtures of the server tests: one tiny checkpoint for the session, offline Hugging Face libraries."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A saved tiny model (1000-token vocabulary, context 512) with its tokenizer and chat template."""
    from infer import checkpoint

    return checkpoint(tmp_path_factory.mktemp("serve"))


@pytest.fixture(scope="session", autouse=True)
def offline():
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_DATASETS_OFFLINE", "1")
    mp.setenv("HF_HUB_OFFLINE", "1")
    mp.setenv("TOKENIZERS_PARALLELISM", "false")
    yield
    mp.undo()
