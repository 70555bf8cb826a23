"""A deterministic near-duplicate benchmark built from the shared Polish corpora.

    python bench/dedup_data.py [--n 3000] [--seed 0] [--threshold 0.7] [--out bench.jsonl]

Originals come from /work/shared/data/pl/corpus: the books cut into paragraph-aligned chunks of ~1,500–3,000
characters (the Wolne Lektury licence footer dropped, it is the same in every book), the web sample's texts of
at least 500 characters and SpeakLeash's benchmark_sm. Texts longer than 10,000 characters are cut at a
paragraph boundary so that a few huge pages do not dominate the running time.

For a fraction of the originals (30%) 1–3 edited copies are made, each with one kind of edit at one rate
(2%, 5%, 10%, 20%, 30%): word substitutions (words drawn from the corpus, frequency-weighted), deletions,
insertions, moved paragraphs, web boilerplate (menu / cookie / footer lines) around the text, or a mix of
substitutions, deletions and insertions. Every copy is labelled with its original and its exact word-5-gram
Jaccard to it.

Ground truth: a pair of documents is a duplicate when the exact Jaccard of their word-5-gram sets
(``gniazdo.dedup.shingles``) is at least ``threshold``. It is computed over **all** pairs of the final list —
not only original/copy — so two copies of one original, or two originals that happen to overlap, count too;
every method is scored on that one definition. All randomness comes from one ``random.Random(seed)``.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from gniazdo.dedup.shingles import ShingleParams, jaccard, shingle_hashes

DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "pl" / "corpus"
RATES = (0.02, 0.05, 0.10, 0.20, 0.30)
EDIT_KINDS = ("substitute", "delete", "insert", "shuffle", "boilerplate", "mixed")
MIN_CHARS, MAX_CHARS = 500, 10_000
CHUNK_MIN, CHUNK_MAX = 1_500, 3_000

_PARAGRAPH = re.compile(r"\n\s*\n")
_SENTENCE = re.compile(r"(?<=[.!?…])\s+")
# Lines of the kind a crawler keeps around an article; {n} and {d} are filled so copies do not all share them.
_BOILERPLATE = (
    "Strona główna | Aktualności | Wydarzenia | Kontakt",
    "Ta strona używa plików cookies w celu świadczenia usług na najwyższym poziomie.",
    "Dalsze korzystanie ze strony oznacza, że zgadzasz się na ich użycie. Akceptuję",
    "Polityka prywatności | Regulamin | Mapa strony",
    "© {y} Wszelkie prawa zastrzeżone.",
    "Zaloguj się | Zarejestruj się | Moje konto",
    "Udostępnij: Facebook Twitter LinkedIn E-mail",
    "Zapisz się do naszego newslettera i otrzymuj najnowsze informacje.",
    "Przejdź do treści Menu Szukaj",
    "Opublikowano: {d}.{m}.{y} | Komentarze ({n})",
    "Czytaj także: {w} {w} {w}",
    "Koszyk (0) | Ulubione | Pomoc",
    "Wyświetleń: {n}",
    "Tagi: {w}, {w}, {w}",
)


@dataclass
class Bench:
    """The benchmark with its labels; ``truth`` holds pairs (i, j), i < j, of indices into ``texts``."""

    texts: list[str]
    original: list[int]  # index (in texts) of the original a copy was made from; -1 for an original
    kind: list[str]  # edit kind of a copy; "" for an original
    rate: list[float]  # edit rate of a copy; 0.0 for an original
    jaccard: list[float]  # exact Jaccard to its original; 1.0 for an original
    truth: set[tuple[int, int]] = field(default_factory=set)


# ---------------------------------------------------------------- originals


def paragraphs(text: str) -> list[str]:
    return [p.strip() for p in _PARAGRAPH.split(text) if p.strip()]


def chunk_book(text: str, rng: random.Random, lo: int = CHUNK_MIN, hi: int = CHUNK_MAX) -> list[str]:
    """Consecutive paragraphs joined until each chunk reaches a random target length in [lo, hi]."""
    chunks, current, size, target = [], [], 0, rng.randint(lo, hi)
    for p in paragraphs(text):
        current.append(p)
        size += len(p) + 2
        if size >= target:
            chunks.append("\n\n".join(current))
            current, size, target = [], 0, rng.randint(lo, hi)
    return chunks  # the short tail is dropped: it is below the chunk size


def cap_length(text: str, max_chars: int = MAX_CHARS) -> str:
    """The text cut after the last paragraph that ends within ``max_chars`` (or hard-cut if none does)."""
    if len(text) <= max_chars:
        return text
    cut = text.rfind("\n\n", 0, max_chars)
    return text[:cut] if cut > 0 else text[:max_chars]


def _book_body(text: str) -> str:
    end = text.find("\n-----\n")  # Wolne Lektury put their licence footer after this line
    return text[:end] if end > 0 else text


def load_pool(corpus: Path, rng: random.Random) -> list[str]:
    """Candidate originals from the shared corpus folder, in a fixed order (files sorted)."""
    from gniazdo.corpus import read_documents

    needed = [corpus / "books", corpus / "web" / "web_sample.jsonl", corpus / "spichlerz" / "benchmark_sm.jsonl.zst"]
    missing = [str(p) for p in needed if not p.exists()]
    if missing:
        raise SystemExit(f"shared corpus not found: {', '.join(missing)} (this benchmark needs the shared data)")
    pool: list[str] = []
    for book in sorted(needed[0].glob("*.txt")):
        pool += chunk_book(_book_body(book.read_text(encoding="utf-8")), rng)
    with open(needed[1], encoding="utf-8") as f:
        pool += [json.loads(line)["text"] for line in f if line.strip()]
    pool += [d.text for d in read_documents([needed[2]])]
    return [cap_length(t) for t in pool if len(t) >= MIN_CHARS]


def load_texts(paths: Sequence[str | Path]) -> list[str]:
    """Candidate originals from any corpus files gniazdo reads (e.g. the packaged sample, for tests)."""
    from gniazdo.corpus import read_documents

    return [cap_length(d.text) for d in read_documents(paths) if len(d.text) >= MIN_CHARS]


# ---------------------------------------------------------------- edits


def _edit_words(text: str, rng: random.Random, vocab: Sequence[str], sub: float, dele: float, ins: float) -> str:
    """Word-level edits, paragraph by paragraph (paragraph breaks are kept; other whitespace becomes a space)."""
    out = []
    for para in paragraphs(text):
        words = []
        for w in para.split():
            r = rng.random()
            if r < dele:
                continue
            words.append(rng.choice(vocab) if r < dele + sub else w)
            if rng.random() < ins:
                words.append(rng.choice(vocab))
        out.append(" ".join(words))
    return "\n\n".join(p for p in out if p)


def _move_units(text: str, rng: random.Random, rate: float) -> str:
    """Move round(rate * units) paragraphs (sentences if there are fewer than 4 paragraphs), at least one."""
    units, sep = paragraphs(text), "\n\n"
    if len(units) < 4:
        units, sep = [s for s in _SENTENCE.split(text) if s.strip()], " "
    if len(units) < 2:
        return text
    for _ in range(max(1, round(rate * len(units)))):
        unit = units.pop(rng.randrange(len(units)))
        units.insert(rng.randrange(len(units) + 1), unit)
    return sep.join(units)


def _boilerplate_line(rng: random.Random, vocab: Sequence[str]) -> str:
    line = rng.choice(_BOILERPLATE)
    while "{w}" in line:
        line = line.replace("{w}", rng.choice(vocab), 1)
    return line.format(n=rng.randint(1, 999), d=rng.randint(1, 28), m=rng.randint(1, 12), y=rng.randint(2005, 2024))


def _add_boilerplate(text: str, rng: random.Random, rate: float, vocab: Sequence[str]) -> str:
    """Header and footer lines adding about ``rate`` × the text's word count."""
    budget = max(1, round(rate * len(text.split())))
    header: list[str] = []
    footer: list[str] = []
    while budget > 0:
        line = _boilerplate_line(rng, vocab)
        (header if rng.random() < 0.5 else footer).append(line)
        budget -= len(line.split())
    return "\n".join([*header, text, *footer]).strip()


