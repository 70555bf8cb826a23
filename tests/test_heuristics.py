"""Gopher quality / Gopher repetition / FineWeb quality: each rule at its threshold (kept) and just over it
(dropped, with the rule's reason); the steps in a pipeline. The Polish word splitter: tests/test_tokenize_pl.py."""

from __future__ import annotations

import json

import pytest

from conftest import write_jsonl
from gniazdo.corpus import read_documents
from gniazdo.data.heuristics import (FineWebQualityParams, GopherQualityParams, GopherRepetitionParams,
                                     HeuristicsFilter, fineweb_quality, gopher_quality, gopher_repetition,
                                     split_words)
from gniazdo.document import Document
from gniazdo.errors import UserError
from gniazdo.pipeline import PipelineConfig, run_pipeline
from gniazdo.pipeline.config import build_steps
from gniazdo.pipeline.step import step_class

GOOD = (
    "Kraków jest jednym z najstarszych miast w Polsce. Przez wieki był stolicą kraju, a dziś przyciąga turystów "
    "z całego świata.\n"
    "Na rynku głównym stoją Sukiennice oraz kościół Mariacki, z którego wieży co godzinę rozbrzmiewa hejnał.\n"
    "Wawel, dawna siedziba królów, góruje nad Wisłą i kryje katedrę, w której koronowano władców.\n"
    "Miasto słynie także z uniwersytetu założonego w roku 1364 przez Kazimierza Wielkiego, jednej z "
    "najstarszych uczelni w Europie."
)

SHORT = GOOD.split("\n")[0] + " " + GOOD.split("\n")[1]  # 35 words: long enough to avoid n-gram rules
_WORDS = [w for w in split_words(GOOD) if w.isalpha()]
LIST = "\n".join(" ".join(_WORDS[i:i + 4]) + "." for i in range(0, 60, 4))  # 14 newlines, 75 tokens

QUALITY_OFF = dict(min_doc_words=None, max_doc_words=None, min_avg_word_length=None, max_avg_word_length=None,
                   max_symbol_word_ratio=None, max_bullet_lines_ratio=None, max_ellipsis_lines_ratio=None,
                   min_alpha_words_ratio=None, min_stop_words=None)
REPETITION_OFF = dict(dup_line_frac=None, top_n_grams=[], dup_n_grams=[])
FINEWEB_OFF = dict(line_punct_thr=None, char_duplicates_ratio=None, new_line_ratio=None)


def quality(text: str, **rule) -> str | None:
    """Gopher quality with only the given rule(s) on."""
    return gopher_quality(text, GopherQualityParams(**{**QUALITY_OFF, **rule}))


def repetition(text: str, **rule) -> str | None:
    return gopher_repetition(text, GopherRepetitionParams(**{**REPETITION_OFF, **rule}))


def fineweb(text: str, **rule) -> str | None:
    return fineweb_quality(text, FineWebQualityParams(**{**FINEWEB_OFF, **rule}))


def words(n: int, word: str = "słowo") -> str:
    return " ".join([word] * n)


# --- defaults and a clean document ---------------------------------------------------------------------------

def test_defaults_are_fineweb2_polish_thresholds():
    q, r, f = GopherQualityParams(), GopherRepetitionParams(), FineWebQualityParams()
    assert (q.min_doc_words, q.min_avg_word_length, q.max_avg_word_length) == (50, 3, 12)
    assert (q.min_alpha_words_ratio, q.min_stop_words) == (0.726, 2)
    assert set(q.stop_words) == {"w", "i", "na", "z", "do", "się", "roku", "od", "a", "jest", "przez", "po",
                                 "jako", "oraz", "o", "został", "był", "nie"}
    assert r.dup_line_frac == 0.32 and r.dup_para_frac is None and r.dup_line_char_frac is None
    assert r.top_n_grams == [(2, 0.222), (3, 0.198), (4, 0.176)]
    assert r.dup_n_grams == [(5, 0.172), (6, 0.16), (7, 0.148), (8, 0.136), (9, 0.123), (10, 0.111)]
    assert (f.line_punct_thr, f.new_line_ratio, f.char_duplicates_ratio, f.short_line_thr) == (0.087, 0.158, 0.1,
                                                                                                 None)


def test_clean_polish_text_passes_every_filter():
    assert gopher_repetition(GOOD, GopherRepetitionParams()) is None
    assert fineweb_quality(GOOD, FineWebQualityParams()) is None
    assert gopher_quality(GOOD, GopherQualityParams()) is None
    assert HeuristicsFilter().keep(Document("d", GOOD)) is True


