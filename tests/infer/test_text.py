"""Tokens → text for streaming: whole UTF-8 characters only, and stop strings never shown in part."""

from __future__ import annotations

import pytest

from gniazdo.infer import IncrementalDecoder, StopText

from . import tokenizer_dir

TEXT = "Zażółć gęślą jaźń — „cudzysłów” 🙂🐻‍❄️ i 日本語, koniec."


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tokenizer_dir(tmp_path_factory.mktemp("tok")))


def decode_fn(tok):
    return lambda ids: tok.decode(ids, skip_special_tokens=True)


def test_byte_tokens_split_characters(tok):
    # the premise: this tokenizer cuts emoji (and CJK) into byte tokens that do not decode alone
    ids = tok.encode(TEXT, add_special_tokens=False)
    assert any("\ufffd" in tok.decode([i]) for i in ids)
    assert tok.decode(ids) == TEXT


@pytest.mark.parametrize("prefix", [0, 3])
def test_deltas_are_whole_characters_and_add_up(tok, prefix):
    ids = tok.encode(TEXT, add_special_tokens=False)
    dec = IncrementalDecoder(decode_fn(tok), prefix=ids[:prefix])
    deltas = [dec.push(i) for i in ids[prefix:]]
    deltas.append(dec.flush())
    assert "".join(deltas) == tok.decode(ids[prefix:])
    assert not any("\ufffd" in d for d in deltas)
    assert "" in deltas  # some tokens showed nothing until their character was complete


def test_invalid_bytes_come_out_at_the_end(tok):
    # a lone lead byte (the model may generate one) is shown as U+FFFD once the next text arrives or at the end
    ids = tok.encode("ś", add_special_tokens=False)
    if len(ids) < 2:
        ids = tok.encode("🙂", add_special_tokens=False)
    dec = IncrementalDecoder(decode_fn(tok))
    assert dec.push(ids[0]) == ""
    assert dec.flush() == "\ufffd"


def feed_all(stop: StopText, deltas: list[str]) -> tuple[list[str], bool]:
    shown, hit = [], False
    for d in deltas:
        out, hit = stop.feed(d)
        shown.append(out)
        if hit:
            break
    if not hit:
        shown.append(stop.flush())
    return shown, hit


@pytest.mark.parametrize("deltas, stops, visible, hit", [
    (["Ala ma ", "kota", "\n\nPies"], ["\n\n"], "Ala ma kota", True),
    (["Ala", " ma", "\n", "\n", "x"], ["\n\n"], "Ala ma", True),  # the stop string arrives in pieces
    (["Ala", " ma", "\n", "kota"], ["\n\n"], "Ala ma\nkota", False),  # a false start is released
    (["abc", "END"], ["END", "bcE"], "a", True),  # the earliest stop string wins
    (["koniec", "."], ["###"], "koniec.", False),
    (["x##", "#y"], ["###"], "x", True),
])
def test_stop_strings(deltas, stops, visible, hit):
    shown, got = feed_all(StopText(stops), deltas)
    assert "".join(shown) == visible and got == hit
    for i in range(len(shown)):  # no prefix of what was shown ends inside a stop string
        so_far = "".join(shown[: i + 1])
        assert not any(s in so_far for s in stops)


def test_partial_stop_string_is_held_back():
    stop = StopText(["</odp>"])
    assert stop.feed("Tak</o") == ("Tak", False)
    assert stop.feed("dp> i dalej") == ("", True)
    assert stop.text == "Tak"


def test_a_prefix_ending_inside_a_character_is_not_used(tok):
    ids = tok.encode("🙂a", add_special_tokens=False)
    dec = IncrementalDecoder(decode_fn(tok), prefix=ids[:1])  # prompt ids cut inside the emoji
    assert dec.ids == []
    out = "".join(dec.push(i) for i in ids[1:]) + dec.flush()
    assert out == tok.decode(ids[1:])
