"""Reference log-probs, computed once (ALLaMo's approach): preference training then holds only the policy.

For every pair of every split, the summed log-probability the reference model gives to the labelled tokens
(the answer and its end marker) of the chosen and the rejected sequence goes to ``ref_logps.npy`` (float64
[n, 2]) in the split folder, and ``meta.json``'s ``reference`` records which model produced them.

Two sources: a local model folder (:func:`compute_reference`, our :class:`~gniazdo.model.Transformer`) or an
OpenAI-compatible server such as vLLM (:func:`compute_reference_from_server`, ``/v1/completions`` with
``echo`` and ``logprobs``), for reference models too big for the training machine.
"""

from __future__ import annotations

import http.client
import json
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from gniazdo.errors import UserError
from gniazdo.fileio import atomic_open, write_json_atomic
from gniazdo.prefs.dataset import IGNORE, PreferenceDataset, read_meta
from gniazdo.shards.writer import sha256_of


DTYPES = ("float32", "bfloat16", "float16")


# -- shared ---------------------------------------------------------------------------------------------------
def _progress(enabled: bool):
    """A bar of sequences done (on stderr, only on a terminal)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=Console(stderr=True), disable=not (enabled and sys.stderr.isatty()), transient=False)


def _save(prepared: Path, logps: dict[str, np.ndarray], reference: dict[str, Any]) -> dict[str, Any]:
    """Write every split's ``ref_logps.npy`` then record the reference in meta.json (last: a crash in between
    leaves meta saying "no reference" or the old one, never one that does not match the arrays' source)."""
    meta = read_meta(prepared)
    meta["reference"] = None
    write_json_atomic(prepared / "meta.json", meta)
    for split, values in logps.items():
        with atomic_open(prepared / split / "ref_logps.npy", "wb") as f:
            np.save(f, values.astype(np.float64))
    meta["reference"] = reference
    write_json_atomic(prepared / "meta.json", meta)
    return meta


def _splits(prepared: Path) -> list[PreferenceDataset]:
    return [PreferenceDataset(prepared, s) for s in ("train", "val")]


def model_fingerprint(model_dir: Path) -> str:
    """sha256 of the weights file (one file), else of the shard index, else of config.json."""
    for name in ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                 "pytorch_model.bin.index.json", "config.json"):
        if (model_dir / name).is_file():
            return sha256_of(model_dir / name)
    raise UserError(f"{model_dir}: no model weights or config.json")


def check_tokenizer(model_dir: Path, meta: dict[str, Any]) -> None:
    """The reference must read the data with the tokenizer it was prepared with: compare tokenizer.json."""
    file = model_dir / "tokenizer.json"
    if not file.is_file():
        raise UserError(f"{model_dir}: no tokenizer.json, cannot check it is the tokenizer the data was "
                        f"prepared with ({meta['tokenizer']['path']})")
    if sha256_of(file) != meta["tokenizer"]["sha256"]:
        raise UserError(f"{file} differs from the tokenizer the data was prepared with "
                        f"({meta['tokenizer']['path']}); prepare the data with the model's tokenizer")


# -- a local model --------------------------------------------------------------------------------------------
def _batches(ds: PreferenceDataset, batch_size: int) -> Iterator[list[tuple[int, int, dict[str, np.ndarray]]]]:
    """(pair, 0 chosen / 1 rejected, sequence) in batches of similar length (sorted: less padding)."""
    lengths = ds.pairs[:, [1, 3]] - ds.pairs[:, [0, 2]]
    order = sorted(((i, j) for i in range(ds.n_pairs) for j in (0, 1)), key=lambda ij: -int(lengths[ij]))
    for k in range(0, len(order), batch_size):
        batch = []
        for i, j in order[k:k + batch_size]:
            batch.append((i, j, ds.pair(i)["chosen" if j == 0 else "rejected"]))
        yield batch


def sequence_logps(model, input_ids, labels) -> "torch.Tensor":  # noqa: F821 (torch is imported lazily)
    """Summed log-prob of the labelled tokens of each row: log-softmax in fp32 whatever the model's dtype."""
    import torch

    logits = model(input_ids)
    logp = torch.log_softmax(logits.float(), dim=-1)
    mask = labels != IGNORE
    picked = logp.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (picked.double() * mask).sum(-1)