# --- Gopher quality ------------------------------------------------------------------------------------------

def test_word_count_bounds_ignore_punctuation_tokens():
    assert quality(words(50), min_doc_words=50) is None
    assert quality(words(49) + " . , ! ?", min_doc_words=50) == "gopher_short_doc"
    assert quality(words(10), max_doc_words=10) is None
    assert quality(words(11), max_doc_words=10) == "gopher_long_doc"


def test_average_word_length_bounds():
    assert quality(words(10, "kot") + " , , ,", min_avg_word_length=3) is None  # punctuation not averaged
    assert quality(words(10, "kot") + " ab", min_avg_word_length=3) == "gopher_below_avg_threshold"
    assert quality(words(5, "a" * 12), max_avg_word_length=12) is None
    assert quality(words(5, "a" * 12) + " " + "b" * 13, max_avg_word_length=12) == "gopher_above_avg_threshold"


def test_hash_and_ellipsis_per_token():
    assert quality(words(18) + " # #", max_symbol_word_ratio=0.1) is None  # 2 of 20 tokens
    assert quality(words(17) + " # # #", max_symbol_word_ratio=0.1) == "gopher_too_many_hashes"
    assert quality(words(18) + " ... …", max_symbol_word_ratio=0.1) is None
    assert quality(words(17) + " ... … ...", max_symbol_word_ratio=0.1) == "gopher_too_many_ellipsis"


def test_bullet_and_end_ellipsis_lines():
    bullets = ["- punkt pierwszy", "  • punkt drugi"] + ["- punkt"] * 7
    assert quality("\n".join(bullets + ["Zwykła linia."]), max_bullet_lines_ratio=0.9) is None
    assert quality("\n".join(bullets + ["- ostatni"]), max_bullet_lines_ratio=0.9) == "gopher_too_many_bullets"
    trailing = ["i tak dalej...", "coś jeszcze…  ", "urwane..."]
    plain = ["Pełne zdanie."] * 7
    assert quality("\n".join(trailing + plain), max_ellipsis_lines_ratio=0.3) is None
    assert quality("\n".join(trailing + ["znowu…"] + plain[1:]),
                   max_ellipsis_lines_ratio=0.3) == "gopher_too_many_end_ellipsis"


def test_alphabetic_token_share_counts_punctuation_and_numbers():
    assert quality("ala ma kota 2020", min_alpha_words_ratio=0.75) is None  # 3 of 4
    assert quality("ala ma kota .", min_alpha_words_ratio=0.75) is None
    assert quality("ala ma kota . ,", min_alpha_words_ratio=0.75) == "gopher_below_alpha_threshold"  # 3 of 5
    assert quality("ala ma 12 2020", min_alpha_words_ratio=0.75) == "gopher_below_alpha_threshold"


def test_stop_words_are_distinct_and_case_sensitive():
    assert quality("w domu i ogrodzie", min_stop_words=2) is None
    assert quality("w domu w ogrodzie", min_stop_words=2) == "gopher_enough_stop_words"
    assert quality("W domu I ogrodzie", min_stop_words=2) == "gopher_enough_stop_words"
    assert quality("pies kot", min_stop_words=2, stop_words=["pies", "kot"]) is None


def test_first_failing_quality_rule_is_the_reason():
    text = words(10, "ab")  # too short, too short words, no stop words: the word count is checked first
    assert gopher_quality(text, GopherQualityParams()) == "gopher_short_doc"
    assert gopher_quality(text, GopherQualityParams(min_doc_words=5)) == "gopher_below_avg_threshold"


# --- Gopher repetition ---------------------------------------------------------------------------------------

def test_duplicate_line_fraction():
    lines = [f"linia numer {i}" for i in range(16)] + ["powtórzona linia"] * 9  # 8 repeats of 25 lines
    assert repetition("\n\n".join(lines), dup_line_frac=0.32) is None  # blank lines are not lines
    lines = [f"linia numer {i}" for i in range(15)] + ["powtórzona linia"] * 10  # 9 of 25
    assert repetition("\n".join(lines), dup_line_frac=0.32) == "dup_line_frac"


