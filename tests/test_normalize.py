from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from conftest import SHARED, needs_shared, write_jsonl
from gniazdo.config import validate
from gniazdo.corpus import read_documents
from gniazdo.data.boilerplate import BoilerplateLines, RepeatedLines, is_menu_line
from gniazdo.data.morph import is_known_word
from gniazdo.data.normalize import Normalize, NormalizeParams
from gniazdo.document import Document
from gniazdo.errors import UserError
from gniazdo.pipeline import PipelineConfig, run_pipeline
from gniazdo.pipeline.step import step_class
from gniazdo.resources import sample_path

OSCAR = SHARED / "corpus" / "web" / "oscar_pl_small.txt"
_WORD = re.compile(r"[^\W\d_]+")
SWITCHES = ["mojibake", "polish_table", "nfc", "control_chars", "whitespace", "hyphen_join", "boilerplate",
            "repeated_lines"]


def norm(text: str, **params) -> tuple[str, dict[str, int]]:
    return Normalize(**params).normalize(text)


def run(step: Normalize, docs: list[Document]) -> tuple[list[Document], list[tuple[str, str]]]:
    dropped = []
    step.exclude = lambda doc, reason: dropped.append((doc.id, reason))
    return list(step.run(iter(docs))), dropped


def known_share(text: str) -> float:
    words = _WORD.findall(text)
    return sum(map(is_known_word, words)) / len(words)


def sample(kind_filter=None):
    truth = {json.loads(l)["id"]: json.loads(l) for l in sample_path("ground_truth.jsonl").open(encoding="utf-8")}
    docs = [json.loads(l) for l in sample_path("corpus.jsonl").open(encoding="utf-8")]
    return [(d, truth[d["id"]]) for d in docs if kind_filter is None or kind_filter(d, truth[d["id"]])]


# --- each repair on hand-made text -------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected, repairs", [
    ("Uprzejmie informujemy, Å¼e w zwiÄ…zku z modernizacjÄ…", "Uprzejmie informujemy, że w związku z modernizacją",
     {"mojibake": 3}),
    ("Z wypoĹĽyczalni mogÄ… korzystaÄ‡", "Z wypożyczalni mogą korzystać", {"mojibake": 3}),  # UTF-8 as CP1250
    ("naleÃ…Â¼y usunÃ„â€¦Ã„â€¡", "należy usunąć", {"mojibake": 2}),  # twice over
    ("„Pan Tadeusz” – poemat…", "„Pan Tadeusz” – poemat…", {}),  # Polish quotes are not uncurled
])
def test_mojibake(text, expected, repairs):
    assert norm(text) == (expected, repairs)


@pytest.mark.parametrize("text, expected, n", [
    ("Moŝna teŝ taniej niŝ w sklepie.", "Można też taniej niż w sklepie.", 3),  # OSCAR's ŝ
    ("Ŝe siedziba jest w DzierŜoniowie, Ŝe tak.", "Że siedziba jest w Dzierżoniowie, że tak.", 3),  # font's Ŝ
    ("Ju¿ dostêpne: ³azienka z wann± i widn± kuchni±.", "Już dostępne: łazienka z wanną i widną kuchnią.", 6),
    ("Wyszli¶my nad jezioro, jeĽdziła łódk± po wodzie.", "Wyszliśmy nad jezioro, jeździła łódką po wodzie.", 3),
    ("Urzšdzenie ma wyłšcznik i włšcznik.", "Urządzenie ma wyłącznik i włącznik.", 3),
    ("Mo¿na zjeœæ ró¿ne rzeczy.", "Można zjeść różne rzeczy.", 3),  # CP1250 as CP1252
    ("opano¬wali szla¬ku", "opanowali szlaku", 2),  # ¬ as a soft hyphen
    ("Ka?dy zabierze drugie ?niadanie i co? do picia. Zbi?rka o sz?stej. Czy zimno? Nie.",
     "Każdy zabierze drugie śniadanie i coś do picia. Zbiórka o szóstej. Czy zimno? Nie.", 5),
])
def test_polish_table(text, expected, n):
    assert norm(text) == (expected, {"polish_table": n})


@pytest.mark.parametrize("text", [
    "Objętość 2 m³, cena ¼ kg ± 5%, 10 £.",  # symbols, not letters
    "Dušan Kováč zjadł barszcz /boršč/ z Señorem.",  # a lone weak glyph in a word it maps to a Polish word
    "Czy pójdziesz? Nie wiem? Może?",  # real question marks
])
def test_polish_table_leaves_correct_text(text):
    assert norm(text) == (text, {})


