"""SpeakLeash quality grades (HIGH/MEDIUM/LOW) on the shared Polish corpora: books vs OSCAR web lines.

    python bench/quality_distribution.py [--chunk-chars 3000]

Books (Wolne Lektury, public domain) are cut into paragraph-aligned chunks of about ``--chunk-chars``
characters — SpeakLeash grades article-sized documents, and a whole novel as one document fails the
lexical-density band (distinct lemmas / words falls as a text grows). OSCAR lines are one document each.
Every document goes through normalize → metrics → quality. This is a report, not a race: no peer implements
SpeakLeash's rule, so there is no ratio line.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path
from typing import Iterable, Iterator

from gniazdo.corpus import read_documents
from gniazdo.corpus.base import ReaderOptions
from gniazdo.data.metrics import Metrics
from gniazdo.data.normalize import Normalize
from gniazdo.data.quality import Quality
from gniazdo.document import Document

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "pl" / "corpus"


def chunks(doc: Document, size: int) -> Iterator[Document]:
    """Paragraph-aligned pieces of at least ``size`` characters (the last may be shorter)."""
    part: list[str] = []
    n = k = 0
    for para in doc.text.split("\n\n"):
        part.append(para)
        n += len(para)
        if n >= size:
            yield Document(f"{doc.id}:{k}", "\n\n".join(part), {})
            part, n, k = [], 0, k + 1
    if part:
        yield Document(f"{doc.id}:{k}", "\n\n".join(part), {})


def grades(docs: Iterable[Document]) -> Counter:
    stream: Iterator[Document] = iter(docs)
    for step in (Normalize(), Metrics(), Quality()):
        stream = step.run(stream)
    return Counter(d.meta["quality"] for d in stream)


def row(name: str, counts: Counter, seconds: float) -> str:
    n = sum(counts.values())
    share = " | ".join(f"{counts[g] / n:.1%}" for g in ("HIGH", "MEDIUM", "LOW"))
    return f"| {name} | {n:,} | {share} | {n / seconds:,.0f} |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chunk-chars", type=int, default=3000)
    args = ap.parse_args()
    if not SHARED.exists():
        raise SystemExit(f"shared corpora not found: {SHARED}")
    print("| corpus | documents | HIGH | MEDIUM | LOW | docs/s |")
    print("|---|---:|---:|---:|---:|---:|")
    t0 = time.perf_counter()
    books = grades(c for b in read_documents([SHARED / "books"]) for c in chunks(b, args.chunk_chars))
    print(row(f"books, {args.chunk_chars}-char chunks", books, time.perf_counter() - t0))
    t0 = time.perf_counter()
    oscar = grades(read_documents([SHARED / "web" / "oscar_pl_small.txt"], ReaderOptions(txt_mode="lines")))
    print(row("OSCAR web lines", oscar, time.perf_counter() - t0))
    t0 = time.perf_counter()
    web = grades(read_documents([SHARED / "web" / "web_sample.jsonl"]))
    print(row("web_sample pages", web, time.perf_counter() - t0))


if __name__ == "__main__":
    main()
