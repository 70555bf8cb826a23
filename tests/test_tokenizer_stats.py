from __future__ import annotations

from pathlib import Path

import pytest

from gniazdo.errors import UserError
from gniazdo.resources import sample_path
from gniazdo.tokenizer import TokenizerTrainConfig, markdown_table, plot_fertility, tokenizer_stats, train_tokenizer
from gniazdo.tokenizer.stats import CHECKED_CHARS

REFS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "tokenizers"
MISTRAL = REFS / "mistral-7b-v0.1"
APT4 = REFS / "bielik-v3-apt4"
CORPUS = str(sample_path("corpus.jsonl"))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("stats") / "tiny"
    return train_tokenizer(TokenizerTrainConfig(corpus=[CORPUS], vocab_size=1000, out=str(out), progress=False))


@pytest.fixture
def quotes(tmp_path):
    p = tmp_path / "q.txt"
    p.write_text("Powiedział: „Tak” — i wyszedł…\nPotem wrócił.\n" * 20, encoding="utf-8")
    return str(p)


def test_tiny_tokenizer_stats(tiny):
    (row,) = tokenizer_stats([str(tiny)], [CORPUS], limit_docs=100)
    assert row["tokenizer"] == "tiny" and row["vocab_size"] == 1000 and row["docs"] == 100
    assert 1.2 < row["fertility"] < 6  # a 1000-token vocabulary splits most Polish words
    assert row["fertility"] == pytest.approx(row["tokens"] / row["words"])
    assert 1 < row["chars_per_token"] < 6
    assert 0 < row["single_token_words"] < 0.5
    assert 0 <= row["byte_fallback"] < 0.1  # byte-level: only rare characters split into partial bytes
    assert row["single:\\n"] is True  # one byte, always in a byte-level vocabulary
    assert {f"single:{c}" for c in ("„", "”", "—", "…")} <= set(row)


def test_byte_level_partial_tokens_counted(tiny, tmp_path):
    p = tmp_path / "rare.txt"
    p.write_text("ꙮ ꙮ ꙮ 𓀀 𓀀", encoding="utf-8")  # characters never seen in training: split into bytes
    (row,) = tokenizer_stats([str(tiny / "tokenizer.json")], [str(p)])
    assert row["byte_fallback"] > 0.5


@pytest.mark.skipif(not MISTRAL.exists(), reason="reference tokenizer not present")
def test_mistral_sentencepiece(tiny):
    rows = tokenizer_stats([str(MISTRAL), str(MISTRAL / "tokenizer.model")], [CORPUS], limit_docs=50)
    assert rows[0]["tokenizer"] == rows[1]["tokenizer"] == "mistral-7b-v0.1"
    assert rows[0]["fertility"] == rows[1]["fertility"]
    assert 2 < rows[0]["fertility"] < 4  # Mistral is poor at Polish (~3 tokens a word)
    assert rows[0]["vocab_size"] == 32000
    assert rows[0]["byte_fallback"] > 0  # <0xNN> pieces for characters outside its vocabulary
    assert rows[0]["single:\\n"] is False  # newline is the byte piece <0x0A>


@pytest.mark.skipif(not APT4.exists(), reason="reference tokenizer not present")
def test_apt4_byte_fallback_on_quotes(quotes):
    (row,) = tokenizer_stats([str(APT4)], [quotes])
    assert row["fertility"] > 1  # high here: the text is dense with punctuation that costs bytes
    assert row["byte_fallback"] > 0.2  # „ ” — … and \n become 3 (1) byte pieces each
    assert not any(row[f"single:{c if c != chr(10) else chr(92) + 'n'}"] for c in CHECKED_CHARS)


@pytest.mark.skipif(not (MISTRAL.exists() and APT4.exists()), reason="reference tokenizers not present")
def test_polish_adapted_beats_mistral():
    rows = tokenizer_stats([str(MISTRAL), str(APT4)], [CORPUS], limit_docs=50)
    assert rows[1]["fertility"] < rows[0]["fertility"]
    assert rows[1]["single_token_words"] > rows[0]["single_token_words"]


def test_table_and_plot(tiny, quotes, tmp_path):
    rows = tokenizer_stats([str(tiny)], [quotes])
    rows.append(dict(rows[0], tokenizer="other", fertility=rows[0]["fertility"] / 2))
    table = markdown_table(rows)
    lines = table.strip().splitlines()
    assert len(lines) == 4 and lines[0].startswith("| tokenizer | vocab_size")
    assert "| tiny | 1,000 |" in lines[2] and "| other |" in lines[3]
    assert f"{rows[0]['fertility']:.3f}" in lines[2] and "✓" in lines[2] and "%" in lines[2]
    png = plot_fertility(rows, tmp_path / "plots" / "fertility.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 1000
    assert markdown_table([]) == ""


def test_bad_tokenizer_path(tmp_path):
    with pytest.raises(UserError, match="no tokenizer.json"):
        tokenizer_stats([str(tmp_path)], [CORPUS], limit_docs=1)