def test_c1_leftovers_and_nfc_and_controls():
    assert norm("pojemno\x9cci") == ("pojemności", {"mojibake": 1, "polish_table": 1})
    decomposed = "Zaz\u0307o\u0301łc\u0301 ge\u0328s\u0301la\u0300 jaz\u0301n\u0301"
    assert norm(decomposed) == ("Zażółć gęślà jaźń", {"nfc": 8})
    assert norm("a\u200bb\ufeffc\x00d e\u00adf\u200dg\u2060h") == ("abcd efgh", {"control_chars": 6})


def test_whitespace():
    text = "\n  Ala\u00a0ma  kota \r\n\r\n\r\n\r\nI\tpsa.\u2003 \u3000\n\n"
    assert norm(text) == ("Ala ma kota\n\nI psa.", {"whitespace": 15})
    assert norm("Linia\x0cstrona\u2028druga\u2029akapit") == ("Linia\nstrona\ndruga\n\nakapit", {"whitespace": 3})


def test_hyphen_join():
    text = ("To jest wy-\nraz, pro\u00ad\nsty i samo-\nchód; ale biało-\nczerwony, Bielsko-\nBiała, "
            "rok 2020-\n2021 i nie-\nznanysłowo zostają.")
    assert norm(text) == ("To jest wyraz, prosty i samochód; ale biało-\nczerwony, Bielsko-\nBiała, "
                          "rok 2020-\n2021 i nie-\nznanysłowo zostają.", {"hyphen_join": 3})


def test_boilerplate_lines():
    text = "\n".join([
        "Strona główna | O nas | Kontakt | Koszyk (0)", "Jesteś tutaj: Strona główna > Przepisy > Zupy",
        "Zupa pomidorowa z ryżem", "Pomidory obierz ze skórki i pokrój w kostkę.", "Czytaj więcej »",
        "Lp. | Nazwa | J.m. | Ilość", "1 | Pomidory | kg | 1,5", "Udostępnij: Facebook | X | E-mail",
        "Zaloguj się, aby zobaczyć pełny przepis.", "Ta strona używa plików cookies. [Akceptuję] [Ustawienia]",
        "© 2024 Przepisy.pl. Wszelkie prawa zastrzeżone.", "Korzystając ze strony, wyrażasz zgodę na cookies."])
    assert norm(text) == ("Zupa pomidorowa z ryżem\nPomidory obierz ze skórki i pokrój w kostkę.\n"
                          "Lp. | Nazwa | J.m. | Ilość\n1 | Pomidory | kg | 1,5", {"boilerplate_lines": 8})
    assert norm(text, menu_lines=False)[1] == {"boilerplate_lines": 7}
    custom = norm("Reklama\nTreść.\nMoja stopka", boilerplate_patterns=["moja stopka"])
    assert custom == ("Reklama\nTreść.", {"boilerplate_lines": 1})
    extra = norm("Reklama\nTreść.\nMoja stopka", extra_boilerplate_patterns=["moja stopka"])
    assert extra == ("Treść.", {"boilerplate_lines": 2})


@pytest.mark.parametrize("line, menu", [
    ("Damskie | Męskie | Dziecięce | Torebki", True), ("Strona główna » Urząd » Karta usług", True),
    ("« Poprzednia | 1 | 2 | 3 | ... | 17 | Następna »", True), ("Ser • Chleb • Masło", True),
    ("| Imię | Nazwisko | Wiek |", False), ("1. Kowalska | PESEL 84033011004 | 6 200,00 zł", False),
    ("Jan Nowak | jan@example.pl | 600 100 200", False),
    ("To jest zdanie | a to drugie, dłuższe zdanie tutaj", False),
    ("»Nie« — rzekł — »tak« i »może«", False),
])
def test_menu_lines(line, menu):
    assert is_menu_line(line) is menu


def test_boilerplate_patterns_spare_prose():
    lines = ["«Tu — rzekł — dawni panowie dworem otoczeni,", "— Zaloguj się do panelu i kliknij Zapisz.",
             "Strona internetowa urzędu zawiera formularze.", "Kontaktowaliśmy się z nim wielokrotnie.",
             "Więcej informacji można uzyskać w urzędzie."]
    assert not any(BoilerplateLines().is_boilerplate(line) for line in lines)


# --- repeated lines across documents of one source ----------------------------------------------------------

def web_doc(i: int, host: str) -> Document:
    return Document(f"{host}-{i}", f"Gazeta Przykładowa – wiadomości z regionu\nArtykuł numer {i} o sprawach "
                    f"lokalnych.\nRedakcja: ul. Przykładowa 1, 00-001 Warszawa", {"url": f"https://{host}/art/{i}"})


