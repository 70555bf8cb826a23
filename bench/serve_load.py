"""Server throughput under concurrent clients: what dynamic batching gains over one request at a time.

    python bench/serve_load.py [--model DIR] [--requests 32] [--max-tokens 64] [--clients 1,4,16] [--threads N]
                               [--device cpu]

Without --model, a checkpoint of bench/generate.py's small shape (6 layers, dim 384, 6 heads / 2 kv heads, ffn
1024, a tokenizer trained on the package's sample corpus) is built and saved in a temporary folder. The server
runs in a subprocess (``gniazdo serve`` on 127.0.0.1, a free port, --max-batch = the largest client count) and
is warmed up with a few requests. Then, for each level of concurrency, that many clients (asyncio + httpx, one
connection each) send --requests completions in all, each client starting its next request when its previous
one ends: prompts are openings of the sample documents, ``max_tokens`` --max-tokens, temperature 0.8 with a
per-request seed, and ``ignore_eos: true`` (a gniazdo extension field) so that every request generates exactly
--max-tokens tokens and the levels do the same work. Reported per level: generated tokens per second over the
wall time of the level, and the p50 / p95 latency of one request (send to last byte).

With one client the server decodes one sequence per step; with 16, up to 16 requests share each step's forward
pass (the worker thread admits new requests between steps), so tokens/s grows until the matrix products stop
being bound by reading the weights. Latency grows too: each step does more work. One run, no repeats: the
numbers move with whatever else the machine is doing (--threads sets the server's CPU threads).
Ends with `ratio: <tokens/s at the most clients / tokens/s at 1 client>`: the batching gain.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this folder comes first on sys.path, and its tokenize.py would shadow the standard library's.
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import httpx  # noqa: E402

def _bench_module(name: str):
    """A sibling script as a module, loaded by path (this folder is off sys.path, see above)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"bench_{name}", Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build(tmp: Path, vocab: int) -> Path:
    """bench/generate.py's checkpoint: the same shape and tokenizer, so the figures can be read side by side."""
    return _bench_module("generate").build(tmp, vocab)


def prompts(n: int = 16) -> list[str]:
    from gniazdo.resources import sample_path

    lines = sample_path("corpus.jsonl").read_text(encoding="utf-8").splitlines()
    return [" ".join(json.loads(line)["text"].split()[:12 + 2 * (i % 8)]) for i, line in enumerate(lines[:n])]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: Path, port: int, max_batch: int, threads: int | None, device: str) -> subprocess.Popen:
    env = dict(os.environ, TOKENIZERS_PARALLELISM="false")
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    cmd = [sys.executable, "-m", "gniazdo", "serve", "--model", f"bench={model}", "--port", str(port),
           "--max-batch", str(max_batch), "--max-queue", "1024", "--device", device]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited: {proc.stderr.read()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("the server did not start within 120 s")


async def level(url: str, clients: int, total: int, max_tokens: int, texts: list[str]) -> dict[str, float]:
    """``clients`` concurrent clients sending ``total`` requests in all; tokens/s and latency percentiles."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(total):
        queue.put_nowait(i)
    latencies: list[float] = []
    tokens = 0

    async def client() -> None:
        nonlocal tokens
        async with httpx.AsyncClient(base_url=url, timeout=600) as c:
            while not queue.empty():
                i = queue.get_nowait()
                body = {"model": "bench", "prompt": texts[i % len(texts)], "max_tokens": max_tokens,
                        "temperature": 0.8, "seed": i, "ignore_eos": True}
                t0 = time.perf_counter()
                r = await c.post("/v1/completions", json=body)
                latencies.append(time.perf_counter() - t0)
                r.raise_for_status()
                tokens += r.json()["usage"]["completion_tokens"]

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    wall = time.perf_counter() - t0
    latencies.sort()
    p95 = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))]
    return {"requests": total, "tokens": tokens, "seconds": wall, "tokens_per_s": tokens / wall,
            "p50": latencies[len(latencies) // 2], "p95": p95}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="A Hugging Face folder (default: build the small shape).")
    ap.add_argument("--requests", type=int, default=32, help="Requests per level.")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--clients", default="1,4,16", help="Concurrency levels, comma-separated.")
    ap.add_argument("--vocab-size", type=int, default=8000)
    ap.add_argument("--threads", type=int, default=None, help="CPU threads of the server.")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    levels = [int(x) for x in args.clients.split(",")]
    texts = prompts()
    with tempfile.TemporaryDirectory() as d:
        model = Path(args.model) if args.model else build(Path(d), args.vocab_size)
        port = free_port()
        server = start_server(model, port, max(levels), args.threads, args.device)
        url = f"http://127.0.0.1:{port}"
        try:
            card = httpx.get(url + "/v1/models").json()["data"][0]
            print(f"model: {model} (context {card['max_model_len']}), {args.requests} requests per level, "
                  f"{args.max_tokens} tokens each (ignore_eos), temperature 0.8, server max_batch {max(levels)}")
            asyncio.run(level(url, 2, 4, 8, texts))  # warm-up
            results = {n: asyncio.run(level(url, n, args.requests, args.max_tokens, texts)) for n in levels}
        finally:
            server.terminate()
            server.wait(30)
    print("\n| clients | requests | tokens | seconds | tokens/s | p50 latency s | p95 latency s |")
    print("|---|---|---|---|---|---|---|")
    for n, r in results.items():
        print(f"| {n} | {r['requests']} | {r['tokens']} | {r['seconds']:.2f} | {r['tokens_per_s']:,.0f} | "
              f"{r['p50']:.2f} | {r['p95']:.2f} |")
    print(f"\nratio: {results[max(levels)]['tokens_per_s'] / results[min(levels)]['tokens_per_s']:.2f}")


if __name__ == "__main__":
    main()
