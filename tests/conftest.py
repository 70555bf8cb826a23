from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "pl"
BENCHMARK_SM = SHARED / "corpus" / "spichlerz" / "benchmark_sm.jsonl.zst"


@pytest.fixture(scope="session", autouse=True)
def hf_offline():
    """No test fetches from the Hub: Hugging Face libraries offline (a missing local file fails at once instead
    of waiting on the network), tokenizers without its fork warning."""
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_DATASETS_OFFLINE", "1")
    mp.setenv("HF_HUB_OFFLINE", "1")
    mp.setenv("TOKENIZERS_PARALLELISM", "false")
    yield
    mp.undo()


def needs_shared(path: Path):
    return pytest.mark.skipif(not path.exists(), reason=f"shared data not present: {path}")


def write_jsonl(path: Path, records: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n")
    return path


@pytest.fixture
def no_proxy(monkeypatch):
    """Requests to 127.0.0.1 go straight to the test's server, whatever proxy the environment sets."""
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@contextmanager
def serving(server: Any) -> Iterator[Any]:
    """Run an ``http.server`` server on a daemon thread for the block; shut down and closed after."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