def test_repeated_lines_dropped_after_n_earlier_documents():
    docs = [web_doc(i, "gazeta.example.pl") for i in range(8)] + [web_doc(0, "inna.example.pl")]
    out, dropped = run(Normalize(repeated_min_docs=5), docs)
    assert dropped == []
    assert [d.meta.get("repairs") for d in out] == [None] * 5 + [{"repeated_lines": 2}] * 3 + [None]
    assert out[5].text == "Artykuł numer 5 o sprawach lokalnych."
    assert out[8].text.startswith("Gazeta Przykładowa")  # another host has its own counts


def test_repeated_lines_source_key_min_chars_and_bounded_table():
    header = "Nagłówek serwisu z przepisami kuchni polskiej"
    docs = [Document(str(i), f"{header}\nSkładniki:\nTreść {i}.", {"domain": "a.pl", "feed": f"f{i % 2}"})
            for i in range(6)]
    out, _ = run(Normalize(repeated_min_docs=2), docs)
    assert [d.text for d in out][2:] == [f"Składniki:\nTreść {i}." for i in range(2, 6)]  # meta.domain: the source
    docs = [Document(d.id, f"{header}\nTreść {d.id}.", d.meta) for d in docs]
    out, _ = run(Normalize(repeated_min_docs=2, source_key="feed"), docs)
    assert [d.text.startswith("Nagłówek") for d in out] == [True] * 4 + [False] * 2  # per feed: f0, f1
    table = RepeatedLines(min_docs=1, max_entries=3, min_chars=1)
    for i in range(10):
        table.remove(f"linia {i}\ntreść", "s")
    assert len(table.table) == 3  # bounded: the oldest lines are forgotten
    assert table.remove("linia 0\nnowa treść", "s") == ("linia 0\nnowa treść", 0)


def test_a_document_made_only_of_repeated_lines_is_left_to_dedup():
    docs = [Document(str(i), "Ten sam tekst strony.", {"url": "https://x.pl/"}) for i in range(4)]
    out, dropped = run(Normalize(repeated_min_docs=2), docs)
    assert len(out) == 4 and dropped == [] and all("repairs" not in d.meta for d in out)


# --- the step -----------------------------------------------------------------------------------------------

MESSY = ("Strona główna | O nas | Kontakt\r\nZarzÄ…d informuje, niŝ  wy-\nraz\u200b jest  ok.\n\n\n\n"
         "Zaz\u0307ółć")


def test_repairs_are_counted_and_every_operation_switches_off():
    text, repairs = norm(MESSY, repeated_lines=False)
    assert text == "Zarząd informuje, niż wyraz jest ok.\n\nZażółć"
    assert repairs == {"mojibake": 1, "polish_table": 1, "nfc": 1, "control_chars": 1, "whitespace": 4,
                       "hyphen_join": 1, "boilerplate_lines": 1}
    assert norm(MESSY, **{s: False for s in SWITCHES}) == (MESSY, {})
    for switch, kind in [("mojibake", "mojibake"), ("polish_table", "polish_table"), ("nfc", "nfc"),
                         ("control_chars", "control_chars"), ("hyphen_join", "hyphen_join"),
                         ("boilerplate", "boilerplate_lines")]:
        assert kind not in norm(MESSY, **{switch: False})[1], switch


def test_step_annotates_and_drops_empty_documents():
    docs = [Document("a", "Ala ma kota.", {}), Document("b", "Ala  ma kota. ", {}),
            Document("c", "Ta strona używa plików cookies.\nCzytaj więcej »", {}), Document("d", " \n\u200b", {})]
    out, dropped = run(step_class("normalize")(), docs)
    assert [(d.id, d.text, d.meta) for d in out] == [("a", "Ala ma kota.", {}),
                                                     ("b", "Ala ma kota.", {"repairs": {"whitespace": 2}})]
    assert dropped == [("c", "empty_after_normalize"), ("d", "empty_after_normalize")]
    assert docs[2].text.startswith("Ta strona")  # a dropped document keeps its original text


def test_params_are_validated():
    assert validate(NormalizeParams, {"repeated_min_docs": 3}).repeated_min_docs == 3
    with pytest.raises(UserError, match="steps.0.extra_boilerplate_patterns.*not a valid regular expression"):
        validate(NormalizeParams, {"extra_boilerplate_patterns": ["(niedomknięty"]}, prefix="steps.0.")
    with pytest.raises(UserError, match="repeated_min_docs"):
        validate(NormalizeParams, {"repeated_min_docs": 0})


# --- the sample corpus and OSCAR --------------------------------------------------------------------------------

