"""The lexicon guard: whole-word matching of forms and phrases, categories, the file format, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from gniazdo.errors import UserError
from gniazdo.serve.guard import REFUSAL_PL, GuardConfig, LexiconGuard, NoGuard, build_guard, words

SHARED_LEXICON = Path(__file__).resolve().parents[3] / "shared/data/pl/safety/polish_vulgarisms_extended_2.0.txt"


def test_builtin_lexicon_flags_words_and_phrases_with_categories():
    guard = build_guard(GuardConfig(lexicon="builtin"))
    assert guard("Ala ma kota.").safe
    hit = guard("Kurwa, zabiję cię!")
    assert not hit.safe and hit.score == 1.0
    assert hit.categories == ["threat", "vulgarity"]
    assert hit.matches == ["kurwa", "zabiję cię"]
    # whole words only: a longer word containing a listed form is not a match
    assert guard("skurwysyński").safe
    assert not guard("KURWA").safe  # case-folded


def test_no_guard_and_default_config():
    assert isinstance(build_guard(None), NoGuard)
    assert isinstance(build_guard(GuardConfig()), NoGuard)
    assert NoGuard()("kurwa").safe
    assert "Przepraszam" in REFUSAL_PL


def test_file_format_comments_tabs_and_errors(tmp_path):
    f = tmp_path / "lex.txt"
    f.write_text("# comment\n\nZłe Słowo\nbrzydal\tinsult\n", encoding="utf-8")
    guard = LexiconGuard.from_file(f)
    assert guard.entries == {("złe", "słowo"): "vulgarity", ("brzydal",): "insult"}
    assert not guard("to jest złe  słowo").safe
    assert guard("złe, ale nie słowo").safe
    with pytest.raises(UserError, match="not found"):
        LexiconGuard.from_file(tmp_path / "missing.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n", encoding="utf-8")
    with pytest.raises(UserError, match="no entries"):
        LexiconGuard.from_file(empty)


def test_words_keeps_hyphenated_forms():
    assert words("Biało-czerwona flaga, rock'n'roll!") == ["biało-czerwona", "flaga", "rock'n'roll"]


@pytest.mark.skipif(not SHARED_LEXICON.is_file(), reason=f"shared lexicon not found: {SHARED_LEXICON}")
def test_shared_ban_pl_lexicon_loads():
    guard = LexiconGuard.from_file(SHARED_LEXICON)
    assert len(guard.entries) > 6000
    assert not guard("Co za chujowy dzień").safe
    assert guard("Dzień dobry, jak się masz?").safe