def compute_reference(model_dir: str | Path, prepared_dir: str | Path, batch_size: int = 8,
                      dtype: str = "float32", device: str = "cpu", progress: bool = True) -> dict[str, Any]:
    """Run the reference model over every prepared pair; write ``ref_logps.npy`` per split; return meta.

    ``batch_size`` is in sequences (a pair is two). Rows are right-padded with the tokenizer's pad id and
    labelled -100 there: attention is causal, so padding after a sequence cannot change its log-probs.
    """
    import torch

    from gniazdo.model import from_pretrained

    model_dir, prepared = Path(model_dir), Path(prepared_dir)
    if batch_size < 1:
        raise UserError(f"batch_size must be positive, got {batch_size}")
    if dtype not in DTYPES:
        raise UserError(f"unknown dtype '{dtype}' (valid: {', '.join(DTYPES)})")
    meta = read_meta(prepared)
    check_tokenizer(model_dir, meta)
    model = from_pretrained(model_dir, dtype=getattr(torch, dtype), device=device)
    if model.cfg.vocab_size < meta["tokenizer"]["vocab_size"]:
        raise UserError(f"{model_dir}: vocab_size {model.cfg.vocab_size} is smaller than the tokenizer's "
                        f"{meta['tokenizer']['vocab_size']}")
    pad = meta["tokenizer"]["pad_id"]
    pad = 0 if pad is None else pad
    datasets = _splits(prepared)
    out: dict[str, np.ndarray] = {}
    with _progress(progress) as bar, torch.inference_mode():
        task = bar.add_task("reference log-probs", total=sum(2 * ds.n_pairs for ds in datasets))
        for ds in datasets:
            values = np.zeros((ds.n_pairs, 2), dtype=np.float64)
            for batch in _batches(ds, batch_size):
                width = max(len(seq["input_ids"]) for _, _, seq in batch)
                ids = np.full((len(batch), width), pad, dtype=np.int64)
                labels = np.full((len(batch), width), IGNORE, dtype=np.int64)
                for row, (_, _, seq) in enumerate(batch):
                    ids[row, :len(seq["input_ids"])] = seq["input_ids"]
                    labels[row, :len(seq["labels"])] = seq["labels"]
                logps = sequence_logps(model, torch.from_numpy(ids).to(device), torch.from_numpy(labels).to(device))
                for (i, j, _), v in zip(batch, logps.tolist()):
                    values[i, j] = v
                bar.advance(task, len(batch))
            out[ds.split] = values
    reference = {"model": str(model_dir), "sha256": model_fingerprint(model_dir), "dtype": dtype, "source": "model"}
    return _save(prepared, out, reference)


# -- an OpenAI-compatible server ------------------------------------------------------------------------------
_RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}


class _Retry(Exception):
    pass


def _one_line(text: str, limit: int = 200) -> str:
    line = (text.strip().splitlines() or [""])[0]
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _error_message(body: bytes) -> str:
    """The ``error.message`` (OpenAI style) or ``detail`` (FastAPI style) of an error body, else its first line."""
    text = body.decode("utf-8", "replace")
    try:
        data = json.loads(text)
    except ValueError:
        return _one_line(text)
    if isinstance(data, dict):
        err = data.get("error", data.get("detail", data.get("message")))
        if isinstance(err, dict):
            err = err.get("message", err)
        if err is not None:
            return _one_line(str(err))
    return _one_line(text)


