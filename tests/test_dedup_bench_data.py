"""The near-duplicate benchmark builder (bench/dedup_data.py), on the packaged sample corpus."""

from __future__ import annotations

import importlib.util
import itertools
import random
import sys
from pathlib import Path

import numpy as np
import pytest

from gniazdo.dedup.shingles import jaccard, shingle_hashes
from gniazdo.resources import sample_path

_SPEC = importlib.util.spec_from_file_location("dedup_data", Path(__file__).parents[1] / "bench" / "dedup_data.py")
dd = importlib.util.module_from_spec(_SPEC)
sys.modules["dedup_data"] = dd  # dataclasses look their module up there
_SPEC.loader.exec_module(dd)


@pytest.fixture(scope="module")
def pool() -> list[str]:
    texts = dd.load_texts([sample_path("corpus.jsonl")])
    assert len(texts) > 100 and min(map(len, texts)) >= dd.MIN_CHARS
    return texts


def test_same_seed_same_benchmark(pool):
    a = dd.build_labelled(seed=3, n_originals=40, dup_fraction=0.5, pool=pool)
    b = dd.build_labelled(seed=3, n_originals=40, dup_fraction=0.5, pool=pool)
    assert a.texts == b.texts and a.truth == b.truth and a.original == b.original and a.jaccard == b.jaccard
    c = dd.build_labelled(seed=4, n_originals=40, dup_fraction=0.5, pool=pool)
    assert c.texts != a.texts
    texts, truth = dd.build(seed=3, n_originals=40, dup_fraction=0.5, pool=pool)
    assert texts == a.texts and truth == a.truth


def test_labels_and_truth(pool):
    b = dd.build_labelled(seed=1, n_originals=50, dup_fraction=0.4, threshold=0.7, pool=pool)
    copies = [k for k, o in enumerate(b.original) if o >= 0]
    assert len(b.texts) - len(copies) == 50 and 20 <= len(copies) <= 60
    assert copies != list(range(50, len(b.texts)))  # shuffled: the copies are not all at the end
    sets = [shingle_hashes(t) for t in b.texts]
    for k in copies:
        o = b.original[k]
        assert b.original[o] == -1 and b.kind[k] in dd.EDIT_KINDS and b.rate[k] in dd.RATES
        assert b.jaccard[k] == pytest.approx(jaccard(sets[k], sets[o]))
        assert ((min(k, o), max(k, o)) in b.truth) == (b.jaccard[k] >= 0.7)
    # the inverted-index truth equals brute force over every pair
    brute = {(i, j) for i, j in itertools.combinations(range(len(sets)), 2) if jaccard(sets[i], sets[j]) >= 0.7}
    assert b.truth == brute and len(brute) >= 5


@pytest.mark.parametrize("kind", ["substitute", "delete", "insert", "mixed", "boilerplate"])
def test_higher_rate_lower_jaccard(pool, kind):
    rng, vocab = random.Random(0), " ".join(pool).split()
    texts = pool[:15]
    means = []
    for rate in dd.RATES:
        means.append(np.mean([jaccard(shingle_hashes(t), shingle_hashes(dd.edit(t, kind, rate, rng, vocab)))
                              for t in texts]))
    assert all(a > b for a, b in zip(means, means[1:])), means
    assert means[0] > 0.75 and means[-1] < means[0] - 0.1


def test_shuffle_keeps_words_and_moves_units(pool):
    text = "\n\n".join(pool[:3])  # many paragraphs
    moved = dd.edit(text, "shuffle", 0.3, random.Random(0), [])
    assert sorted(moved.split()) == sorted(text.split()) and moved != text


def test_book_chunks_are_paragraph_aligned():
    text = "\n\n".join(f"Akapit {k} " + "słowo " * 60 for k in range(200))
    chunks = dd.chunk_book(text, random.Random(0))
    assert len(chunks) > 10
    assert all(dd.CHUNK_MIN <= len(c) <= dd.CHUNK_MAX + 500 for c in chunks)
    assert all(c.startswith("Akapit") for c in chunks)
    assert dd.cap_length("a" * 20 + "\n\n" + "b" * 20, 30) == "a" * 20
