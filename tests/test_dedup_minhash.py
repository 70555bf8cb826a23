"""MinHash-LSH expert and the shared LSH helpers: band choice, band keys, candidate pairs, end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

import gniazdo.dedup.minhash as minhash
from gniazdo.dedup.lsh import band_hashes, candidate_pairs, candidate_probability, optimal_bands
from gniazdo.dedup.minhash import MinHashExpert, MinHashParams, find_duplicates
from gniazdo.dedup.shingles import jaccard, shingle_hashes
from gniazdo.resources import sample_path

WARTA = ("Warta to rzeka w zachodniej i środkowej Polsce, najdłuższy prawy dopływ Odry i trzecia co do długości "
         "rzeka kraju. Jej długość wynosi około ośmiuset kilometrów, a dorzecze obejmuje znaczną część "
         "Wielkopolski, ziemi łódzkiej i Śląska. Nad Wartą leżą między innymi Poznań, Gorzów Wielkopolski, "
         "Konin, Sieradz i Częstochowa. W dolnym biegu rzeka tworzy szeroką dolinę z licznymi starorzeczami, "
         "łąkami i lasami łęgowymi, które są ostoją ptaków wodno-błotnych i chronione są w parku narodowym.")
# The same paragraph with a few words changed and one clause dropped (a typical near duplicate).
WARTA_EDITED = ("Warta to rzeka w zachodniej i środkowej Polsce, najdłuższy prawy dopływ Odry i trzecia co do "
                "długości rzeka kraju. Jej długość wynosi mniej więcej ośmiuset kilometrów, a dorzecze obejmuje "
                "znaczną część Wielkopolski, ziemi łódzkiej i Śląska. Nad Wartą leżą między innymi Poznań, "
                "Gorzów Wielkopolski, Konin i Częstochowa. W dolnym biegu rzeka tworzy szeroką dolinę z licznymi "
                "starorzeczami, łąkami i lasami łęgowymi, które są ostoją ptaków wodno-błotnych.")
PIEROGI = ("Pierogi ruskie przygotowuje się z ciasta z mąki, wody i odrobiny oleju, które wałkuje się cienko i "
           "wycina szklanką krążki. Farsz to ugotowane ziemniaki przeciśnięte przez praskę, twaróg półtłusty i "
           "cebula zeszklona na maśle, doprawione solą i świeżo mielonym pieprzem. Pierogi gotuje się w osolonej "
           "wodzie kilka minut od wypłynięcia i podaje polane masłem ze skwarkami.")


def _exact(a: str, b: str) -> float:
    return jaccard(shingle_hashes(a), shingle_hashes(b))


# --- optimal_bands ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("threshold, num_perm, expected", [(0.8, 128, (9, 13)), (0.7, 128, (14, 9)),
                                                           (0.5, 128, (25, 5)), (0.9, 256, (9, 28))])
def test_optimal_bands_known_values(threshold, num_perm, expected):
    # The values datasketch's quad-based search gives for the same weights (checked against it below).
    assert optimal_bands(threshold, num_perm) == expected


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7, 0.8, 0.9])
def test_optimal_bands_s_curve_is_steep_at_threshold(threshold):
    b, r = optimal_bands(threshold, 128)
    assert b * r <= 128
    assert 0.25 < candidate_probability(threshold, b, r) < 0.75
    assert candidate_probability(threshold - 0.2, b, r) < 0.1  # well below: rarely a candidate
    assert candidate_probability(min(threshold + 0.2, 1.0), b, r) > 0.97  # well above: almost surely


def test_optimal_bands_weights_trade_false_positives_for_negatives():
    b_fp, r_fp = optimal_bands(0.7, 128, fp_weight=0.9, fn_weight=0.1)
    b_fn, r_fn = optimal_bands(0.7, 128, fp_weight=0.1, fn_weight=0.9)
    # Penalising false positives moves the S-curve right (lower candidate probability at 0.6).
    assert candidate_probability(0.6, b_fp, r_fp) < candidate_probability(0.6, b_fn, r_fn)


def test_optimal_bands_matches_datasketch():
    lsh = pytest.importorskip("datasketch.lsh")
    for threshold, num_perm in [(0.75, 128), (0.6, 64), (0.85, 100)]:
        assert optimal_bands(threshold, num_perm) == lsh._optimal_param(threshold, num_perm, 0.5, 0.5)


def test_optimal_bands_rejects_bad_threshold():
    with pytest.raises(ValueError):
        optimal_bands(1.0, 128)


# --- band_hashes -----------------------------------------------------------------------------------------

def test_band_hashes_shape_and_collisions():
    rng = np.random.default_rng(0)
    sigs = rng.integers(0, 2**63, size=(4, 12), dtype=np.uint64)
    sigs[1] = sigs[0]
    sigs[2] = sigs[0]
    sigs[2, 5] += np.uint64(1)  # column 5 lies in band 1 of (3 bands × 4 rows)
    keys = band_hashes(sigs, bands=3, rows=4)
    assert keys.shape == (4, 3) and keys.dtype == np.uint64
    assert (keys[0] == keys[1]).all()
    assert list(keys[0] == keys[2]) == [True, False, True]
    assert not (keys[3] == keys[0]).any()


def test_band_hashes_mix_in_band_index_and_order():
    sigs = np.array([[7, 8, 7, 8, 8, 7]], dtype=np.uint64)
    keys = band_hashes(sigs, bands=3, rows=2)
    assert keys[0, 0] != keys[0, 1]  # same values, different band
    assert keys[0, 0] != keys[0, 2]  # same values in another order


def test_band_hashes_ignores_columns_beyond_bands_times_rows():
    sigs = np.arange(20, dtype=np.uint64).reshape(2, 10)
    cut = sigs.copy()
    cut[:, 9] = 0
    assert (band_hashes(sigs, 3, 3) == band_hashes(cut, 3, 3)).all()
    with pytest.raises(ValueError):
        band_hashes(sigs, 4, 3)


# --- candidate_pairs -------------------------------------------------------------------------------------

def test_candidate_pairs_unique_sorted_over_columns():
    keys = np.array([[1, 9], [2, 9], [1, 5], [3, 5], [1, 8]], dtype=np.uint64)
    pairs = candidate_pairs(keys)
    assert pairs.dtype == np.int64
    assert pairs.tolist() == [[0, 1], [0, 2], [0, 4], [2, 3], [2, 4]]


def test_candidate_pairs_star_caps_large_buckets():
    # Column 0: a bucket of 5 (docs 1..5) over the cap of 3, and a bucket of 3 (docs 0, 6, 7) at the cap.
    keys = np.array([[0], [1], [1], [1], [1], [1], [0], [0]], dtype=np.uint64)
    pairs = candidate_pairs(keys, max_bucket=3)
    star = [[1, 2], [1, 3], [1, 4], [1, 5]]
    full = [[0, 6], [0, 7], [6, 7]]
    assert pairs.tolist() == sorted(star + full)
    assert len(candidate_pairs(keys, max_bucket=5)) == 10 + 3  # uncapped: all pairs of both buckets


def test_candidate_pairs_no_pairs():
    assert candidate_pairs(np.arange(6, dtype=np.uint64).reshape(3, 2)).shape == (0, 2)
    assert candidate_pairs(np.zeros((0, 4), dtype=np.uint64)).shape == (0, 2)


# --- MinHash signatures ----------------------------------------------------------------------------------

def test_estimate_close_to_exact_jaccard_for_near_duplicates():
    expert = MinHashExpert(num_perm=128)
    sigs = expert.signatures([WARTA, WARTA_EDITED, PIEROGI, WARTA])
    exact = _exact(WARTA, WARTA_EDITED)
    assert 0.4 < exact < 0.9  # a real near duplicate, not a copy
    est = expert.similarity(sigs[[0, 0, 0]], sigs[[1, 2, 3]])
    assert abs(est[0] - exact) <= 0.1
    assert est[1] < 0.05  # unrelated texts
    assert est[2] == 1.0  # identical texts
    assert sigs.shape == (4, 128) and sigs.dtype == np.uint64


def test_estimate_error_matches_theory_over_many_pairs():
    words = PIEROGI.split() * 3
    rng = np.random.default_rng(3)
    texts = [" ".join(w if rng.random() > 0.08 else "zmiana" for w in words) for _ in range(30)]
    errors = []
    for seed in range(1, 21):  # the pairs share text 0, so one seed's errors are correlated: average seeds
        expert = MinHashExpert(num_perm=128, seed=seed)
        sigs = expert.signatures(texts)
        shingles = expert.shingles(texts)
        exact = np.array([jaccard(shingles[0], shingles[i]) for i in range(1, 30)])
        errors.append(expert.similarity(sigs[np.zeros(29, dtype=int)], sigs[1:]) - exact)
    # Standard error of the estimate is sqrt(J(1-J)/128) <= 0.045; the RMSE must be of that order.
    assert np.sqrt(np.mean(np.square(errors))) < 0.06
    assert abs(np.mean(errors)) < 0.02  # unbiased


def test_signatures_are_deterministic_and_seeded():
    texts = [WARTA, PIEROGI]
    a = MinHashExpert(seed=7).signatures(texts)
    b = MinHashExpert(seed=7).signatures(texts)
    c = MinHashExpert(seed=8).signatures(texts)
    assert (a == b).all()
    assert not (a == c).any()


def test_signatures_do_not_depend_on_batching(monkeypatch):
    texts = [WARTA, "", PIEROGI, WARTA_EDITED, "krótki tekst"] * 3
    whole = MinHashExpert().signatures(texts)
    monkeypatch.setattr(minhash, "_CHUNK", 256)  # forces many document batches and permutation blocks
    assert (MinHashExpert().signatures(texts) == whole).all()
    single = np.vstack([MinHashExpert().signatures([t]) for t in texts])
    assert (single == whole).all()


def test_empty_document_signature():
    expert = MinHashExpert(num_perm=32)
    sigs = expert.signatures(["", "... !!!", WARTA])
    assert (sigs[0] == np.iinfo(np.uint64).max).all()
    sims = expert.similarity(sigs[[0, 0]], sigs[[1, 2]])
    assert sims.tolist() == [1.0, 0.0]  # empties match each other (exact Jaccard 1) and nothing else


def test_params_band_shape_and_validation():
    assert MinHashParams(fn_weight=0.5).band_shape() == (9, 13)  # datasketch's choice at equal weights
    assert MinHashParams().band_shape() == (10, 12)  # missed pairs weigh 0.6
    assert MinHashParams(bands=16).band_shape() == (16, 8)
    assert MinHashParams(rows=5).band_shape() == (25, 5)
    assert MinHashParams(bands=10, rows=10).band_shape() == (10, 10)
    with pytest.raises(ValueError):
        MinHashParams(bands=16, rows=9)
    with pytest.raises(ValueError):
        MinHashParams(unknown=1)


# --- find_duplicates -------------------------------------------------------------------------------------

def _borderline_pair() -> tuple[str, str]:
    """Two texts with exact Jaccard just under 0.5."""
    words = (PIEROGI + " " + WARTA).split()
    edited = list(words)
    for i in range(0, len(edited), 13):  # each change breaks the 5 shingles over it
        edited[i] = "inaczej"
    return " ".join(words), " ".join(edited)


def test_verify_removes_false_candidate():
    a, b = _borderline_pair()
    exact = _exact(a, b)
    assert 0.35 < exact < 0.5
    texts = [a, b]
    # Few permutations make the estimate noisy: find a seed whose estimate crosses the 0.5 threshold.
    seed = next(s for s in range(200)
                if len(find_duplicates(MinHashExpert(num_perm=16, threshold=0.5, seed=s), texts)[0]))
    pairs, sims = find_duplicates(MinHashExpert(num_perm=16, threshold=0.5, seed=seed), texts)
    assert pairs.tolist() == [[0, 1]] and sims[0] >= 0.5
    pairs, sims = find_duplicates(MinHashExpert(num_perm=16, threshold=0.5, seed=seed, verify=True), texts)
    assert pairs.shape == (0, 2) and sims.shape == (0,)


def test_verify_keeps_true_duplicates_with_exact_similarity():
    texts = [WARTA, PIEROGI, WARTA_EDITED, WARTA]
    pairs, sims = find_duplicates(MinHashExpert(threshold=0.5, verify=True), texts)
    assert pairs.tolist() == [[0, 2], [0, 3], [2, 3]]
    assert sims[1] == 1.0
    assert sims[0] == pytest.approx(_exact(WARTA, WARTA_EDITED))


def _sample_corpus():
    docs = [json.loads(line) for line in sample_path("corpus.jsonl").read_text(encoding="utf-8").splitlines()]
    truth = [json.loads(line) for line in sample_path("ground_truth.jsonl").read_text(encoding="utf-8").splitlines()]
    index = {d["id"]: i for i, d in enumerate(docs)}
    exact, near = set(), set()
    for t in truth:
        for key, bucket in (("duplicate_of", exact), ("near_duplicate_of", near)):
            if t[key]:
                i, j = index[t["id"]], index[t[key]]
                bucket.add((min(i, j), max(i, j)))
    return [d["text"] for d in docs], exact, near


@pytest.mark.parametrize("threshold, min_recall", [(0.7, 0.45), (0.5, 0.9)])  # near-copies: Jaccard 0.6-0.83
def test_find_duplicates_on_sample_corpus(threshold, min_recall):
    # Measured (5-word shingles, num_perm 128): threshold 0.8 → P 1.00 R 0.44, 0.7 → P 1.00 R 0.60,
    # 0.5 → P 1.00 R 0.96. The sample's near duplicates have exact Jaccard 0.60–0.83, so a high threshold
    # finds the exact copies and only the closest near copies.
    texts, exact, near = _sample_corpus()
    pairs, sims = find_duplicates(MinHashExpert(threshold=threshold), texts)
    found = set(map(tuple, pairs.tolist()))
    truth = exact | near
    precision = len(found & truth) / len(found)
    recall = len(found & truth) / len(truth)
    assert precision >= 0.95
    assert recall >= min_recall
    assert exact <= found  # every verbatim copy is found
    assert (sims >= threshold).all()
