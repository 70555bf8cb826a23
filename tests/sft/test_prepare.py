from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import yaml

from conftest import write_jsonl
from gniazdo.cli import main
from gniazdo.errors import UserError
from gniazdo.sft import SFTDataset, SFTPrepareConfig, pack_rows, prepare_sft
from gniazdo.sft.templates import TEMPLATES

from . import conv, sample_conversations, tiny_tokenizer

MAX_LEN = 256


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    root = tmp_path_factory.getbasetemp() / "sft-tok"
    root.mkdir(exist_ok=True)
    return tiny_tokenizer(root)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """The sample conversations split into two files, a few with their own weight, plus one bad line."""
    d = tmp_path_factory.mktemp("inputs")
    convs = sample_conversations()
    for i, c in enumerate(convs):
        if i % 10 == 0:
            c["weight"] = 0.5
    a = write_jsonl(d / "a.jsonl", convs[:64])
    b = write_jsonl(d / "b.jsonl", convs[64:] + ['{"broken'])
    return a, b, convs


def _prepare(tok, data, out, **kw):
    cfg = SFTPrepareConfig(tokenizer=str(tok), data=[str(p) for p in data], out=str(out), progress=False,
                           **{"max_len": MAX_LEN, **kw})
    return prepare_sft(cfg)