def edit(text: str, kind: str, rate: float, rng: random.Random, vocab: Sequence[str]) -> str:
    """One edited copy of ``text``: ``kind`` is one of EDIT_KINDS, ``rate`` the share of words (or units) hit."""
    if kind == "substitute":
        return _edit_words(text, rng, vocab, rate, 0.0, 0.0)
    if kind == "delete":
        return _edit_words(text, rng, vocab, 0.0, rate, 0.0)
    if kind == "insert":
        return _edit_words(text, rng, vocab, 0.0, 0.0, rate)
    if kind == "mixed":
        return _edit_words(text, rng, vocab, rate / 3, rate / 3, rate / 3)
    if kind == "shuffle":
        return _move_units(text, rng, rate)
    if kind == "boilerplate":
        return _add_boilerplate(text, rng, rate, vocab)
    raise ValueError(f"unknown edit kind {kind!r}; one of {EDIT_KINDS}")


# ---------------------------------------------------------------- truth


def similar_pairs(sets: Sequence[np.ndarray], threshold: float, max_df: int = 100) -> set[tuple[int, int]]:
    """All pairs (i, j), i < j, whose exact Jaccard is ≥ threshold, without comparing all n² pairs.

    An inverted index (sort all shingles) gives, for every pair sharing a shingle held by at most ``max_df``
    documents, the number of such shingles. Shingles held by more documents (boilerplate, set phrases) are
    left out of the index but not of the bound: |A ∩ B| ≤ shared + min(frequent_A, frequent_B), and
    J ≤ |A ∩ B| / max(|A|, |B|). Only pairs whose bound reaches the threshold get an exact Jaccard; a pair
    sharing no rare shingle at all could only reach it if it were mostly frequent shingles, which a
    document of hundreds of shingles is not (such a pair would need J ≤ frequent / max size).
    """
    n = len(sets)
    sizes = np.array([len(s) for s in sets], dtype=np.int64)
    hashes = np.concatenate(sets) if n else np.zeros(0, np.uint64)
    docs = np.repeat(np.arange(n, dtype=np.int64), sizes)
    order = np.argsort(hashes, kind="stable")  # stable: docs stay ascending inside a run of one hash
    h, d = hashes[order], docs[order]
    starts = np.flatnonzero(np.r_[True, h[1:] != h[:-1]]) if len(h) else np.zeros(0, np.int64)
    df = np.repeat(np.diff(np.r_[starts, len(h)]), np.diff(np.r_[starts, len(h)]))
    frequent = np.bincount(d[df > max_df], minlength=n)
    keep = (df >= 2) & (df <= max_df)
    h, d = h[keep], d[keep]
    keys = []
    for off in range(1, max_df):  # entry k and k+off share a hash ⇒ (d[k], d[k+off]) share a shingle
        same = h[:-off] == h[off:]
        if not same.any():
            break  # no run is longer than off, so none is longer than off + 1
        keys.append(d[:-off][same] * n + d[off:][same])
    if not keys:
        return set()
    pair_keys, shared = np.unique(np.concatenate(keys), return_counts=True)
    i, j = pair_keys // n, pair_keys % n
    bound = (shared + np.minimum(frequent[i], frequent[j])) / np.maximum(np.maximum(sizes[i], sizes[j]), 1)
    maybe = bound >= threshold
    return {(a, b) for a, b in zip(i[maybe].tolist(), j[maybe].tolist()) if jaccard(sets[a], sets[b]) >= threshold}


