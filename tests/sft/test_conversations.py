from __future__ import annotations

import gzip
import json
from collections import Counter

import pytest

from conftest import SHARED, needs_shared, write_jsonl
from gniazdo.cli import main
from gniazdo.errors import UserError
from gniazdo.sft.conversations import (BadRecord, convert_file, detect_and_convert, from_alpaca, from_sharegpt,
                                       from_speakleash, load_conversations)

from . import conv, sample_conversations

SPEAKLEASH = SHARED / "sft" / "speakleash_instruct_samples.jsonl"

BAD = [  # (line, expected message part, reason)
    ('{"messages": [', "not valid JSON", "bad_json"),
    ({"text": "x"}, "no 'messages' key", "no_messages"),
    ({"messages": [{"role": "bot", "content": "x"}]}, "role 'bot'", "unknown_role"),
    ({"messages": []}, "empty conversation", "empty"),
    ({"messages": [{"role": "user", "content": "x"}]}, "no assistant turn", "no_assistant"),
    ({**conv("a", "b"), "weight": -1}, "weight must be a number >= 0", "bad_weight"),
    ({"messages": [{"role": "user", "content": 3}, {"role": "assistant", "content": "x"}]}, "no text 'content'",
     "bad_message"),
    ([1, 2], "expected a JSON object", "not_an_object"),
]


def test_sample_instructions_are_valid_conversations():
    from gniazdo.resources import sample_path

    convs = list(load_conversations(sample_path("instructions.jsonl")))
    assert len(convs) == len(sample_conversations()) == 128
    assert [line for _, line in convs[:3]] == [1, 2, 3]


@pytest.mark.parametrize("record,message,reason", BAD, ids=[b[2] for b in BAD])
def test_bad_records_are_one_line_errors_with_file_and_line(tmp_path, record, message, reason):
    path = write_jsonl(tmp_path / "c.jsonl", [conv("a", "b"), "", record])
    with pytest.raises(UserError) as e:
        list(load_conversations(path))
    assert str(e.value).startswith(f"{path}:3: ") and message in str(e.value) and "\n" not in str(e.value)
    skipped = Counter()
    assert len(list(load_conversations(path, strict=False, skipped=skipped))) == 1
    assert skipped == {reason: 1}


def test_compressed_input_and_weights(tmp_path):
    path = tmp_path / "c.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write(json.dumps(conv("a", "b", weight=2.5)) + "\n" + json.dumps(conv("c", "d")) + "\n")
    convs = list(load_conversations(path))
    assert [c.get("weight") for c, _ in convs] == [2.5, None] and [n for _, n in convs] == [1, 2]
    with pytest.raises(UserError, match="input not found"):
        list(load_conversations(tmp_path / "missing.jsonl"))


def test_from_alpaca():
    rec = {"instruction": " Przetłumacz na angielski. ", "input": "Dzień dobry", "output": "Good morning\n",
           "system": "Jesteś tłumaczem."}
    assert from_alpaca(rec)["messages"] == [
        {"role": "system", "content": "Jesteś tłumaczem."},
        {"role": "user", "content": "Przetłumacz na angielski.\n\nDzień dobry"},
        {"role": "assistant", "content": "Good morning"}]
    assert from_alpaca({"instruction": "Napisz haiku.", "input": "", "output": "..."})["messages"] == [
        {"role": "user", "content": "Napisz haiku."}, {"role": "assistant", "content": "..."}]
    with pytest.raises(BadRecord, match="no 'output'"):
        from_alpaca({"instruction": "x"})


def test_detect_and_convert():
    assert detect_and_convert(conv("a", "b")) == conv("a", "b")
    assert detect_and_convert({"instruct": "a", "output": "b"})["messages"][1]["content"] == "b"
    assert detect_and_convert({"instruction": "a", "output": "b", "system": "s"})["messages"][0]["role"] == "system"
    share = {"conversations": [{"from": "human", "value": "a"}, {"from": "gpt", "value": "b"}]}
    assert detect_and_convert(share) == from_sharegpt(share) == {"messages": conv("a", "b")["messages"]}
    with pytest.raises(BadRecord, match="cannot tell the format"):
        detect_and_convert({"prompt": "x"})


@needs_shared(SPEAKLEASH)
def test_speakleash_samples_convert(tmp_path, capsys):
    records = [json.loads(line) for line in SPEAKLEASH.read_text(encoding="utf-8").splitlines() if line.strip()]
    for rec in records:
        c = from_speakleash(rec)
        user, answer = c["messages"]
        assert user["content"].startswith(rec["instruct"].strip()) and answer["content"] == rec["output"].strip()
        if rec.get("input", "").strip():
            assert user["content"] == f"{rec['instruct'].strip()}\n\n{rec['input'].strip()}"
        assert c.get("source") == rec.get("source_name")
    out = tmp_path / "chat.jsonl"
    main(["sft", "convert", "--from", "speakleash", str(SPEAKLEASH), str(out)])
    written = list(load_conversations(out))
    assert "conversations written" in capsys.readouterr().out
    assert len(written) == len(records)
    assert convert_file(SPEAKLEASH, tmp_path / "auto.jsonl", "auto") == {"written": len(records), "skipped": {}}


def test_convert_skips_bad_records_or_stops_when_strict(tmp_path, capsys):
    src = write_jsonl(tmp_path / "in.jsonl", [{"instruction": "a", "output": "b"}, {"instruction": "a"}, "{"])
    assert convert_file(src, tmp_path / "out.jsonl", "alpaca") == {
        "written": 1, "skipped": {"missing_field": 1, "bad_json": 1}}
    with pytest.raises(UserError, match=r"in\.jsonl:2: no 'output'"):
        convert_file(src, tmp_path / "strict.jsonl", "alpaca", strict=True)
    assert not (tmp_path / "strict.jsonl").exists()  # nothing half-written
    with pytest.raises(SystemExit) as e:
        main(["sft", "convert", "--strict", str(src), str(tmp_path / "x.jsonl")])
    assert e.value.code == 2 and "in.jsonl:2:" in capsys.readouterr().err
