"""Each task YAML renders the leaderboard's prompt for a fixture document, character for character.

The expected strings are the SpeakLeash harness's templates filled in by hand with the fixture document: the
prompts are data the leaderboard fixes, so any drift (a space, a quote, an option) is a bug.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gniazdo.eval.scores import SUITES, TASKS

FIXTURES = Path(__file__).parent / "fixtures" / "data"


@pytest.fixture(scope="module")
def tasks():
    from gniazdo.eval.runner import load_tasks

    return load_tasks(list(TASKS), FIXTURES)["tasks"]


POLEMO_MC = ("Opinia: \"{}\"\nOkreśl sentyment podanej opinii: Neutralny, Negatywny, Pozytywny, Niejednoznaczny.\n"
             "Sentyment:")
POLEMO_GEN = ("Opinia: \"{}\"\nOkreśl sentyment podanej opinii. Możliwe odpowiedzi:\nA - Neutralny\nB - Negatywny\n"
              "C - Pozytywny\nD - Niejednoznaczny\nPrawidłowa odpowiedź:")
SENTIMENTS = ["Neutralny", "Negatywny", "Pozytywny", "Niejednoznaczny"]
YES_NO = ["Nie", "Tak"]
BELEBELE = ("Fragment: \"Kot spał na kanapie przez całe popołudnie.\"\nPytanie: \"Gdzie spał kot?\"\n"
            "Możliwe odpowiedzi:\nA - Na podłodze\nB - Na kanapie\nC - W ogrodzie\nD - Na dachu\n"
            "Prawidłowa odpowiedź:")

# task -> (prompt of the first test document, its gold, the choices (MC) or None (generative))
EXPECTED = {
    "polemo2_in_multiple_choice": (POLEMO_MC.format("Lekarz wysłuchał mnie uważnie i pomógł ."), 2, SENTIMENTS),
    "polemo2_out_multiple_choice": (POLEMO_MC.format("Drukarka działa bez zarzutu , świetny zakup ."), 2, SENTIMENTS),
    "polish_8tags_multiple_choice": (
        "Tytuł: \"Archeolodzy odkryli grodzisko z X wieku .\"\nDo podanego tytułu przyporządkuj jedną najlepiej "
        "pasującą kategorię z podanych: Film, Historia, Jedzenie, Medycyna, Motoryzacja, Praca, Sport, Technologie."
        "\nKategoria:", 1,
        ["Film", "Historia", "Jedzenie", "Medycyna", "Motoryzacja", "Praca", "Sport", "Technologie"]),
    "polish_belebele_mc": (BELEBELE, 1, ["A", "B", "C", "D"]),
    "polish_dyk_multiple_choice": (
        "Pytanie: \"kto odkrył polon?\"\nSugerowana odpowiedź: \"Polon odkryła Maria Skłodowska-Curie wraz z "
        "mężem.\"\nPytanie: Czy sugerowana odpowiedź na zadane pytanie jest poprawna?\nOdpowiedz krótko "
        "\"Tak\" lub \"Nie\". Prawidłowa odpowiedź:", 1, YES_NO),
    "polish_ppc_multiple_choice": (
        "Zdanie A: \"Drzwi są otwarte.\"\nZdanie B: \"Drzwi nie są zamknięte.\"\nPytanie: jaka jest zależność "
        "między zdaniami A i B? Możliwe odpowiedzi:\nA - znaczą dokładnie to samo\nB - mają podobne znaczenie\n"
        "C - mają różne znaczenie\nPrawidłowa odpowiedź:", 0, ["A", "B", "C"]),
    "polish_psc_multiple_choice": (
        "Tekst: \"Kolej uruchomi nowe połączenie do Gdyni.\"\nPodsumowanie: \"Będzie nowy pociąg do Gdyni.\"\n"
        "Pytanie: Czy podsumowanie dla podanego tekstu jest poprawne?\nOdpowiedz krótko \"Tak\" lub \"Nie\". "
        "Prawidłowa odpowiedź:", 1, YES_NO),
    "polish_cbd_multiple_choice": (
        "Wypowiedź: \"@anonymized_account Świetny mecz wczoraj.\"\nPytanie: Czy wypowiedź jest przejawem "
        "cyberprzemocy, lub jest krzywdząca wobec innych?\nOdpowiedz krótko \"Tak\" lub \"Nie\". "
        "Prawidłowa odpowiedź:", 0, YES_NO),
    "polish_klej_ner_multiple_choice": (
        "Zdanie: \"Anna Nowak wygrała konkurs .\"\nJakiego rodzaju jest nazwana jednostka, jeżeli występuje w "
        "podanym zdaniu?\nMożliwe odpowiedzi: Brak nazwanej jednostki, Nazwa miejsca, Nazwa osoby, Nazwa "
        "organizacji, Czas, Nazwa geograficzna.\nRodzaj:", 2,
        ["Brak jednostki", "Nazwa miejsca", "Nazwa osoby", "Nazwa organizacji", "Czas", "Nazwa geograficzna"]),
    "polish_polqa_reranking_multiple_choice": (
        "Kontekst: Praga jest stolicą Czech. \n Pytanie: Jaka jest stolica Czech? \n Czy kontekst jest relewantny "
        "dla pytania? \n Odpowiedz krótko \"Tak\" lub \"Nie\". Prawidłowa odpowiedź:", 1, YES_NO),
    "polemo2_in": (POLEMO_GEN.format("Lekarz wysłuchał mnie uważnie i pomógł ."), "C", None),
    "polemo2_out": (POLEMO_GEN.format("Drukarka działa bez zarzutu , świetny zakup ."), "C", None),
    "polish_8tags_regex": (
        "Tytuł: \"Archeolodzy odkryli grodzisko z X wieku .\"\nPytanie: jaka kategoria najlepiej pasuje do "
        "podanego tytułu?\nMożliwe odpowiedzi:\nA - film\nB - historia\nC - jedzenie\nD - medycyna\n"
        "E - motoryzacja\nF - praca\nG - sport\nH - technologie\nPrawidłowa odpowiedź:", "B", None),
    "polish_belebele_regex": (BELEBELE, "B", None),
    "polish_dyk_regex": (
        "Pytanie: \"kto odkrył polon?\"\nSugerowana odpowiedź: \"Polon odkryła Maria Skłodowska-Curie wraz z "
        "mężem.\"\nCzy sugerowana odpowiedź na zadane pytanie jest poprawna? Możliwe opcje:\n"
        "A - brakuje sugerowanej odpowiedzi\nB - nie, sugerowana odpowiedź nie jest poprawna\n"
        "C - tak, sugerowana odpowiedź jest poprawna\nD - brakuje pytania\nPrawidłowa opcja:", "C", None),
    "polish_ppc_regex": (
        "Zdanie A: \"Drzwi są otwarte.\"\nZdanie B: \"Drzwi nie są zamknięte.\"\nPytanie: jaka jest zależność "
        "między zdaniami A i B? Możliwe odpowiedzi:\nA - wszystkie odpowiedzi poprawne\nB - znaczą dokładnie to "
        "samo\nC - mają podobne znaczenie\nD - mają różne znaczenie\nPrawidłowa odpowiedź:", "B", None),
    "polish_psc_regex": (
        "Fragment 1: \"Kolej uruchomi nowe połączenie do Gdyni.\"\nFragment 2: \"Będzie nowy pociąg do Gdyni.\"\n"
        "Pytanie: jaka jest zależność między fragmentami 1 i 2?\nMożliwe odpowiedzi:\n"
        "A - wszystkie odpowiedzi poprawne\nB - dotyczą tego samego artykułu\nC - dotyczą różnych artykułów\n"
        "D - brak poprawnej odpowiedzi\nPrawidłowa odpowiedź:", "B", None),
    "polish_cbd_regex": (
        "Wypowiedź: \"@anonymized_account Świetny mecz wczoraj.\"\nPytanie: Jaka kategoria najlepiej pasuje do "
        "podanej wypowiedzi?\nMożliwe odpowiedzi:\nA - nieszkodliwa\nB - szyderstwo\nC - obelga\nD - insynuacja\n"
        "E - groźba\nF - molestowanie\nPrawidłowa odpowiedź:", "0", None),
    "polish_klej_ner_regex": (
        "Zdanie: \"Anna Nowak wygrała konkurs .\"\nPytanie: Jakiego rodzaju jest nazwana jednostka, jeżeli "
        "występuje w podanym zdaniu?\nMożliwe odpowiedzi:\nA - Brak nazwanej jednostki\nB - Nazwa miejsca\n"
        "C - Nazwa osoby\nD - Nazwa organizacji\nE - Czas\nF - Nazwa geograficzna\nPrawidłowa odpowiedź:", "C", None),
    "polish_polqa_closed_book": ("Pytanie: Jaka jest stolica Czech? \n Prawidłowa odpowiedź:", ["Praga"], None),
    "polish_polqa_open_book": (
        "Kontekst: Praga jest stolicą Czech. \n Pytanie: Jaka jest stolica Czech? \n Prawidłowa odpowiedź:",
        ["Praga"], None),
    "polish_poquad_open_book": (
        "Tytuł: Hel \n Kontekst: Hel to miasto na Mierzei Helskiej. \n Pytanie: Gdzie leży Hel? \n "
        "Prawidłowa odpowiedź (krótki cytat z Kontekstu):", " na Mierzei Helskiej", None),
}


def test_every_task_has_an_expected_prompt():
    assert set(EXPECTED) == set(TASKS)
    assert set(SUITES["pl-mc"]) | set(SUITES["pl-gen"]) == set(SUITES["pl-leaderboard"]) == set(TASKS)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_prompt_target_and_choices(tasks, name):
    prompt, gold, choices = EXPECTED[name]
    task = tasks[name]
    doc = task.eval_docs[0]
    assert task.doc_to_text(doc) == prompt
    assert task.doc_to_target(doc) == gold
    if choices is None:
        assert task.OUTPUT_TYPE == "generate_until" and TASKS[name].kind == "gen"
    else:
        assert task.OUTPUT_TYPE == "multiple_choice" and TASKS[name].kind == "mc"
        assert task.doc_to_choice(doc) == choices


@pytest.mark.parametrize("name", [n for n, t in TASKS.items() if t.kind == "gen" and not t.metric.startswith("lev")])
def test_generative_classification_is_greedy_50_tokens_stopping_at_punctuation(tasks, name):
    gen = tasks[name].config.generation_kwargs
    assert gen["do_sample"] is False and gen["max_gen_toks"] == 50
    assert {".", ","} <= set(gen["until"])
    first = tasks[name].config.filter_list[0]
    assert first["name"] == "score-first" and first["filter"][0]["function"] == "regex"


def test_gold_mappings_over_all_labels(tasks):
    """Every label value maps where the leaderboard maps it (not just the first document's)."""
    mc, gen = tasks["polemo2_in_multiple_choice"], tasks["polemo2_in"]
    for i, label in enumerate(["__label__meta_zero", "__label__meta_minus_m", "__label__meta_plus_m",
                               "__label__meta_amb"]):
        assert mc.doc_to_target({"sentence": "x", "target": label}) == i
        assert gen.doc_to_target({"sentence": "x", "target": label}) == "ABCD"[i]
    ner_mc, ner_gen = tasks["polish_klej_ner_multiple_choice"], tasks["polish_klej_ner_regex"]
    for i, label in enumerate(["noEntity", "placeName", "persName", "orgName", "time", "geogName"]):
        assert ner_mc.doc_to_target({"sentence": "x", "target": label}) == i
        assert ner_gen.doc_to_target({"sentence": "x", "target": label}) == "ABCDEF"[i]
    ppc_mc, ppc_gen = tasks["polish_ppc_multiple_choice"], tasks["polish_ppc_regex"]
    for label, idx, letter in ((1, 0, "B"), (2, 1, "C"), (3, 2, "D")):  # A is the distractor in the gen prompt
        doc = {"sentence_A": "a", "sentence_B": "b", "label": label}
        assert ppc_mc.doc_to_target(doc) == idx and ppc_gen.doc_to_target(doc) == letter
    dyk, psc = tasks["polish_dyk_regex"], tasks["polish_psc_regex"]
    assert [dyk.doc_to_target({"question": "q", "answer": "a", "target": t}) for t in (0, 1)] == ["B", "C"]
    assert [psc.doc_to_target({"extract_text": "e", "summary_text": "s", "label": t}) for t in (0, 1)] == ["C", "B"]
    tags = tasks["polish_8tags_regex"]
    assert [tags.doc_to_target({"sentence": "s", "label": i}) for i in range(8)] == list("ABCDEFGH")
    assert tasks["polish_belebele_regex"].doc_to_target({**tasks["polish_belebele_mc"].eval_docs[1]}) == "A"


def test_few_shot_context_uses_the_training_split(tasks):
    """One shot from the one-document train split: answer after the target delimiter, blank line between."""
    mc = tasks["polemo2_out_multiple_choice"]
    mc.set_config(key="num_fewshot", value=1)
    mc.set_fewshot_seed(1234)
    doc = mc.eval_docs[0]
    assert mc.fewshot_context(doc, num_fewshot=1) == (
        POLEMO_MC.format("Kurs był nudny i za drogi .") + " Negatywny\n\n"
        + POLEMO_MC.format("Drukarka działa bez zarzutu , świetny zakup ."))
    gen = tasks["polish_dyk_regex"]
    gen.set_fewshot_seed(1234)
    shot = gen.fewshot_context(gen.eval_docs[0], num_fewshot=1)
    assert shot.startswith("Pytanie: \"jak nazywa się stolica Polski?\"\nSugerowana odpowiedź: \"Warszawa – "
                           "stolica Polski.\"\nCzy sugerowana")
    assert "Prawidłowa opcja: C\n\nPytanie: \"kto odkrył polon?\"" in shot and shot.endswith("Prawidłowa opcja:")


def test_data_dir_switches_dataset_and_splits():
    from gniazdo.eval.runner import local_task_config

    cfg = local_task_config("polish_poquad_open_book", FIXTURES)
    assert cfg["dataset_path"] == "json" and cfg["test_split"] == "test" and cfg["training_split"] == "train"
    assert set(cfg["dataset_kwargs"]["data_files"]) == {"train", "test"}
    assert cfg["doc_to_text"].startswith("Tytuł: {{title}}")  # the prompt is the YAML's
    belebele = local_task_config("polish_belebele_mc", FIXTURES)
    assert belebele["fewshot_split"] == "test" and belebele["training_split"] is None  # few-shot from test
    tags = local_task_config("polish_8tags_multiple_choice", FIXTURES)
    assert tags["fewshot_split"] == "train" and tags["validation_split"] is None
    assert local_task_config("polish_8tags_multiple_choice", FIXTURES / "nothing-here") is None


def test_hub_datasets_are_the_leaderboards():
    """Without --data-dir the YAMLs read the Hub datasets the leaderboard uses."""
    from gniazdo.eval.runner import _load_yaml, task_manager

    paths = {n: _load_yaml(task_manager().task_index[n].yaml_path)["dataset_path"] for n in TASKS}
    assert paths["polemo2_in_multiple_choice"] == paths["polemo2_in"] == "allegro/klej-polemo2-in"
    assert paths["polemo2_out_multiple_choice"] == "allegro/klej-polemo2-out"
    assert paths["polish_dyk_multiple_choice"] == "allegro/klej-dyk"
    assert paths["polish_psc_multiple_choice"] == "allegro/klej-psc"
    assert paths["polish_klej_ner_regex"] == "allegro/klej-nkjp-ner"
    assert paths["polish_8tags_regex"] == "sdadas/8tags" and paths["polish_ppc_regex"] == "sdadas/ppc"
    assert paths["polish_poquad_open_book"] == "clarin-pl/poquad"
    assert paths["polish_belebele_mc"] == "facebook/belebele"


def test_groups_for_plain_lm_eval_users():
    from gniazdo.eval.runner import task_manager

    tm = task_manager()
    assert {"polish", "polish_mc", "polish_generate"} <= set(tm.all_groups)
    assert set(tm.all_subtasks) == set(TASKS)


def test_fixture_files_are_valid_jsonl():
    for path in FIXTURES.rglob("*.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            json.loads(line)
