"""Fixtures of the server tests: one tiny checkpoint for the session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A saved tiny model (1000-token vocabulary, context 512) with its tokenizer and chat template."""
    from infer import checkpoint

    return checkpoint(tmp_path_factory.mktemp("serve"))