def test_paragraph_and_line_character_fractions():
    text = "aaa\n\nbbb\n\naaa"  # one repeated paragraph (and line) of 3 chars in 13
    assert repetition(text, dup_para_frac=0.34) is None
    assert repetition(text, dup_para_frac=0.33) == "dup_para_frac"
    assert repetition(text, dup_para_char_frac=3 / 13) is None
    assert repetition(text, dup_para_char_frac=0.23) == "dup_para_char_frac"
    assert repetition(text, dup_line_char_frac=3 / 13) is None
    assert repetition(text, dup_line_char_frac=0.23) == "dup_line_char_frac"


def test_top_ngram_character_fraction():
    text = "ala ma ala ma"  # "ala ma" twice: 12 of 13 characters
    assert repetition(text, top_n_grams=[(2, 12 / 13)]) is None
    assert repetition(text, top_n_grams=[(2, 0.92)]) == "top_2_gram"
    assert repetition("jeden dwa trzy", top_n_grams=[(3, 0.99)]) == "top_3_gram"  # a single 3-gram: 14/14
    assert repetition("jeden dwa", top_n_grams=[(3, 0.1)]) is None  # fewer words than n: rule skipped


def test_top_ngram_ties_go_to_the_first():
    text = "kot pies kot pies bardzo długie bardzo długie"  # both 2-grams twice: "kot pies" is first
    first = len("kot pies") * 2 / len(text)
    assert repetition(text, top_n_grams=[(2, first)]) is None
    assert repetition(text, top_n_grams=[(2, first - 1e-9)]) == "top_2_gram"
    unique = "ab cd ef"  # every 2-gram once: the first one, "ab cd", 5 of 8 characters
    assert repetition(unique, top_n_grams=[(2, 5 / 8)]) is None
    assert repetition(unique, top_n_grams=[(2, 0.62)]) == "top_2_gram"


def test_duplicated_ngram_character_fraction():
    text = "jeden dwa trzy cztery pięć X jeden dwa trzy cztery pięć"  # 22 repeated chars (no spaces) of 55
    assert repetition(text, dup_n_grams=[(5, 0.4)]) is None
    assert repetition(text, dup_n_grams=[(5, 0.39)]) == "duplicated_5_n_grams"
    assert repetition(text, dup_n_grams=[(5, 0.4), (6, 0.01)]) is None  # no 6-gram repeats


def test_duplicated_ngrams_jump_past_each_repeat():
    text = words(12, "ala")  # 5-grams repeat at 1 and 6 (the scan jumps 5 after each): 2 × 15 chars of 47
    assert repetition(text, dup_n_grams=[(5, 30 / 47)]) is None
    assert repetition(text, dup_n_grams=[(5, 30 / 47 - 1e-9)]) == "duplicated_5_n_grams"
    assert repetition(text, dup_n_grams=[(10, 30 / 47)]) is None  # one 10-gram repeat at 1: 30 chars
    assert repetition(text, dup_n_grams=[(10, 0.6)]) == "duplicated_10_n_grams"


def test_repetition_of_empty_text():
    assert gopher_repetition("", GopherRepetitionParams()) == "empty"


# --- FineWeb quality -----------------------------------------------------------------------------------------

def test_line_punctuation_ratio():
    lines = ["Pełne zdanie.", "bez kropki", "też bez", "nic"]
    assert fineweb("\n".join(lines), line_punct_thr=0.25) is None
    assert fineweb("\n".join(lines + ["piąta"]), line_punct_thr=0.25) == "line_punct_ratio"
    # trailing spaces and a closing quote hide the punctuation, as in datatrove
    assert fineweb("Zdanie. \n„Cytat.”\nx\ny", line_punct_thr=0.25) == "line_punct_ratio"
    assert fineweb("Pytanie?\nx\ny\nz", line_punct_thr=0.25) is None
    assert fineweb("bez\nkropek", line_punct_thr=0.25, line_punct_exclude_zero=True) is None
    assert fineweb("wyliczenie;\nx\ny\nz", line_punct_thr=0.25, stop_chars=[";"]) is None


def test_line_punctuation_default_threshold():
    one_of = ["Jedno zdanie z kropką."] + [f"linia bez znaku {i}" for i in range(10)]
    assert fineweb("\n".join(one_of), line_punct_thr=0.087) is None  # 1 of 11
    assert fineweb("\n".join(one_of + ["jeszcze jedna"]), line_punct_thr=0.087) == "line_punct_ratio"  # 1 of 12


