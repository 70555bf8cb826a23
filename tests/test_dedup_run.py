from __future__ import annotations

import json

import numpy as np
import pytest

from gniazdo.dedup.evaluate import closed_pairs, pair_scores
from gniazdo.dedup.run import NearDedupParams, duplicate_pairs, vote
from gniazdo.dedup.truth import truth_pairs
from gniazdo.errors import UserError
from gniazdo.resources import sample_path


@pytest.fixture(scope="module")
def sample():
    docs = [json.loads(line) for line in sample_path("corpus.jsonl").read_text().splitlines()]
    texts, ids = [d["text"] for d in docs], [d["id"] for d in docs]
    return texts, truth_pairs(ids, sample_path("ground_truth.jsonl"))


def test_majority_vote_on_the_sample_corpus(sample, capsys):
    texts, truth = sample
    votes = vote(texts, NearDedupParams(vote="majority"))
    scores = {name: pair_scores(votes.expert_pairs(name), truth, len(texts)) for name in votes.verdict}
    scores["majority"] = pair_scores(votes.pairs[votes.accepted], truth, len(texts))
    with capsys.disabled():
        print("\n" + "\n".join(f"{k}: P={v['precision']:.3f} R={v['recall']:.3f}" for k, v in scores.items()))
    assert scores["majority"]["precision"] >= 0.95 and scores["majority"]["recall"] >= 0.90
    assert scores["minhash"]["precision"] >= 0.95 and scores["minhash"]["recall"] >= 0.9
    assert scores["cosine"]["precision"] >= 0.95 and scores["cosine"]["recall"] >= 0.9


def test_every_expert_judges_every_candidate_and_rules_nest(sample):
    texts, _ = sample
    v = vote(texts)
    m = len(v.pairs)
    assert m > 0 and all(len(v.verdict[n]) == m and len(v.similarity[n]) == m for n in v.verdict)
    assert np.all(v.pairs[:, 0] < v.pairs[:, 1]) and len(np.unique(v.pairs, axis=0)) == m
    union = np.zeros(m, dtype=bool)
    for mask in v.proposed.values():
        union |= mask
    assert union.all()  # every candidate came from some expert
    assert (~v.proposed["simhash"] & v.verdict["simhash"]).any()  # simhash judged pairs it did not propose
    counts = {rule: vote(texts, NearDedupParams(vote=rule)).accepted.sum() for rule in ("all", "majority", "any")}
    assert counts["all"] <= counts["majority"] <= counts["any"]
    expr = vote(texts, NearDedupParams(vote="minhash & (simhash | cosine)"))
    assert np.array_equal(expr.accepted, expr.verdict["minhash"] & (expr.verdict["simhash"] | expr.verdict["cosine"]))


def test_single_expert_and_unknown_names():
    base = ("Rada gminy zdecydowała w czwartek, że stary most na Wiśle zostanie wyremontowany w przyszłym roku. "
            "Prace mają potrwać cztery miesiące, a ruch zostanie przeniesiony na przeprawę tymczasową. "
            "Mieszkańcy pytali o objazdy dla autobusów szkolnych i o koszt całej inwestycji.")
    texts = [base, base.replace("czwartek", "środę"), "Zupełnie inny tekst o pogodzie na jutro w Krakowie i okolicy."]
    pairs = duplicate_pairs(texts, params=NearDedupParams(experts=["cosine"], vote="any"))
    assert pairs.tolist() == [[0, 1]]
    with pytest.raises(UserError, match="simhash"):
        vote(texts, NearDedupParams(experts=["minhash", "cosine"], vote="minhash & simhash"))


def test_truth_pairs_are_closed_and_restricted():
    assert closed_pairs(np.array([[0, 1], [1, 2]]), 4) == {(0, 1), (0, 2), (1, 2)}
    gt = sample_path("ground_truth.jsonl")
    truth = [json.loads(line) for line in gt.read_text().splitlines()]
    copy = next(t for t in truth if t["duplicate_of"])
    pairs = truth_pairs([copy["duplicate_of"], "nope", copy["id"]], gt)
    assert pairs.tolist() == [[0, 2]]
    assert pair_scores(np.array([[0, 1]]), np.array([[0, 1], [1, 2]]), 3) == \
        {"precision": 1.0, "recall": 1 / 3, "f1": 0.5, "predicted": 1, "true": 3}