# ---------------------------------------------------------------- build


def build_labelled(seed: int = 0, n_originals: int = 3000, dup_fraction: float = 0.3, max_copies: int = 3,
                   rates: Sequence[float] = RATES, kinds: Sequence[str] = EDIT_KINDS, threshold: float = 0.7,
                   pool: Sequence[str] | None = None, corpus: Path = DEFAULT_CORPUS,
                   shingles: ShingleParams | None = None) -> Bench:
    """The benchmark with all its labels (see the module docstring); ``pool`` replaces the shared corpus."""
    rng = random.Random(seed)
    pool = list(pool) if pool is not None else load_pool(corpus, rng)
    originals = rng.sample(pool, min(n_originals, len(pool)))
    vocab = " ".join(originals).split()  # frequency-weighted: a common word is drawn more often, as in edits
    items: list[tuple[str, int, str, float]] = [(t, k, "", 0.0) for k, t in enumerate(originals)]
    for k in rng.sample(range(len(originals)), round(dup_fraction * len(originals))):
        for _ in range(rng.randint(1, max_copies)):
            kind, rate = rng.choice(list(kinds)), rng.choice(list(rates))
            items.append((edit(originals[k], kind, rate, rng, vocab), k, kind, rate))
    rng.shuffle(items)
    # each item carries its original's number k; after the shuffle, find where each original landed
    position = {k: pos for pos, (_, k, kind, _) in enumerate(items) if kind == ""}
    sets = [shingle_hashes(t, shingles) for t, *_ in items]
    original = [-1 if kind == "" else position[k] for _, k, kind, _ in items]
    jac = [1.0 if o < 0 else jaccard(sets[p], sets[o]) for p, o in enumerate(original)]
    return Bench(texts=[t for t, *_ in items], original=original, kind=[k for _, _, k, _ in items],
                 rate=[r for *_, r in items], jaccard=jac, truth=similar_pairs(sets, threshold))


