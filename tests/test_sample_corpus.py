"""The built-in sample corpus: size, variety, and a ground truth that matches the texts."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from gniazdo.corpus import read_documents
from gniazdo.resources import sample_path


def load(name):
    return [json.loads(l) for l in sample_path(name).read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def corpus():
    return load("corpus.jsonl"), load("ground_truth.jsonl")


def test_size_and_kinds(corpus):
    docs, truth = corpus
    assert len(docs) >= 200 and sum(len(d["text"].encode()) for d in docs) >= 300_000
    kinds = Counter(d["meta"]["kind"] for d in docs)
    for kind in ("encyclopaedic", "news", "literary", "forum", "comments", "recipe", "official", "navigation",
                 "spam", "mojibake", "pii", "foreign"):
        assert kinds[kind] >= 5, kind
    assert [d["id"] for d in docs] == [t["id"] for t in truth]
    assert len({d["id"] for d in docs}) == len(docs)
    assert [d.id for d in read_documents([sample_path("corpus.jsonl")])] == [d["id"] for d in docs]


def test_ground_truth_duplicates_and_languages(corpus):
    docs, truth = corpus
    text = {d["id"]: d["text"] for d in docs}
    order = {d["id"]: i for i, d in enumerate(docs)}
    langs = Counter(t["language"] for t in truth)
    assert langs["en"] >= 5 and langs["de"] >= 5
    dups = [t for t in truth if t["duplicate_of"]]
    near = [t for t in truth if t["near_duplicate_of"]]
    assert len(dups) >= 5 and len(near) >= 5
    for t in dups:
        assert text[t["id"]] == text[t["duplicate_of"]] and order[t["duplicate_of"]] < order[t["id"]]
    for t in near:
        a, b = (set(zip(*[text[i].lower().split()[k:] for k in range(5)])) for i in (t["id"], t["near_duplicate_of"]))
        assert 0.5 <= len(a & b) / len(a | b) < 1.0
    junk = Counter(t["junk_kind"] for t in truth if t["junk"])
    assert {"navigation", "spam", "mojibake", "too_short"} <= set(junk)


def _pesel_ok(s):
    d = [int(c) for c in s]
    return len(d) == 11 and (10 - sum(w * x for w, x in zip([1, 3, 7, 9, 1, 3, 7, 9, 1, 3], d)) % 10) % 10 == d[10]


def _nip_ok(s):
    d = [int(c) for c in re.sub(r"\D", "", s)]
    c = sum(w * x for w, x in zip([6, 5, 7, 2, 3, 4, 5, 6, 7], d)) % 11
    return len(d) == 10 and c != 10 and c == d[9]


def _regon_ok(s):
    d = [int(c) for c in s]
    return len(d) == 9 and sum(w * x for w, x in zip([8, 9, 2, 3, 4, 5, 6, 7], d)) % 11 % 10 == d[8]


def _iban_ok(s):
    s = re.sub(r"\s", "", s)
    s = s if s[:2].isalpha() else "PL" + s
    n = int("".join(str(int(c, 36)) for c in s[4:] + s[:4]))
    return n % 97 == 1


def test_pii_is_in_the_text_and_checksum_valid(corpus):
    docs, truth = corpus
    text = {d["id"]: d["text"] for d in docs}
    checks = {"pesel": _pesel_ok, "nip": _nip_ok, "regon": _regon_ok, "iban": _iban_ok}
    types = Counter()
    for t in truth:
        for pii in t["pii"]:
            assert pii["value"] in text[t["id"]], (t["id"], pii)
            types[pii["type"]] += 1
            if pii["type"] in checks:
                assert checks[pii["type"]](pii["value"]), (t["id"], pii)
    assert all(types[k] >= 3 for k in ("pesel", "nip", "regon", "iban", "phone", "email")), types
    # no e-mail address in any text that the ground truth does not list
    listed = {p["value"] for t in truth for p in t["pii"] if p["type"] == "email"}
    found = {m for d in docs for m in re.findall(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", d["text"])}
    assert found <= listed


def test_instructions_and_preferences():
    convs = load("instructions.jsonl")
    assert len(convs) >= 100
    for c in convs:
        roles = [m["role"] for m in c["messages"]]
        if roles[0] == "system":
            roles = roles[1:]
        assert roles == ["user", "assistant"] * (len(roles) // 2) and roles
        assert all(m["content"].strip() for m in c["messages"])
    prefs = load("preferences.jsonl")
    assert len(prefs) >= 50
    assert all(p["prompt"] and p["chosen"] and p["rejected"] and p["chosen"] != p["rejected"] for p in prefs)
