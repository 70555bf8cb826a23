"""The shared Polish tokenizer (spaCy 3.x blank "pl" rules, without spaCy): its tokens against spaCy's own."""

from __future__ import annotations

import random

import pytest

from conftest import SHARED, needs_shared
from gniazdo.corpus import read_documents
from gniazdo.data.tokenize_pl import (_MERGE, SPECIALS, Memo, _affix_tokens, _merge_specials, chunk_tokens,
                                      split_words, tokenize, tokens_of, words_of)
from gniazdo.resources import sample_path

WEB_SAMPLE = SHARED / "corpus" / "web" / "web_sample.jsonl"


@pytest.fixture(scope="module")
def spacy_pl():
    spacy = pytest.importorskip("spacy", reason="spaCy not installed (dev extra)")
    return spacy.blank("pl").tokenizer


@pytest.mark.parametrize("text, expected", [
    ("Ala ma kota, (np. psa) i 3,5 zł.", ["Ala", "ma", "kota", ",", "(", "np", ".", "psa", ")", "i", "3,5",
                                          "zł", "."]),
    ("„dom” e-mail: a@b.pl", ["„", "dom", "”", "e", "-", "mail", ":", "a@b.pl"]),
    ("www.onet.pl http://onet.pl/a.html,", ["www.onet.pl", "http://onet.pl/a.html", ","]),
    ("12.03.2020 r. 10km. 20% 1,5-2 12:30", ["12", ".", "03", ".", "2020", "r", ".", "10", "km", ".", "20", "%",
                                             "1,5", "-", "2", "12:30"]),
    ("abc... abc...def ... -abc abc- długo-", ["abc", ".", ".", ".", "abc", "...", "def", "...", "-abc", "abc",
                                               "-", "długo-"]),
    ("U.S.A. ul.Długa a.b.c biało-czerwony", ["U", ".", "S", ".", "A", ".", "ul", ".", "Długa", "a.b.c", "biało",
                                              "-", "czerwony"]),
    ("(8) np.:) tak :) ala:) 10.0.0.1 C++ xD", ["(", "8)", "np", ".", ":)", "tak", ":)", "ala", ":)", "10", ".",
                                                "0.0", ".", "1", "C++", "xD"]),
])  # fmt: skip
def test_split_words_matches_spacy_polish(text, expected):
    assert split_words(text) == expected
    assert [t for t in tokenize(text) if not t.isspace()] == expected


@pytest.mark.parametrize("text, expected", [
    ("a\nb", ["a", "\n", "b"]),
    ("a \nb", ["a", "\n", "b"]),  # a token keeps one plain space after it: the rest is a space token
    ("a\n b", ["a", "\n ", "b"]),
    ("a  b", ["a", " ", "b"]),
    ("a b ", ["a", "b"]),
    ("a  ", ["a", " "]),
    (" a", [" ", "a"]),  # at the very start the whole run is a token, one space included
    ("  a", ["  ", "a"]),
    ("\t", ["\t"]),
    (" ", [" "]),
    ("", []),
    ("tak.\n\nNie\u00a0wiem", ["tak", ".", "\n\n", "Nie", "\u00a0", "wiem"]),
])  # fmt: skip
def test_space_tokens(text, expected):
    assert tokenize(text) == expected


def test_plain_affix_shortcuts_agree_with_the_rules():
    """A word with one punctuation mark before or after it skips the affix machinery: same tokens."""
    rng = random.Random(4)
    words = ["kota", "xD", "XD", "a", "C", "Ala", "żółw", "km", "US", "np", "r", "ﬁ", "ǅ", "ª", "İ"]
    marks = list(".,:;!?)]}\"”’»…„“«([{'`-–—/|&*#§%=+<>^~@$€°")
    for _ in range(20000):
        chunk = "".join(rng.choice(words + marks) for _ in range(rng.randint(1, 3)))
        if chunk.isalpha() or chunk in SPECIALS:
            continue
        tokens = _affix_tokens(chunk)
        assert chunk_tokens(chunk) == tuple(_merge_specials(tokens) if len(tokens) > 1 else tokens), chunk