def build(seed: int = 0, n_originals: int = 3000, dup_fraction: float = 0.3, max_copies: int = 3,
          rates: Sequence[float] = RATES, kinds: Sequence[str] = EDIT_KINDS, threshold: float = 0.7,
          pool: Sequence[str] | None = None, corpus: Path = DEFAULT_CORPUS) -> tuple[list[str], set[tuple[int, int]]]:
    """``(texts, truth_pairs)``: the shuffled documents and the pairs (i, j), i < j, with Jaccard ≥ threshold."""
    b = build_labelled(seed, n_originals, dup_fraction, max_copies, rates, kinds, threshold, pool, corpus)
    return b.texts, b.truth


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=3000, help="originals")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dup-fraction", type=float, default=0.3)
    ap.add_argument("--threshold", type=float, default=0.7)
    ap.add_argument("--corpus", default=str(DEFAULT_CORPUS))
    ap.add_argument("--out", help="write the documents with their labels as JSONL")
    args = ap.parse_args()
    b = build_labelled(args.seed, args.n, args.dup_fraction, threshold=args.threshold, corpus=Path(args.corpus))
    copies = [k for k, o in enumerate(b.original) if o >= 0]
    print(f"documents: {len(b.texts)} ({len(b.texts) - len(copies)} originals, {len(copies)} copies); "
          f"truth pairs (J ≥ {args.threshold}): {len(b.truth)}")
    for kind in EDIT_KINDS:
        row = [f"{np.mean([b.jaccard[k] for k in copies if b.kind[k] == kind and b.rate[k] == r] or [np.nan]):.2f}"
               for r in RATES]
        print(f"  mean J {kind:<12}" + " ".join(f"{r:>4.0%}:{v}" for r, v in zip(RATES, row)))
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            for k, t in enumerate(b.texts):
                f.write(json.dumps({"id": k, "text": t, "original": b.original[k], "kind": b.kind[k],
                                    "rate": b.rate[k], "jaccard": b.jaccard[k]}, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    sys.exit(main())