@pytest.fixture(scope="module")
def packed(tok, inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("packed") / "sft"
    meta = _prepare(tok, inputs[:2], out, pack=True, truncation="truncate", val_fraction=0.2, seed=3,
                    weights={"b.jsonl": 2.0})
    return out, meta


def _ids(tok, convs):
    return [TEMPLATES["chatml"].render(c["messages"], tok)[0] for c in convs]


def test_output_files_and_meta(packed, tok):
    out, meta = packed
    for name in ("meta.json", "stats.json", "lengths.png", "config.resolved.yaml"):
        assert (out / name).is_file(), name
    assert (out / "lengths.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for split in ("train", "val"):
        for name in ("tokens", "learn", "weights", "rows", "doc_starts", "doc_index"):
            assert (out / split / f"{name}.npy").is_file()
    assert meta == json.loads((out / "meta.json").read_text(encoding="utf-8"))
    assert meta["format"] == "gniazdo-sft" and meta["version"] == 1 and meta["dtype"] == "uint16"
    assert meta["tokenizer"]["vocab_size"] == 1000 and meta["tokenizer"]["pad_id"] == 3
    assert meta["tokenizer"]["eos_id"] == 1 and meta["template"]["end_id"] == 5
    c = meta["counts"]
    assert c["read"] == 129 and c["conversations"] == 128 and c["bad_records"] == {"bad_json": 1}
    assert c["kept"] + c["dropped_too_long"] + c["dropped_nothing_learned"] == 128 and c["truncated"] > 0
    assert [f["conversations"] for f in meta["files"]] == [64, 64] and [f["weight"] for f in meta["files"]] == [1, 2]
    assert yaml.safe_load((out / "config.resolved.yaml").read_text())["weights"] == {"b.jsonl": 2.0}
    assert not list(out.parent.glob(".*"))  # no temp folders left behind
    stats = json.loads((out / "stats.json").read_text())
    assert stats["conversation_tokens"]["over_max_len"] == c["truncated"] + c["dropped_nothing_learned"]


def test_packing_keeps_conversations_whole_and_each_once(packed, tok, inputs):
    out, meta = packed
    convs = inputs[2]
    full = _ids(tok, convs)
    seen = []
    for split in ("train", "val"):
        ds = SFTDataset(out, split)
        assert (ds.row_lengths() <= MAX_LEN).all() and ds.row_lengths().sum() == len(ds.tokens)
        assert meta["splits"][split]["rows"] == ds.n_rows and meta["splits"][split]["tokens"] == len(ds.tokens)
        bounds = list(ds.doc_starts) + [len(ds.tokens)]
        row_starts = set(ds.rows[:, 0].tolist())
        for k, index in enumerate(ds.doc_index.tolist()):
            tokens = ds.tokens[bounds[k]:bounds[k + 1]].tolist()
            assert tokens == full[index][:MAX_LEN]  # whole (or truncated at max_len), never split across rows
            seen.append(index)
        assert row_starts <= set(bounds)  # every row starts at a conversation
    assert len(seen) == len(set(seen)) == meta["counts"]["kept"] and set(seen) <= set(range(len(convs)))
    assert meta["splits"]["val"]["conversations"] > 0 and meta["splits"]["train"]["rows"] < meta["counts"]["kept"]


def test_packing_is_deterministic_per_seed(tok, inputs, tmp_path):
    a = _prepare(tok, inputs[:1], tmp_path / "a", pack=True, seed=1)
    b = _prepare(tok, inputs[:1], tmp_path / "b", pack=True, seed=1)
    c = _prepare(tok, inputs[:1], tmp_path / "c", pack=True, seed=2)
    assert a["splits"] == b["splits"]
    for name in ("tokens", "rows", "doc_index"):
        assert np.array_equal(np.load(tmp_path / "a/train" / f"{name}.npy"), np.load(tmp_path / "b/train" / f"{name}.npy"))
    assert not np.array_equal(np.load(tmp_path / "a/train/doc_index.npy"), np.load(tmp_path / "c/train/doc_index.npy"))


def test_pack_rows_best_fit():
    lengths = np.array([5, 3, 7, 2, 8, 1, 4])
    rows = pack_rows(lengths, 10, seed=0)
    assert sorted(i for r in rows for i in r) == list(range(7))
    assert all(lengths[r].sum() <= 10 for r in rows) and len(rows) == 3  # 30 tokens in 3 rows of 10: optimal
    assert rows == pack_rows(lengths, 10, seed=0)


def test_rows_without_packing_are_single_conversations(tok, inputs, tmp_path):
    meta = _prepare(tok, inputs[:1], tmp_path / "o", max_len=1024)
    ds = SFTDataset(tmp_path / "o")
    assert ds.n_rows == meta["counts"]["kept"] == 64 and ds.doc_index.tolist() == list(range(64))
    assert not (tmp_path / "o" / "val").exists() and meta["splits"]["val"]["rows"] == 0
    with pytest.raises(UserError, match="no 'val' split"):
        SFTDataset(tmp_path / "o", "val")
    assert _ids(tok, inputs[2][:1])[0] == ds.tokens[ds.rows[0, 0]:ds.rows[0, 1]].tolist()


def test_truncation_policies(tok, tmp_path):
    long_answer = " ".join(["słowo"] * 300)
    data = write_jsonl(tmp_path / "d.jsonl", [
        conv("krótko", "tak"),
        conv("długa odpowiedź", long_answer),  # truncated inside the answer: part of it stays learned
        conv(" ".join(["pytanie"] * 300), "nie"),  # the prompt alone is too long: nothing learned is left
    ])
    drop = _prepare(tok, [data], tmp_path / "drop", max_len=64, truncation="drop")["counts"]
    assert (drop["kept"], drop["dropped_too_long"], drop["truncated"], drop["dropped_nothing_learned"]) == (1, 2, 0, 0)
    cut = _prepare(tok, [data], tmp_path / "cut", max_len=64, truncation="truncate")["counts"]
    assert (cut["kept"], cut["dropped_too_long"], cut["truncated"], cut["dropped_nothing_learned"]) == (2, 0, 1, 1)
    ds = SFTDataset(tmp_path / "cut")
    assert ds.row_lengths().tolist() == [len(_ids(tok, [conv("krótko", "tak")])[0]), 64]


def test_weights_per_conversation_times_per_file(tok, tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", [conv("a", "b", weight=0.5), conv("c", "d")])
    b = write_jsonl(tmp_path / "sub" / "b.jsonl", [conv("e", "f", weight=3)])
    _prepare(tok, [a, b], tmp_path / "w", weights={str(b): 2.0})
    ds = SFTDataset(tmp_path / "w")
    for i, expected in enumerate([0.5, 1.0, 6.0]):
        r = ds.row(i)
        assert set(r["weights"][r["labels"] != -100].tolist()) == {expected}
        assert (r["weights"][r["labels"] == -100] == 0).all()
    with pytest.raises(UserError, match="weights: 'c.jsonl' is none of the inputs"):
        _prepare(tok, [a], tmp_path / "x", weights={"c.jsonl": 1.0})


def test_vocab_over_65536_gives_uint32(tok, tmp_path):
    from tokenizers import Tokenizer

    big = tmp_path / "big"
    shutil.copytree(tok, big)
    t = Tokenizer.from_file(str(big / "tokenizer.json"))
    t.add_tokens([f"<x{i}>" for i in range(65_000)])  # cheap: added tokens, vocabulary 66,000
    t.save(str(big / "tokenizer.json"))
    data = write_jsonl(tmp_path / "d.jsonl", [conv("Pytanie <x64999>", "Odpowiedź <x64999>")])
    meta = _prepare(tok=big, data=[data], out=tmp_path / "o")
    ds = SFTDataset(tmp_path / "o")
    assert meta["dtype"] == "uint32" and ds.tokens.dtype == np.uint32 and 1000 + 64_999 in ds.tokens.tolist()
    assert 1000 + 64_999 in ds.row(0)["labels"].tolist()


def test_rerun_replaces_and_foreign_folders_are_kept(tok, inputs, tmp_path):
    out = tmp_path / "o"
    _prepare(tok, inputs[:1], out, max_len=1024)
    (out / "train" / "stale.npy").write_bytes(b"x")
    meta = _prepare(tok, inputs[1:2], out, max_len=1024)
    assert not (out / "train" / "stale.npy").exists() and SFTDataset(out).n_rows == meta["counts"]["kept"] == 64
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(UserError, match="not a 'gniazdo sft prepare' folder"):
        _prepare(tok, inputs[:1], foreign)
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_errors_are_one_line(tok, tmp_path):
    raw = write_jsonl(tmp_path / "raw.jsonl", [{"instruct": "a", "output": "b"}])
    with pytest.raises(UserError, match="no conversations left.*gniazdo sft convert"):
        _prepare(tok, [raw], tmp_path / "o")
    assert not (tmp_path / "o").exists() and not list(tmp_path.glob(".o.*"))
    with pytest.raises(UserError, match="tokenizer not found"):
        _prepare(tmp_path / "notok", [raw], tmp_path / "o")


def test_cli_prepare_and_show(tok, inputs, tmp_path, capsys):
    out = tmp_path / "cli"
    main(["sft", "prepare", "--tokenizer", str(tok), "--data", str(inputs[0]), "--data", str(inputs[1]),
          "--out", str(out), "--pack", "--max-len", "512", "--weights", "a.jsonl=0.5,b.jsonl=2",
          "--val-fraction", "0.1", "--template", "chatml", "--truncation", "truncate", "--no-progress"])
    printed = capsys.readouterr().out
    assert "conversations kept" in printed and "1 bad records" in printed
    meta = json.loads((out / "meta.json").read_text())
    assert meta["pack"] and meta["max_len"] == 512 and [f["weight"] for f in meta["files"]] == [0.5, 2.0]
    assert (out / "lengths.png").is_file() and (out / "train" / "tokens.npy").is_file()
    main(["sft", "show", str(out), "--row", "0"])
    assert "learned (green)" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main(["sft", "prepare", "--tokenizer", str(tok), "--data", str(inputs[0]), "--out", str(out),
              "--max-len", "4"])
    assert e.value.code == 2 and "max_len" in capsys.readouterr().err
