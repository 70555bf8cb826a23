"""``gniazdo prefs prepare``: masks, shared prompts, truncation, splits, bad records, the stored format."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tokenizers import Tokenizer

from gniazdo.errors import UserError
from gniazdo.prefs import IGNORE, PreferenceDataset, prepare_prefs
from gniazdo.resources import sample_path

from . import sample_records, tok_dir, write_jsonl  # noqa: F401 (tok_dir is a fixture)

SAMPLE = sample_path("preferences.jsonl")


def _decode(tok_dir, ids) -> str:
    return Tokenizer.from_file(str(tok_dir / "tokenizer.json")).decode(list(map(int, ids)), skip_special_tokens=False)


def _learned(seq: dict) -> np.ndarray:
    return seq["labels"][seq["labels"] != IGNORE]


def _prompt(seq: dict) -> np.ndarray:
    """The input tokens before the first learned one: the prompt."""
    first = int(np.argmax(seq["labels"] != IGNORE))
    return seq["input_ids"][:first + 1]


@pytest.mark.parametrize("template,before,end", [("chatml", "", "<|im_end|>"), ("mistral", " ", "</s>")])
def test_masks_cover_exactly_the_answers_and_prompts_are_shared(tok_dir, tmp_path, template, before, end):
    meta = prepare_prefs(tok_dir, [SAMPLE], tmp_path / "p", max_len=4096, template=template, progress=False)
    records = sample_records()
    ds = PreferenceDataset(tmp_path / "p")
    assert meta["counts"]["kept"] == ds.n_pairs == len(records) == 64 and not ds.has_reference
    texts = ds.texts()
    for i, rec in enumerate(records):
        pair = ds.pair(i)
        for side in ("chosen", "rejected"):
            seq = pair[side]
            assert seq["input_ids"].dtype == np.int64 and seq["labels"].dtype == np.int64
            assert len(seq["input_ids"]) == len(seq["labels"])
            lab = seq["labels"][:-1]  # labels are the next tokens: where set, they equal input_ids shifted by one
            assert (seq["input_ids"][1:][lab != IGNORE] == lab[lab != IGNORE]).all()
            assert _decode(tok_dir, _learned(seq)) == before + rec[side] + end
            assert texts[i][side] == before + rec[side] + end
            # the labelled tokens are one run at the end (the sequence stops at the end marker)
            mask = seq["labels"] != IGNORE
            assert mask[-1] and np.all(mask[int(np.argmax(mask)):])
        np.testing.assert_array_equal(_prompt(pair["chosen"]), _prompt(pair["rejected"]))
        assert _decode(tok_dir, _prompt(pair["chosen"])) == texts[i]["prompt"]
        assert rec["prompt"] in texts[i]["prompt"]


def test_stored_format(tok_dir, tmp_path):
    meta = prepare_prefs(tok_dir, [SAMPLE], tmp_path / "p", max_len=4096, val_fraction=0.25, seed=1, progress=False)
    on_disk = json.loads((tmp_path / "p" / "meta.json").read_text(encoding="utf-8"))
    assert on_disk == meta
    assert meta["format"] == "gniazdo-prefs" and meta["version"] == 1 and meta["reference"] is None
    tok = meta["tokenizer"]
    assert tok["vocab_size"] == 1000 and tok["pad_id"] == 3 and tok["eos_id"] == 1 and len(tok["sha256"]) == 64
    assert meta["template"]["name"] == "chatml" and meta["template"]["end_token"] == "<|im_end|>"
    assert (tmp_path / "p" / "config.resolved.yaml").is_file()
    total = 0
    for split in ("train", "val"):
        folder = tmp_path / "p" / split
        tokens, learn, pairs = (np.load(folder / f"{n}.npy") for n in ("tokens", "learn", "pairs"))
        assert tokens.dtype == np.uint16 and learn.dtype == np.uint8 and pairs.dtype == np.int64
        assert pairs.shape == (meta["counts"][split], 4) and len(tokens) == len(learn) == pairs[-1, 3]
        assert (pairs[:, 1] == pairs[:, 2]).all() and (pairs[1:, 0] == pairs[:-1, 3]).all()  # back to back
        assert meta["splits"][split]["learned_tokens"] == int(learn.sum())
        total += len(pairs)
    assert total == 64 and 0 < meta["counts"]["val"] < 32
    assert not list((tmp_path / "p").glob("**/.*"))  # no temp files left


def test_pairs_of_one_prompt_share_a_split(tok_dir, tmp_path):
    records = sample_records()
    dup = [dict(r, chosen=r["chosen"] + " Tak.") for r in records]  # a second pair for every prompt
    data = write_jsonl(tmp_path / "d.jsonl", records + dup)
    prepare_prefs(tok_dir, [data], tmp_path / "p", max_len=4096, val_fraction=0.3, progress=False)
    prompts = {s: [t["prompt"] for t in PreferenceDataset(tmp_path / "p", s).texts()] for s in ("train", "val")}
    assert len(prompts["val"]) > 0 and not set(prompts["train"]) & set(prompts["val"])
    assert sorted(prompts["train"] + prompts["val"]) == sorted(2 * list(dict.fromkeys(prompts["train"]
                                                                                       + prompts["val"])))


def test_truncation_counts(tok_dir, tmp_path):
    prepare_prefs(tok_dir, [SAMPLE], tmp_path / "full", max_len=4096, progress=False)
    full = PreferenceDataset(tmp_path / "full")
    lengths = []  # (prompt tokens, longest answer tokens) per pair
    for i in range(full.n_pairs):
        p = full.pair(i)
        prompt = len(_prompt(p["chosen"]))
        lengths.append((prompt, max(len(p[s]["input_ids"]) + 1 - prompt for s in ("chosen", "rejected"))))
    max_len = int(np.median([a + b for a, b in lengths]))
    too_long = [a + b > max_len for a, b in lengths]
    fits_cut = [a + b > max_len and b < max_len for a, b in lengths]

    meta = prepare_prefs(tok_dir, [SAMPLE], tmp_path / "drop", max_len=max_len, progress=False)
    assert meta["counts"]["dropped_too_long"] == sum(too_long) > 0
    assert meta["counts"]["kept"] == 64 - sum(too_long) and meta["counts"]["truncated_prompt"] == 0

    meta = prepare_prefs(tok_dir, [SAMPLE], tmp_path / "cut", max_len=max_len, truncation="truncate_prompt",
                         progress=False)
    assert meta["counts"]["truncated_prompt"] == sum(fits_cut) > 0
    assert meta["counts"]["dropped_too_long"] == sum(t and not f for t, f in zip(too_long, fits_cut))
    cut = PreferenceDataset(tmp_path / "cut")
    kept = [i for i, (t, f) in enumerate(zip(too_long, fits_cut)) if f or not t]
    assert cut.n_pairs == len(kept)
    for j, i in enumerate(kept):
        a, b = cut.pair(j), full.pair(i)
        for side in ("chosen", "rejected"):
            assert len(a[side]["input_ids"]) + 1 <= max_len
            np.testing.assert_array_equal(_learned(a[side]), _learned(b[side]))  # answers are never cut
        pa, pb = _prompt(a["chosen"]), _prompt(b["chosen"])
        np.testing.assert_array_equal(pa, pb[len(pb) - len(pa):])  # the prompt keeps its end
        assert len(pa) < len(pb) or not too_long[i]
        assert cut.texts()[j]["prompt"] == full.texts()[i]["prompt"][-len(cut.texts()[j]["prompt"]):]


def test_messages_input_learns_only_the_last_answer(tok_dir, tmp_path):
    rec = {"messages": [{"role": "system", "content": "Odpowiadaj krótko."},
                        {"role": "user", "content": "Stolica Polski?"},
                        {"role": "assistant", "content": "Warszawa."},
                        {"role": "user", "content": "A Czech?"}],
           "chosen": "Praga.", "rejected": "Brno."}
    prepare_prefs(tok_dir, [write_jsonl(tmp_path / "d.jsonl", [rec])], tmp_path / "p", progress=False)
    pair = PreferenceDataset(tmp_path / "p").pair(0)
    assert _decode(tok_dir, _learned(pair["chosen"])) == "Praga.<|im_end|>"
    assert _decode(tok_dir, _learned(pair["rejected"])) == "Brno.<|im_end|>"
    prompt = _decode(tok_dir, _prompt(pair["chosen"]))
    assert prompt.startswith("<|im_start|>system\nOdpowiadaj krótko.") and "Warszawa." in prompt
    assert prompt.endswith("<|im_start|>user\nA Czech?<|im_end|>\n<|im_start|>assistant\n")


BAD = [
    ("{not json", "not valid JSON"),
    ({"prompt": "Pytanie?", "chosen": "Tak."}, "'rejected' must be a non-empty string"),
    ({"chosen": "Tak.", "rejected": "Nie."}, "exactly one of 'prompt' and 'messages'"),
    ({"prompt": "P?", "messages": [{"role": "user", "content": "P?"}], "chosen": "A", "rejected": "B"},
     "exactly one of"),
    ({"messages": [{"role": "user", "content": "P?"}, {"role": "assistant", "content": "A"}],
      "chosen": "A", "rejected": "B"}, "must end with a user turn"),
    ({"messages": [{"role": "robot", "content": "P?"}], "chosen": "A", "rejected": "B"}, "role 'robot'"),
    ({"prompt": "P?", "chosen": "Tak.", "rejected": "Tak."}, "are the same text"),
    ({"prompt": "P?", "chosen": "Tak.<|im_end|>", "rejected": "Nie."}, "template marker"),
]


@pytest.mark.parametrize("bad,message", BAD)
def test_bad_record_is_one_line_error_naming_file_and_line(tok_dir, tmp_path, bad, message):
    good = sample_records()[:2]
    data = write_jsonl(tmp_path / "d.jsonl", [good[0], "", bad, good[1]])
    with pytest.raises(UserError) as e:
        prepare_prefs(tok_dir, [data], tmp_path / "p", progress=False)
    assert str(e.value).startswith(f"{data}:3: ") and message in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "p").exists()


def test_bad_records_skipped_and_counted_when_not_strict(tok_dir, tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", [r for r, _ in BAD] + sample_records()[:3])
    meta = prepare_prefs(tok_dir, [data], tmp_path / "p", strict=False, progress=False)
    c = meta["counts"]
    assert c["kept"] == 3 and c["bad"] == len(BAD) and c["read"] == 3 + len(BAD)
    assert c["bad_records"] == {"bad_json": 1, "bad_answer": 1, "no_prompt": 2, "bad_prompt": 1, "unknown_role": 1,
                                "identical": 1, "marker_in_content": 1}


def test_reuse_keeps_a_folder_made_from_the_same_data(tok_dir, tmp_path):
    args = (tok_dir, [SAMPLE], tmp_path / "p")
    prepare_prefs(*args, progress=False)
    ino = (tmp_path / "p" / "train" / "tokens.npy").stat().st_ino
    prepare_prefs(*args, reuse=True, progress=False)
    assert (tmp_path / "p" / "train" / "tokens.npy").stat().st_ino == ino
    prepare_prefs(*args, reuse=True, max_len=512, progress=False)  # other settings: prepared again
    assert (tmp_path / "p" / "train" / "tokens.npy").stat().st_ino != ino


def test_refuses_to_replace_a_foreign_folder(tok_dir, tmp_path):
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not a 'gniazdo prefs prepare' folder"):
        prepare_prefs(tok_dir, [SAMPLE], tmp_path / "p", progress=False)
    assert (tmp_path / "p" / "notes.txt").read_text() == "mine"
