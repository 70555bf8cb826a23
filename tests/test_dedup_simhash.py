"""SimHash expert: fingerprints, distances, banding completeness, and the sample corpus end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gniazdo.dedup import simhash
from gniazdo.dedup.lsh import candidate_pairs
from gniazdo.dedup.shingles import ShingleParams, shingle_hashes
from gniazdo.dedup.shingles import shingle_counts
from gniazdo.dedup.bits import popcount
from gniazdo.dedup.simhash import SimHashExpert, SimHashParams, band_keys_of, hamming
from gniazdo.resources import sample_path

PARAGRAPH = (
    "Kraków jest jednym z najstarszych miast w Polsce, a jego historia sięga co najmniej siódmego wieku. "
    "Przez kilka stuleci był stolicą państwa i miejscem koronacji królów, a na Wawelu do dziś stoją zamek "
    "oraz katedra, w której pochowano wielu władców. Stare Miasto wraz z Kazimierzem zostało wpisane na listę "
    "światowego dziedzictwa UNESCO już w tysiąc dziewięćset siedemdziesiątym ósmym roku. Rynek Główny, "
    "otoczony kamienicami i kościołami, należy do największych średniowiecznych placów w Europie, a w jego "
    "środku stoją Sukiennice, dawna hala targowa, w której dziś mieści się galeria malarstwa polskiego. "
    "Uniwersytet Jagielloński, założony w tysiąc trzysta sześćdziesiątym czwartym roku, jest najstarszą "
    "uczelnią w kraju i jedną z najstarszych w tej części kontynentu."
)
# Three words changed (siódmego → ósmego, wielu → licznych, największych → najsłynniejszych).
EDITED = (PARAGRAPH.replace("siódmego", "ósmego").replace("wielu władców", "licznych władców")
          .replace("największych", "najsłynniejszych"))
UNRELATED = (
    "Aby przygotować pierogi ruskie, należy ugotować ziemniaki w osolonej wodzie, a następnie przecisnąć je "
    "przez praskę. Cebulę trzeba pokroić w drobną kostkę i zeszklić na maśle, po czym połączyć z ziemniakami "
    "i twarogiem. Farsz doprawia się solą i dużą ilością pieprzu. Ciasto zagniata się z mąki, ciepłej wody i "
    "odrobiny oleju, wałkuje cienko i wykrawa szklanką krążki. Na każdy krążek nakłada się łyżeczkę farszu, "
    "skleja brzegi i gotuje partiami we wrzącej wodzie przez kilka minut od wypłynięcia."
)


def _distance(expert: SimHashExpert, a: str, b: str) -> int:
    sigs = expert.signatures([a, b])
    return int(hamming(sigs[0], sigs[1])[0])


def _naive_fingerprint(text: str, params: ShingleParams) -> int:
    """Reference SimHash, one shingle and one bit at a time (slow, obviously correct)."""
    hashes, counts = shingle_counts(text, params)
    votes = [0] * 64
    for h, c in zip(hashes.tolist(), counts.tolist()):
        for bit in range(64):
            votes[bit] += c if (h >> bit) & 1 else -c
    return sum(1 << bit for bit in range(64) if votes[bit] > 0)


def test_params_defaults_and_validation():
    p = SimHashParams()
    assert (p.shingles.n, p.max_distance, p.bands, p.num_bands) == (3, 3, None, 4)
    assert SimHashParams(max_distance=7).num_bands == 8
    assert SimHashParams(max_distance=7, bands=4).num_bands == 4
    with pytest.raises(ValueError):
        SimHashParams(max_distanse=3)  # unknown key (pydantic ValidationError is a ValueError)
    with pytest.raises(ValueError):
        SimHashParams(bands=65)
    assert SimHashExpert.name == "simhash"
    assert SimHashExpert(max_distance=5).params.max_distance == 5


def test_shingle_counts_matches_shingle_hashes_and_counts_repeats():
    params = ShingleParams(n=3)
    hashes, counts = shingle_counts(PARAGRAPH, params)
    assert np.array_equal(hashes, shingle_hashes(PARAGRAPH, params))
    assert int(counts.sum()) == len(PARAGRAPH.split()) - 2  # every 3-gram position counted once
    h, c = shingle_counts("raz dwa trzy raz dwa trzy raz dwa trzy", params)
    assert sorted(c.tolist()) == [2, 2, 3]  # "raz dwa trzy" thrice, the two rotations twice
    h, c = shingle_counts("", params)
    assert len(h) == len(c) == 0


def test_signatures_match_naive_reference_across_chunks(monkeypatch):
    texts = [PARAGRAPH, "", EDITED, "jedno", UNRELATED, "", "dwa słowa", PARAGRAPH + " " + UNRELATED,
             "tak tak tak nie " * 40 + UNRELATED]  # repeated shingles: weights > 1
    expert = SimHashExpert()
    expected = [_naive_fingerprint(t, expert.params.shingles) for t in texts]
    expected[1] = expected[5] = 0  # no shingles → fingerprint 0
    sigs = expert.signatures(texts)
    assert sigs.shape == (len(texts), 1) and sigs.dtype == np.uint64
    assert sigs[:, 0].tolist() == expected
    # Tiny chunks: documents split into many reduceat batches must give the same fingerprints.
    monkeypatch.setattr(simhash, "_CHUNK_SHINGLES", 7)
    assert expert.signatures(texts)[:, 0].tolist() == expected
    assert expert.signatures([]).shape == (0, 1)


def test_identical_texts_distance_zero_and_duplicate():
    expert = SimHashExpert()
    sigs = expert.signatures([PARAGRAPH, PARAGRAPH])
    sim = expert.similarity(sigs[:1], sigs[1:])
    assert sim.tolist() == [1.0]
    assert expert.is_duplicate(sim).tolist() == [True]
    # Case and punctuation are normalised away before shingling.
    assert _distance(expert, PARAGRAPH, PARAGRAPH.upper().replace(",", " ;")) == 0


def test_near_duplicate_small_distance_unrelated_far():
    expert = SimHashExpert()
    near = _distance(expert, PARAGRAPH, EDITED)
    far = _distance(expert, PARAGRAPH, UNRELATED)
    assert 0 < near <= 14, near  # ~9 of ~100 shingles changed; the exact count depends on the hash
    assert 22 <= far <= 42, far
    sims = expert.similarity(*np.split(expert.signatures([PARAGRAPH, EDITED]), 2))
    assert sims[0] == pytest.approx(1 - near / 64)
    assert expert.is_duplicate(sims).tolist() == [near <= 3]
    assert SimHashExpert(max_distance=14).is_duplicate(sims).tolist() == [True]


def test_unrelated_random_texts_average_half_the_bits():
    rng = np.random.default_rng(0)
    vocab = [f"słowo{i}" for i in range(5000)]
    texts = [" ".join(rng.choice(vocab, 120)) for _ in range(60)]
    sigs = SimHashExpert().signatures(texts)[:, 0]
    i, j = np.triu_indices(len(texts), 1)
    d = hamming(sigs[i], sigs[j])
    assert 31 <= d.mean() <= 33  # binomial(64, 1/2)
    assert d.min() >= 14


def test_similarity_and_is_duplicate_thresholds():
    expert = SimHashExpert(max_distance=3)
    a = np.zeros((5, 1), dtype=np.uint64)
    b = np.array([[0], [1], [0b111], [0b1111], [np.iinfo(np.uint64).max]], dtype=np.uint64)
    sims = expert.similarity(a, b)
    assert sims.tolist() == [1.0, 63 / 64, 61 / 64, 60 / 64, 0.0]
    assert expert.is_duplicate(sims).tolist() == [True, True, True, False, False]


def test_popcount_lookup_table_fallback(monkeypatch):
    x = np.random.default_rng(1).integers(0, 2**63, 1000, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    expected = np.array([bin(v).count("1") for v in x.tolist()])
    assert np.array_equal(popcount(x), expected)
    monkeypatch.delattr(np, "bitwise_count", raising=False)
    assert np.array_equal(popcount(x), expected)


@pytest.mark.parametrize("k", [0, 1, 3, 5, 8])
def test_banding_finds_every_pair_within_k(k):
    """Pigeonhole: k flipped bits leave one of k + 1 bands untouched, so the pair shares that band's key."""
    rng = np.random.default_rng(k)
    n = 2000
    fps = rng.integers(0, 2**64, n, dtype=np.uint64, endpoint=False)
    flips = np.zeros(n, dtype=np.uint64)
    for _ in range(k):  # up to k distinct bits per pair (repeats make fewer): the worst cases included
        flips |= np.uint64(1) << rng.integers(0, 64, n).astype(np.uint64)
    near = fps ^ flips
    assert hamming(fps, near).max() <= k
    keys_a, keys_b = band_keys_of(fps, k + 1), band_keys_of(near, k + 1)
    assert keys_a.shape == (n, k + 1) and keys_a.dtype == np.uint64
    assert (keys_a == keys_b).any(axis=1).all()
    # And through lsh.candidate_pairs: every (i, n + i) pair is a candidate.
    pairs = candidate_pairs(np.concatenate([keys_a, keys_b]))
    found = {tuple(p) for p in pairs.tolist()}
    assert all((i, n + i) in found for i in range(n))


