"""Generation throughput: gniazdo's engine vs transformers' ``generate`` on the same checkpoint.

    python bench/generate.py [--new-tokens 256] [--repeat 3] [--threads N] [--device cpu] [--dtype float32]

A model of a realistic small shape (6 layers, dim 384, 6 heads / 2 kv heads, ffn 1024, tied embeddings) with
the vocabulary of a tokenizer trained on the package's sample corpus (8k asked), randomly initialised and saved
as a Hugging Face folder. Both sides load that folder: ours with ``Engine`` (``from_pretrained`` + the
folder's tokenizer), theirs with ``AutoModelForCausalLM.from_pretrained``. Greedy decoding of exactly
--new-tokens tokens per prompt (ours: ``ignore_eos``; theirs: ``min_new_tokens``), at batch 1 (one prompt) and
batch 8 (eight prompts of different lengths: left padding and attention masks on both sides). The sides
alternate within each round; the best of --repeat rounds counts. Ours is timed end to end from text prompts to
completions with decoded text; theirs from tokenized tensors to output ids (its detokenization not counted).
--threads sets torch's CPU threads for both sides (default: torch's choice); on a shared machine one thread gives
steadier numbers, as a busy second core stalls every multi-threaded matrix product.
"same greedy tokens": the share of each row's tokens before the first disagreement between the sides.

Where ours gains. Per decode step transformers runs seven weight products per layer through MKL and
concatenates every layer's keys and values onto its DynamicCache, a copy of the whole cache per token (at
batch 8 about 30 % of its time). Ours writes into a preallocated cache in place, fuses q/k/v and gate/up (four
products per layer), needs no mask while rows decode in lock step (batch 1; the batch-8 rows have different
lengths and take one, as on the other side), and runs little Python per step. The weight products, most of
both sides' time, are where batch 1 and batch 8 differ:
- batch 1: each product is a matrix-vector one that streams the weights from memory; ours stores the wide
  weights column-major, which MKL's fp32 kernel streams about twice as fast
  (``gniazdo.infer.cpu_layout.cpu_decode_layout``);
- batch 8: eight rows; ours multiplies them through copies of the weights in oneDNN's blocked layout, about
  twice as fast as MKL on them (a step's products 3.9 vs 7.5 ms on one EPYC core;
  ``gniazdo.infer.engine.cpu_blocked_linears``), for a second copy of the weights in memory.
Where ours does not gain: the attention itself. Ours reads keys and values that the weights streamed since the
previous step have evicted from the CPU caches, while transformers' concatenation has just brought its own in,
so at batch 8 its attention kernel takes about 0.9 ms per step and ours 1.5 (the copy costs it 4.6). The prompt
pass (left-padded, one forward for all prompts) is alike on both sides. ``torch.compile`` of the decode step
was tried on CPU and was slower.

Ends with ``batch 1 ratio``, ``batch 8 ratio`` (ours/transformers tokens/s) and ``ratio: <the smaller of the
two>``: the headline, since the goal (1.5x) is to be met at both batch sizes.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this folder comes first on sys.path, and its tokenize.py would shadow the standard library's
# (which torch and linecache import): drop it.
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402

SHAPE = dict(dim=384, n_layers=6, n_heads=6, n_kv_heads=2, ffn_dim=1024, max_seq_len=1024)


def build(tmp: Path, vocab: int) -> Path:
    from gniazdo.model import Transformer, model_config, save_pretrained
    from gniazdo.resources import sample_path
    from gniazdo.tokenizer import TokenizerTrainConfig, train_tokenizer

    tok = train_tokenizer(TokenizerTrainConfig(corpus=[str(sample_path("corpus.jsonl"))], vocab_size=vocab,
                                               out=str(tmp / "tok"), progress=False))
    size = len(json.loads((tok / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"])
    torch.manual_seed(0)
    model = Transformer(model_config("tiny", vocab_size=size, **SHAPE))
    return save_pretrained(model, tmp / "model", tokenizer_dir=tok)


def prompts(n: int = 8) -> list[str]:
    """n openings of sample documents, 10 to 45 words long."""
    from gniazdo.resources import sample_path

    lines = sample_path("corpus.jsonl").read_text(encoding="utf-8").splitlines()
    texts = [json.loads(line)["text"] for line in lines[:n]]
    return [" ".join(t.split()[: 10 + 5 * i]) for i, t in enumerate(texts)]


def run_ours(engine, texts: list[str], new: int) -> tuple[float, list[list[int]]]:
    from gniazdo.infer import SamplingParams

    t0 = time.perf_counter()
    out = engine.generate(texts, SamplingParams(temperature=0, max_new_tokens=new, ignore_eos=True))
    dt = time.perf_counter() - t0
    assert all(c.completion_tokens == new for c in out)
    return dt, [c.token_ids for c in out]


def run_theirs(model, tokenizer, texts: list[str], new: int, device: str) -> tuple[float, list[list[int]]]:
    enc = tokenizer(texts, return_tensors="pt", padding=True).to(device)
    t0 = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(**enc, max_new_tokens=new, min_new_tokens=new, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    ids = out[:, enc["input_ids"].shape[1]:].tolist()
    assert all(len(x) == new for x in ids)
    return dt, ids


def agreement(a: list[list[int]], b: list[list[int]]) -> float:
    """Share of tokens before the first disagreement (per row), averaged: 1.0 = identical greedy outputs."""
    def prefix(x: list[int], y: list[int]) -> int:
        return next((i for i, (p, q) in enumerate(zip(x, y)) if p != q), len(x))
    return sum(prefix(x, y) / len(x) for x, y in zip(a, b)) / len(a)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--new-tokens", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--vocab-size", type=int, default=8000)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from gniazdo.infer import Engine

    dtype = getattr(torch, args.dtype)
    texts = prompts()
    with tempfile.TemporaryDirectory() as d:
        folder = build(Path(d), args.vocab_size)
        engine = Engine(folder, device=args.device, dtype=dtype)
        hf = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype).to(args.device).eval()
        tok = AutoTokenizer.from_pretrained(folder)
        tok.padding_side = "left"
        cfg = engine.model.cfg
        print(f"model: {cfg.n_layers} layers, dim {cfg.dim}, heads {cfg.n_heads}/{cfg.kv_heads}, ffn {cfg.ffn_dim}, "
              f"vocab {cfg.vocab_size}, {engine.model.num_params() / 1e6:.1f}M parameters, {args.dtype}")
        print(f"device: {args.device}, torch {torch.__version__} ({torch.get_num_threads()} threads), "
              f"{platform.processor() or platform.machine()}")
        print(f"prompt tokens: batch 1 {engine.count_tokens(texts[0])}, batch 8 "
              f"{min(map(engine.count_tokens, texts))}..{max(map(engine.count_tokens, texts))}; "
              f"{args.new_tokens} new tokens each, greedy")
        run_ours(engine, texts[:2], 8)  # warm-up: first-call allocations, lazy imports
        run_theirs(hf, tok, texts[:2], 8, args.device)
        best: dict[tuple[str, int], float] = {}
        same: dict[int, float] = {}
        for _ in range(args.repeat):
            for batch in (1, 8):
                ours_t, ours_ids = run_ours(engine, texts[:batch], args.new_tokens)
                theirs_t, theirs_ids = run_theirs(hf, tok, texts[:batch], args.new_tokens, args.device)
                for side, t in (("ours", ours_t), ("transformers", theirs_t)):
                    best[side, batch] = min(best.get((side, batch), float("inf")), t)
                same[batch] = agreement(ours_ids, theirs_ids)
    print("\n| batch | side | best s | tokens/s | same greedy tokens |")
    print("|---|---|---|---|---|")
    rate = {k: args.new_tokens * k[1] / v for k, v in best.items()}
    for batch in (1, 8):
        for side in ("ours", "transformers"):
            print(f"| {batch} | {side} | {best[side, batch]:.2f} | {rate[side, batch]:,.0f} | "
                  f"{same[batch]:.0%} |")
    ratios = {batch: rate["ours", batch] / rate["transformers", batch] for batch in (1, 8)}
    print()
    for batch, r in ratios.items():
        print(f"batch {batch} ratio: {r:.2f}")
    print(f"ratio: {min(ratios.values()):.2f}")


if __name__ == "__main__":
    main()
