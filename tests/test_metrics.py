"""The ``metrics`` step: SpeakLeash's per-document metrics, with Morfeusz standing in for spaCy's Polish model."""

from __future__ import annotations

import statistics
import warnings

import pytest

from conftest import BENCHMARK_SM, needs_shared
from gniazdo.data.metrics import METRIC_KEYS, Metrics, compute_metrics, gunning_fog
from gniazdo.data.metrics_tokens import dotted_words, initial_words, sentences
from gniazdo.data.morph import analyse, analyser, is_known_word, word_class
from gniazdo.data.tokenize_pl import tokenize
from gniazdo.data.stopwords_pl import STOP_WORDS
from gniazdo.document import Document
from gniazdo.pipeline.step import step_class


def test_hand_checked_polish_text():
    text = "Koniec z darmowymi bankomatami mBanku. Klienci zapłacą 5 zł od każdej wypłaty!"
    m = compute_metrics(text)
    # 14 tokens: 12 words + "." + "!"; 2 sentences; stop words: z, od.
    assert (m["characters"], m["sentences"], m["words"], m["punctuations"], m["stopwords"]) == (78, 2, 12, 2, 2)
    # nouns: Koniec (a common noun at the sentence start, not the surname), bankomatami, mBanku, Klienci,
    # wypłaty; verb: zapłacą; adjective: darmowymi ("każdej" is DET); "5" NUM; "zł" an abbreviation (X).
    assert (m["nouns"], m["verbs"], m["adjectives"], m["adverbs"]) == (5, 1, 1, 0)
    assert (m["pos_num"], m["pos_x"], m["oovs"], m["symbols"]) == (1, 1, 0, 0)
    assert (m["camel_case"], m["capitalized_words"]) == (1, 0)  # mBanku
    assert m["avg_sentence_length"] == 7.0  # 14 tokens / 2 sentences
    assert m["avg_word_length"] == round(65 / 12, 4)
    assert m["noun_ratio"] == round(5 / 12, 4) and m["verb_ratio"] == round(1 / 12, 4)
    assert m["lexical_density"] == 1.0  # 12 distinct lemmas
    assert m["gunning_fog"] > 0
    assert set(m) == set(METRIC_KEYS)


def test_tokens_are_spacys_polish_tokens():
    # The shared tokenizer (tests/test_tokenize_pl.py compares it with spaCy): a trailing "..." is three
    # full stops, a hyphen splits, "1,30" and "12:30" stay whole; whitespace other than one space is a token.
    assert tokenize("Biało-czerwony, 1,30 zł, onet.pl... ok. 12:30") == [
        "Biało", "-", "czerwony", ",", "1,30", "zł", ",", "onet.pl", ".", ".", ".", "ok", ".", "12:30",
    ]  # fmt: skip
    m = compute_metrics("Biało-czerwony, 1,30 zł, onet.pl... ok. 12:30")
    assert m["punctuations"] == 7 and m["words"] == 7
    m = compute_metrics("Był 2014 r. i 5 proc. wzrostu.")
    assert m["punctuations"] == 3 and m["words"] == 7 and m["sentences"] == 1
    assert m["pos_x"] == 2  # "r." and "proc." read as abbreviations, not as forms of "ra"/"proca"
    spaced = compute_metrics("Ala ma kota.\n\nA  pies nie.")  # space tokens "\n\n" and " " count in lengths
    assert spaced["sentences"] == 2 and spaced["words"] == 6 and spaced["avg_sentence_length"] == (5 + 5) / 2


def test_context_words():
    tokens = tokenize("Koniec. Ok. To jest ok. r.\nNowy wiersz i Nazwa")
    assert initial_words(tokens) == ["Koniec", "Ok", "To", "Nowy"]  # after . ! ? … or a line break
    assert dotted_words(tokens) == ["Koniec", "Ok", "ok", "r"]


def test_sentence_rules():
    text = "Wzrost o 25 proc. Jesteśmy wyżej. W 2014 r. i m.in. w maju „Tak” – rzekł. 3 maja?\nFoto:\nPAP\n\nA"
    assert sentences(text) == [
        "Wzrost o 25 proc.",
        "Jesteśmy wyżej.",
        "W 2014 r. i m.in. w maju „Tak” – rzekł.",
        "3 maja?",
        "Foto:\nPAP",
        "A",
    ]  # a single line break does not end a sentence; a blank line does


def test_empty_and_degenerate_texts():
    assert compute_metrics("") == dict.fromkeys(METRIC_KEYS, 0)
    blank = compute_metrics("  \n ")
    assert blank["characters"] == 4 and blank["sentences"] == blank["words"] == blank["gunning_fog"] == 0
    only_punct = compute_metrics("...!?")
    assert only_punct["punctuations"] == 3 and only_punct["words"] == 0 and only_punct["sentences"] == 1
    assert only_punct["noun_ratio"] == only_punct["lexical_density"] == only_punct["gunning_fog"] == 0