def test_banding_one_flip_per_band_shares_no_key():
    bands = 4
    fps = np.random.default_rng(2).integers(0, 2**64, 500, dtype=np.uint64, endpoint=False)
    one_per_band = np.uint64(sum(1 << b for b in (0, 16, 32, 48)))  # bands are bits 0–15, 16–31, …
    assert not (band_keys_of(fps, bands) == band_keys_of(fps ^ one_per_band, bands)).any()


def test_band_keys_differ_between_bands():
    """The band index is mixed into the key: equal band values in different bands give different keys."""
    keys = band_keys_of(np.zeros(1, dtype=np.uint64), 8)
    assert len(set(keys[0].tolist())) == 8
    assert SimHashExpert(max_distance=2).band_keys(np.zeros((3, 1), np.uint64)).shape == (3, 3)
    whole = band_keys_of(np.array([5, 6], dtype=np.uint64), 1)  # one band = the whole fingerprint
    assert whole[0, 0] != whole[1, 0]


def _sample():
    docs = [json.loads(line) for line in sample_path("corpus.jsonl").read_text("utf-8").splitlines() if line]
    truth = [json.loads(line) for line in sample_path("ground_truth.jsonl").read_text("utf-8").splitlines() if line]
    index = {d["id"]: i for i, d in enumerate(docs)}
    pairs = set()
    for t in truth:
        for key in ("duplicate_of", "near_duplicate_of"):
            if t[key]:
                i, j = index[t["id"]], index[t[key]]
                pairs.add((min(i, j), max(i, j)))
    return [d["text"] for d in docs], pairs