def _compare_with_spacy(nlp, texts, name):
    for i, text in enumerate(texts):
        expected = [t.text for t in nlp(text)]
        assert tokenize(text) == expected, f"{name} #{i}"
        assert split_words(text) == [t for t in expected if t.strip()], f"{name} #{i}"


def test_agrees_with_spacy_on_the_sample_corpus(spacy_pl):
    _compare_with_spacy(spacy_pl, [d.text for d in read_documents([sample_path("corpus.jsonl")])], "sample")


@needs_shared(WEB_SAMPLE)
def test_agrees_with_spacy_on_polish_web_text(spacy_pl):
    """Every 4th document of the shared web sample (all 2,502 agree, and all 2,048 of benchmark_sm)."""
    _compare_with_spacy(spacy_pl, [d.text for d in read_documents([WEB_SAMPLE])][::4], "web_sample")


def _special_across_chunks(text: str) -> bool:
    """Whether the pieces of a special case (":)" is ":" + ")") run across two chunks split by one space."""
    pieces, chunk_of = [], []
    for i, chunk in enumerate(text.split(" ")):
        for piece in ([] if not chunk or chunk.isspace() else _affix_tokens(chunk)):
            pieces.append(piece)
            chunk_of.append(i)
    return any(tuple(pieces[i:i + len(p)]) == p and chunk_of[i] != chunk_of[i + len(p) - 1]
               for i, piece in enumerate(pieces) for p, _ in _MERGE.get(piece, ()))


def test_agrees_with_spacy_on_random_text(spacy_pl):
    """Random mixes of words, punctuation, URLs and whitespace of every kind spaCy distinguishes."""
    rng = random.Random(2)
    alphabet = list(" \n\t\r\u00a0\u2009\u3000ab.,;-!?\"'…%5zł€@/Ż") + [
        "  ", " \n", "\n ", "http://a.pl", "C++", "...", "U.S.A.", "np.", " ", " ", " "]
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 15))) for _ in range(5000)]
    across = [t for t in texts if _special_across_chunks(t)]
    assert len(across) < 25  # the known difference below can only happen there
    _compare_with_spacy(spacy_pl, [t for t in texts if t not in across], "random")


def test_known_difference_special_cases_across_chunks(spacy_pl):
    """spaCy merges special cases (emoticons, "''") over the whole document, where a match spanning two chunks
    can block one inside a chunk; we merge inside each chunk. It takes two such marks glued to words on both
    sides of a space: every document of the web sample and of benchmark_sm is tokenised as spaCy does."""
    for text, theirs, ours in [("a:) :)b", ["a", ":)", ":", ")", "b"], ["a", ":)", ":)", "b"]),
                               ("C++' ''U", ["C++", "'", "'", "'", "U"], ["C++", "'", "''", "U"])]:
        assert _special_across_chunks(text)
        assert [t.text for t in spacy_pl(text)] == theirs and tokenize(text) == ours


def test_documents_are_split_once_per_text_object():
    text = "Ala ma\nkota."
    assert words_of(text) is words_of(text)
    assert tokens_of(text) is tokens_of(text) and tokens_of(text) == ["Ala", "ma", "\n", "kota", "."]
    assert words_of(text) == ["Ala", "ma", "kota", "."]  # derived from the tokens already made
    other = "".join(["Ala ma ", "psa."])
    assert words_of(other) == ["Ala", "ma", "psa", "."] and words_of(text) == ["Ala", "ma", "kota", "."]


def test_memo_computes_once_and_empties_when_full():
    calls = []
    memo = Memo(lambda key: calls.append(key) or key.upper(), max_size=2)
    assert list(memo.map(["a", "b", "a"])) == ["A", "B", "A"] and calls == ["a", "b"]
    assert list(memo.map(["c"])) == ["C"] and len(memo) == 3  # over max_size only on the next call
    assert list(memo.map(["a"])) == ["A"] and len(memo) == 1 and calls == ["a", "b", "c", "a"]