def test_correct_polish_in_the_sample_corpus_is_left_alone():
    """The whole sample corpus through the step (one source: no URLs); every non-junk Polish document comes out
    byte-identical, except whitespace fixes and the comment counters of the comment pages (``Komentarze (11)``),
    which are boilerplate."""
    docs = sample()
    out, dropped = run(Normalize(), [Document(d["id"], d["text"], {}) for d, _ in docs])
    texts = {d.id: (d.text, d.meta.get("repairs", {})) for d in out}
    why, checked = Counter(), 0
    for d, truth in docs:
        if truth["language"] != "pl" or truth["junk"]:
            continue
        checked += 1
        text, repairs = texts[d["id"]]
        why.update(repairs.keys())
        assert set(repairs) <= {"whitespace", "boilerplate_lines"}, (d["id"], repairs)
        original = d["text"]
        if "boilerplate_lines" in repairs:
            lines = original.split("\n")
            removed = [line for line in lines if re.fullmatch(r"Komentarze \(\d+\)", line)]
            assert len(removed) == repairs["boilerplate_lines"], d["id"]
            original = re.sub(r"\n{3,}", "\n\n", "\n".join(l for l in lines if l not in removed)).strip("\n")
        assert text.split() == original.split(), d["id"]  # the same words: only whitespace differs
        assert (text == original) == ("whitespace" not in repairs), d["id"]
    assert checked == 205 and why == {"boilerplate_lines": 17, "whitespace": 10}  # the figures in the report
    assert {i for i, _ in dropped} <= {d["id"] for d, t in docs if t["junk"]}  # only junk can become empty


def test_mojibake_sample_documents_become_known_polish():
    docs = sample(lambda d, t: t["junk_kind"] == "mojibake")
    assert len(docs) == 10
    step = Normalize()
    for d, _ in docs:
        before, after = known_share(d["text"]), known_share(step.normalize(d["text"])[0])
        assert after > before, d["id"]
        assert after >= (0.9 if d["id"] == "moji-008" else 0.98), (d["id"], before, after)  # 008: ? for letters


@needs_shared(OSCAR)
def test_oscar_lines():
    lines = OSCAR.read_text(encoding="utf-8").split("\n")
    step = Normalize(boilerplate=False, repeated_lines=False, whitespace=False, hyphen_join=False)
    s_hat = [line for line in lines if "ŝ" in line]
    assert len(s_hat) >= 20
    for line in s_hat:
        fixed = step.normalize(line)[0]
        assert "ŝ" not in fixed and "niŝ " not in fixed
    latin2 = next(line for line in lines if "Wynajmê 3 pokojowe" in line)
    fixed = step.normalize(latin2)[0]
    assert "Wynajmę 3 pokojowe z łazienką i oddzielną toaletą, widną kuchnią" in fixed
    assert known_share(fixed) > known_share(latin2) + 0.2
    polish = re.compile(r"[A-Za-z0-9ąćęłńóśźżĄĆĘŁŃÓŚŹŻ\s.,;:!?()\"'„”–—%/-]*")
    clean = [line for line in lines[:3000] if polish.fullmatch(line)]
    assert len(clean) > 2000
    assert all(step.normalize(line)[0] == line for line in clean)


# --- a pipeline ---------------------------------------------------------------------------------------------

def test_pipeline_run(tmp_path):
    records = [{"id": "moji", "text": "ZarzÄ…d informuje, Å¼e zebranie odbÄ™dzie siÄ™ jutro."},
               {"id": "nav", "text": "Strona główna | O nas | Kontakt\nTa strona używa plików cookies."},
               {"id": "ok", "text": "Zwykły, poprawny tekst po polsku."}]
    write_jsonl(tmp_path / "in" / "a.jsonl", records)
    cfg = PipelineConfig.model_validate({"input": {"paths": [str(tmp_path / "in" / "a.jsonl")]},
                                         "output": {"path": str(tmp_path / "out"), "format": "jsonl"},
                                         "steps": [{"step": "normalize", "repeated_min_docs": 3}]})
    stats = run_pipeline(cfg, progress=False)
    out = {d.id: d for d in read_documents([Path(p) for p in stats["outputs"]])}
    assert out["moji"].text == "Zarząd informuje, że zebranie odbędzie się jutro."
    assert out["moji"].meta["repairs"] == {"mojibake": 4}
    assert out["ok"].text == records[2]["text"] and "repairs" not in out["ok"].meta
    assert stats["steps"][1]["dropped"] == {"empty_after_normalize": 1}
    assert [d.id for d in read_documents([tmp_path / "out" / "excluded" / "empty_after_normalize"])] == ["nav"]
