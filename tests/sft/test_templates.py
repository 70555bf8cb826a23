from __future__ import annotations

import json

import pytest

from gniazdo.errors import UserError
from gniazdo.sft.conversations import BadRecord
from gniazdo.sft.templates import TEMPLATES, get_template, learn_mask, write_template

from . import conv, sample_conversations, tiny_tokenizer

transformers = pytest.importorskip("transformers")

ODD = [  # contents whose edges could tempt a tokenizer to merge across the template's boundaries
    conv("Podaj listę.", "\n\n- jeden\n- dwa\n"),
    conv("(nawias)", "„Cytat” — tak.", "[/INST udawany znacznik?]", "]Nawias] i 123"),
    conv("  spacje  ", "  spacje na brzegach  ", system="System\n"),
    conv("Pusta odpowiedź?", ""),
]


@pytest.fixture(scope="module")
def hf(tmp_path_factory):
    root = tmp_path_factory.getbasetemp() / "sft-tok"
    root.mkdir(exist_ok=True)
    return {name: transformers.AutoTokenizer.from_pretrained(str(tiny_tokenizer(root, name))) for name in TEMPLATES}


def _reference_ids(tok, messages):
    out = tok.apply_chat_template(messages, tokenize=True)
    return list(out["input_ids"] if not isinstance(out, list) else out)


@pytest.mark.parametrize("name", list(TEMPLATES))
def test_ids_equal_apply_chat_template(hf, name):
    """The ids we train on are exactly those transformers (and so a server) produce from the stored template."""
    tok, template = hf[name], TEMPLATES[name]
    for c in sample_conversations() + [c for c in ODD if name == "chatml"] + ODD[1:]:
        m = c["messages"]
        assert tok.apply_chat_template(m, tokenize=False) == template.render_text(m)[0]
        ids, learn = template.render(m, tok)
        assert ids == _reference_ids(tok, m)
        assert len(learn) == len(ids)


@pytest.mark.parametrize("name", list(TEMPLATES))
def test_only_assistant_content_and_end_marker_are_learned(hf, name):
    tok, template = hf[name], TEMPLATES[name]
    lead = " " if name == "mistral" else ""  # mistral answers start with a space after [/INST]
    for c in sample_conversations() + ODD[1:]:
        m = c["messages"]
        ids, learn = template.render(m, tok)
        learned = tok.decode([i for i, flag in zip(ids, learn) if flag], skip_special_tokens=False)
        answers = "".join(lead + x["content"] + template.end_token for x in m if x["role"] == "assistant")
        assert learned == answers
        assert not learn[0]  # the first token (a header) is never learned: packed rows never learn across
        # each learned run ends with the end marker
        end_id = tok.convert_tokens_to_ids(template.end_token)
        runs_end = [k for k in range(len(ids)) if learn[k] and (k + 1 == len(ids) or not learn[k + 1])]
        assert all(ids[k] == end_id for k in runs_end)


def test_assistant_header_is_not_learned(hf):
    tok = hf["chatml"]
    ids, learn = TEMPLATES["chatml"].render(conv("Cześć", "Dzień dobry!")["messages"], tok)
    text = [tok.decode([i], skip_special_tokens=False) for i in ids]
    k = max(i for i, t in enumerate(text) if t == "<|im_start|>")  # the assistant header
    assert not any(learn[k:k + 3]) and learn[-2] and text[-2] == "<|im_end|>" and not learn[-1]


def test_answer_starting_with_a_newline_keeps_exact_ids(hf):
    """The header's \\n and the answer's leading \\n are one token: ids stay exact, that token counts as context."""
    tok = hf["chatml"]
    m = ODD[0]["messages"]
    ids, learn = TEMPLATES["chatml"].render(m, tok)
    assert ids == _reference_ids(tok, m)
    learned = tok.decode([i for i, f in zip(ids, learn) if f], skip_special_tokens=False)
    answer = m[1]["content"] + "<|im_end|>"
    assert answer.endswith(learned) and learned.lstrip("\n") == answer.lstrip("\n") and learned != answer


def test_mistral_system_prompt_goes_into_the_first_user_turn(hf):
    m = conv("Pytanie 1", "Odpowiedź 1", "Pytanie 2", "Odpowiedź 2", system="Bądź zwięzły.")["messages"]
    text, spans = TEMPLATES["mistral"].render_text(m)
    assert text == ("<s>[INST] Bądź zwięzły.\n\nPytanie 1 [/INST] Odpowiedź 1</s>"
                    "[INST] Pytanie 2 [/INST] Odpowiedź 2</s>")
    assert [text[a:b] for a, b in spans] == [" Odpowiedź 1</s>", " Odpowiedź 2</s>"]
    with pytest.raises(BadRecord, match="alternate"):
        TEMPLATES["mistral"].render_text([{"role": "assistant", "content": "x"}])


def test_chatml_render_text():
    text, spans = TEMPLATES["chatml"].render_text(conv("Hej", "Cześć", system="S")["messages"])
    assert text == ("<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHej<|im_end|>\n"
                    "<|im_start|>assistant\nCześć<|im_end|>\n")
    assert [text[a:b] for a, b in spans] == ["Cześć<|im_end|>"]


def test_markers_inside_content_are_bad_records():
    with pytest.raises(BadRecord, match="im_end"):
        TEMPLATES["chatml"].render_text(conv("a<|im_end|>b", "c")["messages"])


def test_learn_mask_by_token_start():
    offsets = [(0, 2), (2, 5), (5, 6), (6, 9), (9, 10)]
    assert learn_mask(offsets, [(2, 6)]).tolist() == [False, True, True, False, False]
    assert learn_mask(offsets, [(1, 2), (6, 10)]).tolist() == [False, False, False, True, True]
    assert learn_mask(offsets, []).tolist() == [False] * 5


def test_write_template_and_errors(tmp_path_factory):
    root = tmp_path_factory.getbasetemp() / "sft-tok"
    root.mkdir(exist_ok=True)
    folder = tiny_tokenizer(root, "mistral")
    conf = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert conf["chat_template"] == TEMPLATES["mistral"].chat_template and conf["eos_token"] == "</s>"
    with pytest.raises(UserError, match="unknown chat template 'llama'"):
        get_template("llama")
    with pytest.raises(UserError, match="tokenizer not found"):
        write_template(folder / "nope", "chatml")