def _precision_recall(expert: SimHashExpert, texts, truth):
    sigs = expert.signatures(texts)
    cand = candidate_pairs(expert.band_keys(sigs))
    sims = expert.similarity(sigs[cand[:, 0]], sigs[cand[:, 1]])
    found = {tuple(p) for p in cand[expert.is_duplicate(sims)].tolist()}
    tp = len(found & truth)
    return tp / max(len(found), 1), tp / len(truth), len(cand)


def test_sample_corpus_end_to_end(capsys):
    texts, truth = _sample()
    assert len(truth) == 25  # 11 exact copies + 14 edited copies
    precision, recall, n_cand = _precision_recall(SimHashExpert(), texts, truth)
    # k = 3: every exact copy, no false pair, few candidates (4 bands × 16 bits).
    assert precision == 1.0
    assert recall >= 11 / 25
    assert n_cand < 50
    # k = 12 (13 bands) reaches most edited copies too, at the price of many candidates.
    p12, r12, c12 = _precision_recall(SimHashExpert(max_distance=12), texts, truth)
    assert p12 >= 0.95 and r12 >= 0.8
    with capsys.disabled():
        print(f"\nsimhash sample corpus: k=3 P={precision:.2f} R={recall:.2f} candidates={n_cand}; "
              f"k=12 P={p12:.2f} R={r12:.2f} candidates={c12}")