def test_english_text_is_foreign_and_oov():
    m = compute_metrics("The quick brown fox jumps over the lazy dog and runs away.")
    assert m["words"] == 12
    assert m["oovs"] >= 9 and m["pos_x"] >= 8  # Polish: "dog" is a noun (a mastiff); the rest is unknown
    polish = compute_metrics("Szybki brązowy lis przeskakuje nad leniwym psem i ucieka.")
    assert polish["oovs"] == polish["pos_x"] == 0


def test_camel_case_and_capitalized_words():
    m = compute_metrics("iPhone, mBank i eBay to marki; PKO BP też. CamelCase nie. W Polsce żółwŻółw.")
    assert m["camel_case"] == 4  # iPhone, mBank, eBay, żółwŻółw (Polish letters); not CamelCase
    assert m["capitalized_words"] == 3  # PKO, BP and "W": str.isupper, as SpeakLeash counts it


def test_symbols_and_percent():
    m = compute_metrics("Wzrost o 5% i 3 € + VAT | dalej.")
    assert m["symbols"] == 3  # %, €, + ; "|" is not a symbol for spaCy's model
    assert m["punctuations"] == 2  # "%" is also punctuation by Unicode (spaCy counts it in both), and "."


def test_word_classes_from_morfeusz():
    assert word_class("Koniec", initial=True).pos == "NOUN"
    assert word_class("Koniec").pos == "PROPN"  # mid-sentence capital: the surname reading
    assert word_class("korzystanie") == ("NOUN", "korzystać", False)  # gerund
    assert word_class("jest").pos == "AUX" and word_class("została").pos == "AUX"
    assert word_class("zrobiłem") == ("VERB", "zrobić", False)  # agglutinate split off
    assert word_class("zrobiony").pos == "ADJ"  # participle
    assert word_class("nowe").pos == "ADJ" and word_class("szybko").pos == "ADV"
    assert word_class("kraj").pos == "NOUN" and word_class("dzieje").pos == "VERB"
    assert word_class("ok", dotted=True).pos == "X" and word_class("ok").pos == "NOUN"
    assert word_class("Blodget") == ("PROPN", "Blodget", True) and word_class("the") == ("X", "the", True)
    assert word_class("and").oov  # only the name "Anda" matches: a lower-case form is not a name
    assert is_known_word("Polsce") and not is_known_word("xqzt")


def test_stop_words_are_spacys():
    spacy_pl = pytest.importorskip("spacy.lang.pl.stop_words", reason="spaCy not installed")
    assert STOP_WORDS == spacy_pl.STOP_WORDS


def test_gunning_fog_equals_textstat():
    """Our per-chunk Gunning fog gives textstat's float to the last bit, here and on the whole sample corpus."""
    from gniazdo.corpus import read_documents
    from gniazdo.resources import sample_path
    from textstat.textstat import textstatistics

    ts = textstatistics()
    ts.set_lang("pl")
    texts = [
        "Prędkość internetu stacjonarnego w Polsce wzrosła w ostatnim kwartale niemal o 25 proc. Jesteśmy wyżej.",
        "Konstantynopolitańczykowianeczka! Nie... To niemożliwe, powiedziała nauczycielka matematyki.",
        "It's O'Neil's 'quoted' text. Don't! A b. C d e f.",
        "",
    ]
    texts += [d.text for d in read_documents([sample_path("corpus.jsonl")])]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for text in texts:
            assert gunning_fog(text) == ts.gunning_fog(text), text[:80]


def test_hyphenation_points_are_pyphens():
    from textstat.backend.selections import list_words
    from textstat.backend.utils import get_pyphen

    from gniazdo.corpus import read_documents
    from gniazdo.data.metrics import _hyphenation_points
    from gniazdo.resources import sample_path

    words = {w.lower() for d in read_documents([sample_path("corpus.jsonl")]) for w in list_words(d.text)}
    words |= {"", "a", "konstantynopolitańczykowianeczka", "i̇stanbul", "straße"}
    pyphen = get_pyphen("pl")
    assert len(words) > 5000
    assert [_hyphenation_points(w) for w in sorted(words)] == [len(pyphen.positions(w)) for w in sorted(words)]


def test_morfeusz_readings_match_its_wrapper(monkeypatch):
    from gniazdo.data import morph

    forms = ["zrobiłem", "Polsce", "ok.", "kota,", "xqzt", "Koniec", "2015", "nie", "m.in.", "żółw", "Kraków"]
    expected = {form: [(start, lemma, tag, tuple(names), tuple(labels))
                       for start, _, (_, lemma, tag, names, labels) in analyser().analyse(form)] for form in forms}
    assert {form: analyse(form) for form in forms} == expected
    assert any(names for readings in expected.values() for *_, names, _ in readings)  # names and labels seen
    assert any(labels for readings in expected.values() for *_, labels in readings)

    class WrapperOnly:  # a morfeusz2 that would not expose its core object: the wrapper's answers are used
        analyse = staticmethod(analyser().analyse)

    monkeypatch.setattr(morph, "analyser", lambda: WrapperOnly())
    assert {form: analyse(form) for form in forms} == expected