def post_json(url: str, payload: dict[str, Any], api_key: str | None = None, timeout: float = 300.0,
              retries: int = 4, backoff: float = 1.0) -> dict[str, Any]:
    """POST JSON and return the JSON answer. Connection errors, timeouts, 429 and 5xx are retried with exponential
    backoff; any other HTTP error is a one-line UserError with the status and the server's message."""
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    data = json.dumps(payload).encode("utf-8")
    last = ""
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(backoff * 2 ** (attempt - 1))
        request = urllib.request.Request(url, data=data, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                body = response.read()
        except urllib.error.HTTPError as e:
            message = _error_message(e.read() or b"")
            if e.code in _RETRY_STATUS:
                last = f"HTTP {e.code}: {message}"
                continue
            raise UserError(f"{url}: HTTP {e.code} {e.reason}: {message}") from None
        except (OSError, http.client.HTTPException) as e:  # URLError, timeouts, resets, a body cut short
            reason = getattr(e, "reason", e)
            last = "timed out" if isinstance(reason, TimeoutError) else _one_line(str(reason))
            continue
        try:
            return json.loads(body)
        except ValueError:
            raise UserError(f"{url}: the answer is not JSON: {_one_line(body.decode('utf-8', 'replace'))}") from None
    raise UserError(f"{url}: failed after {retries + 1} attempts ({last})")


def answer_logp(choice: dict[str, Any], start: int, end: int, where: str) -> float:
    """Sum of the echoed prompt's token log-probs whose character offset lies in [start, end) (the answer)."""
    lp = choice.get("logprobs") or {}
    offsets, values = lp.get("text_offset"), lp.get("token_logprobs")
    if not isinstance(offsets, list) or not isinstance(values, list) or len(offsets) != len(values):
        raise UserError(f"{where}: the answer has no logprobs.text_offset / token_logprobs of equal length "
                        f"(does the server support echo with logprobs?)")
    picked = [v for off, v in zip(offsets, values) if start <= off < end]
    if not picked:
        raise UserError(f"{where}: no echoed token lies in the answer (characters {start}..{end})")
    if any(v is None for v in picked):
        raise UserError(f"{where}: the server gave no log-prob for a token of the answer")
    return float(sum(picked))


def _in_order(pool, fn, items: list, window: int) -> Iterator:
    """``fn`` over ``items`` on ``pool``, results in order, at most ``window`` in flight. Unlike ``pool.map`` it
    does not queue every request up front, so the first error stops the run instead of waiting for the rest."""
    from collections import deque

    pending: deque = deque()
    try:
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()


def compute_reference_from_server(url: str, model_name: str, prepared_dir: str | Path, api_key: str | None = None,
                                  batch_size: int = 8, concurrency: int = 4, timeout: float = 300.0,
                                  retries: int = 4, backoff: float = 1.0, progress: bool = True) -> dict[str, Any]:
    """Reference log-probs from an OpenAI-compatible server (vLLM, llama.cpp server...): each sequence's text
    (the rendered prompt + answer, from ``texts.jsonl``) is sent to ``{url}/v1/completions`` with ``echo`` and
    ``logprobs`` and no new tokens; the answer's log-prob is the sum over the echoed tokens that start inside
    the answer's characters. ``batch_size`` texts go in one request (a list prompt), ``concurrency`` requests
    at a time. The server tokenizes the text itself, so it must use the tokenizer the data was prepared with.
    """
    from concurrent.futures import ThreadPoolExecutor

    prepared = Path(prepared_dir)
    if batch_size < 1 or concurrency < 1:
        raise UserError("batch_size and concurrency must be positive")
    endpoint = url.rstrip("/")
    endpoint = endpoint if endpoint.endswith("/v1/completions") else endpoint.removesuffix("/v1") + "/v1/completions"
    datasets = _splits(prepared)

    def run(jobs: list[tuple[str, int, int]]) -> list[float]:
        # the texts already hold the template's special tokens: add_special_tokens false keeps vLLM from putting
        # a BOS in front (servers that do not know the field ignore it)
        payload = {"model": model_name, "prompt": [text for text, _, _ in jobs], "max_tokens": 0, "echo": True,
                   "logprobs": 1, "temperature": 0.0, "add_special_tokens": False}
        answer = post_json(endpoint, payload, api_key=api_key, timeout=timeout, retries=retries, backoff=backoff)
        choices = sorted(answer.get("choices") or [], key=lambda c: c.get("index", 0))
        if len(choices) != len(jobs):
            raise UserError(f"{endpoint}: {len(choices)} choices for {len(jobs)} prompts")
        return [answer_logp(c, a, b, endpoint) for c, (_, a, b) in zip(choices, jobs)]

    out: dict[str, np.ndarray] = {}
    with _progress(progress) as bar, ThreadPoolExecutor(concurrency) as pool:
        task = bar.add_task("reference log-probs", total=sum(2 * ds.n_pairs for ds in datasets))
        for ds in datasets:
            texts = ds.texts()
            if len(texts) != ds.n_pairs:
                raise UserError(f"{ds.path / 'texts.jsonl'}: {len(texts)} lines for {ds.n_pairs} pairs")
            jobs = [(t["prompt"] + t[side], len(t["prompt"]), len(t["prompt"]) + len(t[side]))
                    for t in texts for side in ("chosen", "rejected")]
            batches = [jobs[k:k + batch_size] for k in range(0, len(jobs), batch_size)]
            flat: list[float] = []
            for values in _in_order(pool, run, batches, window=concurrency):
                flat.extend(values)
                bar.advance(task, len(values))
            out[ds.split] = np.asarray(flat, dtype=np.float64).reshape(ds.n_pairs, 2)
    reference = {"model": model_name, "url": url, "sha256": None, "dtype": None, "source": "server"}
    return _save(prepared, out, reference)
