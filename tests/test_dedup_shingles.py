from __future__ import annotations

import numpy as np

from gniazdo.dedup.shingles import ShingleParams, jaccard, normalize, shingle_hashes


def test_normalize_folds_case_punctuation_and_optionally_diacritics():
    assert normalize("  Ala, ma KOTA!!\n\nI psa…  ") == "ala ma kota i psa"
    assert normalize("Żółć łąki", fold_diacritics=True) == "zolc laki"
    assert normalize("Żółć łąki") == "żółć łąki"


def test_shingles_are_word_ngrams_insensitive_to_punctuation_and_case():
    a = shingle_hashes("Ala ma kota, a kot ma Alę. Pies też jest w domu.")
    b = shingle_hashes("ala ma kota a kot ma alę pies też jest w domu")
    assert np.array_equal(a, b) and len(a) == 8  # 12 words → 8 distinct 5-grams
    assert a.dtype == np.uint64 and np.all(a[:-1] < a[1:])  # unique and sorted


def test_ngram_order_matters_and_short_texts_get_one_shingle():
    assert not np.array_equal(shingle_hashes("a b c d e"), shingle_hashes("e d c b a"))
    assert len(shingle_hashes("dwa słowa")) == 1 and len(shingle_hashes("")) == 0
    assert len(shingle_hashes("a b c d e f", ShingleParams(n=2))) == 5


def test_exact_jaccard():
    a = shingle_hashes("jeden dwa trzy cztery pięć sześć siedem osiem", ShingleParams(n=2))
    b = shingle_hashes("jeden dwa trzy cztery pięć sześć siedem dziewięć", ShingleParams(n=2))
    assert jaccard(a, b) == 6 / 8
    assert jaccard(a, a) == 1.0 and jaccard(np.zeros(0, np.uint64), np.zeros(0, np.uint64)) == 1.0