def test_step_registered_overwrite_and_keep():
    assert step_class("metrics") is Metrics
    docs = [Document("a", "Ala ma kota.", {"words": 99, "src": "x"}), Document("b", "", {})]
    out = list(Metrics(overwrite=False).run(iter(docs)))
    assert out[0].meta["words"] == 99 and out[0].meta["sentences"] == 1 and out[0].meta["src"] == "x"
    assert out[1].meta["words"] == 0
    out = list(Metrics().run(iter(docs)))
    assert out[0].meta["words"] == 3 and out[0].meta["stopwords"] == 1  # "ma"


@needs_shared(BENCHMARK_SM)
def test_agrees_with_speakleash_benchmark_metrics():
    """SpeakLeash's own spaCy metrics ship in this archive: ours must agree (every 5th document, ~3 s).

    Measured on these 410 documents: totals words -0.99%, punctuations -0.07%, stop words 0.00%, sentences
    -0.08%, nouns -1.14%, verbs -0.45%; median per-document difference 0.7% / 0% / 0% / 5.6% / 3.4% / 2.8%;
    per-document correlation of the noun share 0.89, of the verb share 0.96. The archive was made by
    SpeakLeash's first analyzer, which counted parts of speech over non-stop-words only: pos_stopwords=False
    does the same.

    The tokens are spaCy's: stop words match in every document and punctuation in 96% of them. Words fall
    short by exactly the number of space tokens (line breaks) in 97% of the documents: the archive counted
    those as words (its spaCy build did not mark them is_space), which we do not.
    """
    from gniazdo.corpus import read_documents

    docs = list(read_documents([BENCHMARK_SM]))[::5]
    ours = [compute_metrics(d.text, pos_stopwords=False) for d in docs]

    def total_diff(key, theirs):
        a, b = sum(o[key] for o in ours), sum(d.meta[theirs] for d in docs)
        return abs(a - b) / b

    def median_rel(key, theirs):
        return statistics.median(
            abs(o[key] - d.meta[theirs]) / max(d.meta[theirs], 1) for o, d in zip(ours, docs, strict=True)
        )

    def share_corr(key):
        a = [o[key] / max(o["words"], 1) for o in ours]
        b = [d.meta[key] / max(d.meta["words"], 1) for d in docs]
        return statistics.correlation(a, b)

    assert all(o["characters"] == d.meta["length"] for o, d in zip(ours, docs, strict=True))
    same = {key: sum(o[key] == d.meta[key] for o, d in zip(ours, docs)) / len(docs) for key in ("stopwords",
                                                                                             "punctuations")}
    assert same["stopwords"] == 1.0 and same["punctuations"] > 0.95
    space_tokens = [sum(t.isspace() for t in tokenize(d.text)) for d in docs]
    words_and_spaces = sum(o["words"] + n for o, n in zip(ours, space_tokens))
    assert abs(words_and_spaces / sum(d.meta["words"] for d in docs) - 1) < 0.001  # see the docstring
    assert total_diff("words", "words") < 0.01 and median_rel("words", "words") < 0.015
    assert total_diff("punctuations", "punctuations") < 0.01 and median_rel("punctuations", "punctuations") < 0.01
    assert total_diff("stopwords", "stopwords") < 0.005 and median_rel("stopwords", "stopwords") < 0.005
    assert total_diff("sentences", "sentences") < 0.03 and median_rel("sentences", "sentences") < 0.08
    assert total_diff("nouns", "nouns") < 0.03 and median_rel("nouns", "nouns") < 0.05
    assert total_diff("verbs", "verbs") < 0.03 and median_rel("verbs", "verbs") < 0.05
    assert share_corr("nouns") > 0.85 and share_corr("verbs") > 0.93
    for key in ("nouns", "verbs", "words", "sentences"):
        assert statistics.correlation([o[key] for o in ours], [d.meta[key] for d in docs]) > 0.98


def test_pipeline_metrics_then_quality_on_the_sample_corpus(tmp_path):
    """From YAML keys: metrics feeds the quality rule, two workers give what one gives."""
    from gniazdo.corpus import read_documents
    from gniazdo.pipeline import PipelineConfig, run_pipeline
    from gniazdo.resources import sample_path

    def run(out, workers):
        cfg = PipelineConfig.model_validate(
            {
                "input": {"paths": [str(sample_path("corpus.jsonl"))]},
                "output": {"path": str(out), "name": "c", "format": "jsonl"},
                "steps": [{"step": "metrics", "overwrite": True}, {"step": "quality"}],
                "workers": workers,
            }
        )
        run_pipeline(cfg, progress=False)
        return {d.id: d.meta for d in read_documents([out / "c.jsonl.zst"])}

    one = run(tmp_path / "one", 1)
    assert len(one) == 265
    assert all(set(METRIC_KEYS) <= set(meta) and meta["quality"] in ("HIGH", "MEDIUM", "LOW") for meta in one.values())
    encyclopedic = one["ency-001"]
    assert encyclopedic["words"] > 100 and encyclopedic["nouns"] > encyclopedic["verbs"] > 0
    assert run(tmp_path / "two", 2) == one