def test_short_lines_off_by_default_and_configurable():
    text = "krótka.\ntakże.\nbardzo długa linia ma tu więcej niż trzydzieści znaków.\ni tak."
    assert fineweb_quality(text, FineWebQualityParams(new_line_ratio=None)) is None
    assert fineweb(text, short_line_thr=0.75) is None  # 3 of 4 lines are short
    assert fineweb(text, short_line_thr=0.7) == "short_line_ratio"
    assert fineweb(text, short_line_thr=0.7, short_line_length=5) is None


def test_duplicated_line_characters():
    x, y = "x" * 79 + ".", "y" * 10
    assert fineweb("\n".join([x, y, y]), char_duplicates_ratio=0.1) is None  # 10 of 100 characters
    x, y = "x" * 77 + ".", "y" * 11
    assert fineweb("\n".join([x, y, y]), char_duplicates_ratio=0.1) == "char_dup_ratio"  # 11 of 100


def test_newlines_per_word():
    assert fineweb("ala ma\nkota i\n", new_line_ratio=0.5) is None  # 2 newlines, 4 words
    assert fineweb("ala\nma\nkota\ni", new_line_ratio=0.5) == "list_ratio"  # 3 of 4
    assert fineweb("ala\nma\nkota\ni . ,", new_line_ratio=0.5) is None  # punctuation tokens count as words


def test_fineweb_empty_document():
    assert fineweb_quality(" \n\t\n", FineWebQualityParams()) == "empty"


# --- steps -----------------------------------------------------------------------------------------------------

def test_steps_are_registered_by_name():
    names = {"gopher_quality", "gopher_repetition", "fineweb_quality", "heuristics"}
    assert {step_class(n).name for n in names} == names


def test_filters_drop_with_reasons():
    docs = [Document("good", GOOD), Document("short", SHORT), Document("list", LIST)]
    for name, expected in [("gopher_quality", {"short": "gopher_short_doc"}),
                           ("fineweb_quality", {"list": "list_ratio"}), ("gopher_repetition", {}),
                           ("heuristics", {"short": "gopher_short_doc", "list": "list_ratio"})]:
        step = step_class(name)()
        dropped = {}
        step.exclude = lambda doc, reason: dropped.__setitem__(doc.id, reason)
        kept = [d.id for d in step.run(iter(docs))]
        assert dropped == expected, name
        assert kept == [d.id for d in docs if d.id not in expected]


def test_heuristics_params_nest_and_skip_a_set():
    [step] = build_steps([{"step": "heuristics", "gopher_quality": {"min_doc_words": 100}, "fineweb_quality": None}])
    assert step.keep(Document("g", GOOD)) == "gopher_short_doc"  # 67 words
    assert step.keep(Document("l", GOOD.replace(" ", "\n"))) == "gopher_short_doc"  # FineWeb's list rule is off
    assert step.params.gopher_repetition == GopherRepetitionParams()
    [rep] = build_steps([{"step": "gopher_repetition", "top_n_grams": [[2, 0.5]], "dup_n_grams": []}])
    assert rep.params.top_n_grams == [(2, 0.5)] and rep.keep(Document("r", "ala ma ala ma")) == "top_2_gram"
    with pytest.raises(UserError, match="min_words"):
        build_steps([{"step": "gopher_quality", "min_words": 3}])


def test_heuristics_in_a_pipeline(tmp_path):
    records = [{"id": "good", "text": GOOD}, {"id": "spam", "text": " ".join(["tanie kredyty"] * 40)},
               {"id": "short", "text": SHORT}]
    write_jsonl(tmp_path / "in" / "a.jsonl", records)
    cfg = PipelineConfig.model_validate({
        "input": {"paths": [str(tmp_path / "in" / "*.jsonl")]}, "output": {"path": str(tmp_path / "out"), "name": "c"},
        "steps": [{"step": "heuristics"}]})
    stats = run_pipeline(cfg, progress=False)
    step = stats["steps"][1]
    assert step["name"] == "heuristics" and step["dropped"] == {"top_2_gram": 1, "gopher_short_doc": 1}
    index = json.loads((tmp_path / "out" / "c.index.json").read_text())
    kept = [d.id for s in index["shards"] for d in read_documents([tmp_path / "out" / s["archive"]])]
    assert kept == ["good"]
    assert [d.meta["id"] for d in read_documents([tmp_path / "out" / "excluded" / "top_2_gram"])] == ["spam"]
