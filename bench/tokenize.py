"""Tokenisation throughput vs HF datasets, and fertility of our tokenizer vs a plain BPE and reference tokenizers.

    python bench/tokenize.py [--vocab-size 32000] [--workers 2]

(a) Throughput: the shared Polish corpus (books and web text) split into 8 JSONL files; `gniazdo tokenize`
    (workers processes, token shards) vs `datasets.load_dataset("json").map(tokenizer, batched=True,
    num_proc=workers)` writing Arrow with `save_to_disk`, both with the same tokenizer (ours, trained below).
(b) Fertility (tokens per \\w+ word) on held-out text: two books left out of training, and the last 10% of the web
    sample: our tokenizer (`gniazdo tokenizer train`: NFC, Polish-aware pre-tokenisation, byte-level BPE) vs a plain BPE
    trained with `tokenizers` defaults on the same text, and the reference tokenizers in ../shared/data/tokenizers.
Ends with `ratio: <ours/peer>` of throughput (documents per second, end to end).
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is named like the standard library's `tokenize` (as the issue names it); run as a script its folder
# comes first on sys.path and would shadow the real module for everything imported below (pandas, inspect...).
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
HELD_OUT_BOOKS = ("lalka-tom-pierwszy.txt", "sklepy-cynamonowe.txt")


def corpus_split(tmp: Path) -> tuple[list[Path], list[Path], list[str]]:
    """Training files, held-out files, and 8 JSONL shards of everything (for throughput)."""
    from gniazdo.corpus import read_documents

    books = sorted((SHARED / "pl" / "corpus" / "books").glob("*.txt"))
    web = [d.text for d in read_documents([SHARED / "pl" / "corpus" / "web" / "web_sample.jsonl"])]
    cut = int(len(web) * 0.9)
    (tmp / "train").mkdir()
    (tmp / "held").mkdir()
    for b in books:
        shutil.copy(b, tmp / ("held" if b.name in HELD_OUT_BOOKS else "train") / b.name)
    for name, texts in (("train/web.jsonl", web[:cut]), ("held/web.jsonl", web[cut:])):
        (tmp / name).write_text("\n".join(json.dumps({"text": t}, ensure_ascii=False) for t in texts))
    all_texts = [d.text for d in read_documents([tmp / "train", tmp / "held"])]
    chunks = []
    for k in range(8):
        path = tmp / "through" / f"part{k}.jsonl"
        path.parent.mkdir(exist_ok=True)
        path.write_text("\n".join(json.dumps({"id": f"{k}-{i}", "text": t}, ensure_ascii=False)
                                  for i, t in enumerate(all_texts[k::8])))
        chunks.append(path)
    return [tmp / "train"], [tmp / "held"], [str(c) for c in chunks]


def train_ours(train: list[Path], out: Path, vocab: int) -> Path:
    from gniazdo.tokenizer import TokenizerTrainConfig, train_tokenizer

    return train_tokenizer(TokenizerTrainConfig(corpus=[str(p) for p in train], vocab_size=vocab, out=str(out),
                                                progress=False))


def train_plain(train: list[Path], out: Path, vocab: int) -> Path:
    from tokenizers import ByteLevelBPETokenizer

    from gniazdo.corpus import read_documents

    tok = ByteLevelBPETokenizer()
    tok.train_from_iterator((d.text for d in read_documents(train)), vocab_size=vocab)
    out.mkdir(parents=True, exist_ok=True)
    tok.save(str(out / "tokenizer.json"))
    return out


def throughput(tok: Path, files: list[str], tmp: Path, workers: int) -> dict[str, float]:
    from datasets import load_dataset
    from transformers import PreTrainedTokenizerFast

    from gniazdo.shards import tokenize_corpus

    n = sum(1 for f in files for _ in open(f, encoding="utf-8"))
    t0 = time.perf_counter()
    tokenize_corpus(tok, files, tmp / "ours", val_fraction=0.0, workers=workers)
    ours = time.perf_counter() - t0
    hf_tok = PreTrainedTokenizerFast(tokenizer_file=str(tok / "tokenizer.json"))
    t0 = time.perf_counter()
    ds = load_dataset("json", data_files=files, split="train", cache_dir=str(tmp / "hf-cache"))
    ds = ds.map(lambda b: {"input_ids": hf_tok(b["text"])["input_ids"]}, batched=True, num_proc=workers,
                remove_columns=["text", "id"])
    ds.save_to_disk(str(tmp / "peer"))
    peer = time.perf_counter() - t0
    return {"docs": n, "ours_s": ours, "peer_s": peer}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vocab-size", type=int, default=32000)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    if not (SHARED / "pl" / "corpus").exists():
        raise SystemExit(f"shared corpus not found: {SHARED / 'pl' / 'corpus'}")
    from gniazdo.tokenizer.stats import markdown_table, tokenizer_stats

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        train, held, through = corpus_split(tmp)
        ours = train_ours(train, tmp / "ours-tok", args.vocab_size)
        plain = train_plain(train, tmp / "plain-bpe", args.vocab_size)
        refs = [p for p in (SHARED / "tokenizers" / n for n in ("bielik-v3-apt4", "mistral-7b-v0.1", "polish-gpt2-xl",
                                                                  "llama-2", "qwen3")) if p.exists()]
        gpt2 = SHARED / "tokenizers" / "gpt-2" / "tokenizer.from-gguf.json"
        compare = [str(ours), str(plain), *map(str, refs), *([str(gpt2)] if gpt2.exists() else [])]
        for name, target in (("held-out books", [str(p) for p in sorted(held[0].glob("*.txt"))]),
                             ("held-out web", [str(held[0] / "web.jsonl")])):
            print(f"\nfertility on {name}")
            print(markdown_table(tokenizer_stats(compare, target)))
        r = throughput(ours, through, tmp, args.workers)
    ours_rate, peer_rate = r["docs"] / r["ours_s"], r["docs"] / r["peer_s"]
    print(f"\nthroughput, {r['docs']:,} documents, {args.workers} processes:")
    print(f"  gniazdo tokenize            {r['ours_s']:6.2f} s  {ours_rate:8,.0f} docs/s")
    print(f"  datasets.map + save_to_disk {r['peer_s']:6.2f} s  {peer_rate:8,.0f} docs/s")
    print(f"ratio: {ours_rate / peer_rate:.2f}")


if __name__ == "__main__":
    main()
