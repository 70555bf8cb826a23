from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gniazdo.corpus import read_documents
from gniazdo.errors import UserError
from gniazdo.resources import sample_path
from gniazdo.shards import (HEADER_SIZE, Header, Mixture, ShardWriter, TokenShards, dtype_for, is_val, read_header,
                            tokenize_corpus)
from gniazdo.shards.format import parse_header

from conftest import write_jsonl

CORPUS = sample_path("corpus.jsonl")


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=500, special_tokens=["<unk>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator((d.text for d in read_documents([CORPUS])), trainer)
    out = tmp_path_factory.mktemp("tok")
    tok.save(str(out / "tokenizer.json"))
    return out


@pytest.fixture(scope="module")
def tokenizer(tokenizer_dir):
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))


# --- format ---------------------------------------------------------------------------------------------------

def test_dtype_for_vocab_size():
    assert dtype_for(500) == np.uint16
    assert dtype_for(65_536) == np.uint16  # ids 0..65,535 still fit
    assert dtype_for(65_537) == np.uint32
    assert dtype_for(151_936) == np.uint32
    with pytest.raises(UserError):
        dtype_for(0)


def test_header_round_trip_and_uint32_ids(tmp_path):
    h = Header(np.dtype("<u4"), 12345, 67)
    raw = h.pack()
    assert len(raw) == HEADER_SIZE and raw.startswith(b"GNZTOK\0\0")
    assert parse_header(raw) == h

    path = tmp_path / "big.tok"
    with ShardWriter(path, vocab_size=200_000, eos_id=199_999) as w:
        w.add([70_000, 1, 150_000])
        w.add([])
    header = read_header(path)
    assert header.dtype == np.uint32 and header.n_tokens == 5 and header.n_docs == 2
    shards = TokenShards(path)
    assert shards.window(0, 5).tolist() == [70_000, 1, 150_000, 199_999, 199_999]
    assert shards.doc_starts.tolist() == [0, 4]


def test_bad_magic_version_and_truncation_are_user_errors(tmp_path):
    good = tmp_path / "good.tok"
    with ShardWriter(good, vocab_size=500, eos_id=1) as w:
        w.add([5, 6, 7])
    data = good.read_bytes()

    bad = tmp_path / "bad.tok"
    bad.write_bytes(b"NOTATOK!" + data[8:])
    with pytest.raises(UserError, match="bad.tok.*magic"):
        read_header(bad)
    bad.write_bytes(data[:8] + (99).to_bytes(4, "little") + data[12:])
    with pytest.raises(UserError, match="bad.tok.*version 99"):
        read_header(bad)
    bad.write_bytes(data[:-3])
    with pytest.raises(UserError, match="bad.tok.*truncated"):
        TokenShards(bad)
    with pytest.raises(UserError, match="not found"):
        read_header(tmp_path / "missing.tok")


def test_writer_is_atomic_and_checks_ids(tmp_path):
    path = tmp_path / "s.tok"
    w = ShardWriter(path, vocab_size=500, eos_id=1)
    w.add([1, 2, 3])
    assert not path.exists()  # only a temp file until close
    with pytest.raises(UserError, match="token id 500"):
        w.add([499, 500])
    w.abort()
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(UserError, match="eos id"):
        ShardWriter(path, vocab_size=500, eos_id=500)


# --- tokenize_corpus ------------------------------------------------------------------------------------------

def _expected_stream(tokenizer, docs, eos):
    out = []
    for d in docs:
        out.extend(tokenizer.encode(d.text, add_special_tokens=False).ids)
        out.append(eos)
    return out


def test_round_trip_eos_and_val_split(tmp_path, tokenizer_dir, tokenizer):
    eos = tokenizer.token_to_id("</s>")
    meta = tokenize_corpus(tokenizer_dir, [CORPUS], tmp_path / "out", val_fraction=0.2, seed=3,
                           shard_tokens=5_000)
    docs = list(read_documents([CORPUS]))
    val_docs = [d for d in docs if is_val(d.id, 3, 0.2)]
    train_docs = [d for d in docs if not is_val(d.id, 3, 0.2)]
    assert 20 < len(val_docs) < 90

    for split, expected_docs in (("train", train_docs), ("val", val_docs)):
        shards = TokenShards(tmp_path / "out", prefix=split)
        assert shards.n_docs == len(expected_docs)
        stream = shards.window(0, shards.n_tokens)
        assert stream.dtype == np.uint16
        assert stream.tolist() == _expected_stream(tokenizer, expected_docs, eos)
        # every document ends with exactly one </s>, and </s> appears nowhere else
        for j in (0, shards.n_docs // 2, shards.n_docs - 1):
            doc = shards.document(j)
            assert doc[-1] == eos and eos not in doc[:-1]
            assert tokenizer.decode(doc[:-1].tolist()) == expected_docs[j].text
        assert int((stream == eos).sum()) == len(expected_docs)
        assert meta["tokens"]["after_mixture"][split]["tokens"] == shards.n_tokens

    assert len(meta["shards"]["train"]) > 3  # shard_tokens=5000 rolls over
    assert all(s["tokens"] >= 5_000 for s in meta["shards"]["train"][:-1])
    assert meta["tokens"]["before_mixture"]["tokens"] == sum(
        meta["tokens"]["after_mixture"][s]["tokens"] for s in ("train", "val"))
    assert meta["tokens"]["before_mixture"]["source"] == {"corpus": meta["tokens"]["before_mixture"]["tokens"]}
    import hashlib
    assert meta["tokenizer"]["sha256"] == hashlib.sha256((tokenizer_dir / "tokenizer.json").read_bytes()).hexdigest()
    assert json.loads((tmp_path / "out" / "meta.json").read_text()) == meta


def test_deterministic_for_a_seed(tmp_path, tokenizer_dir):
    for name in ("a", "b"):
        tokenize_corpus(tokenizer_dir, [CORPUS], tmp_path / name, val_fraction=0.1, seed=7, shard_tokens=8_000,
                        batch_size=17 if name == "a" else 256)  # batching must not matter either
    files_a = sorted(p.name for p in (tmp_path / "a").glob("*.tok"))
    assert files_a == sorted(p.name for p in (tmp_path / "b").glob("*.tok")) and len(files_a) > 2
    for name in files_a:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    tokenize_corpus(tokenizer_dir, [CORPUS], tmp_path / "c", val_fraction=0.1, seed=8, shard_tokens=8_000)
    assert (tmp_path / "a" / "val-00000-00000.tok").read_bytes() != (tmp_path / "c" / "val-00000-00000.tok").read_bytes()


def test_val_split_is_stable_under_corpus_changes(tmp_path, tokenizer_dir):
    docs = [{"id": d.id, "text": d.text} for d in read_documents([CORPUS])]
    full = write_jsonl(tmp_path / "full.jsonl", docs)
    part = write_jsonl(tmp_path / "part.jsonl", docs[::-3])  # a reordered subset
    m_full = tokenize_corpus(tokenizer_dir, [full], tmp_path / "full", val_fraction=0.25, seed=1)
    m_part = tokenize_corpus(tokenizer_dir, [part], tmp_path / "part", val_fraction=0.25, seed=1)
    val_full = {r["id"] for r in docs if is_val(r["id"], 1, 0.25)}
    val_part = {r["id"] for r in docs[::-3] if is_val(r["id"], 1, 0.25)}
    assert val_part == val_full & {r["id"] for r in docs[::-3]}
    assert m_full["tokens"]["after_mixture"]["val"]["documents"] == len(val_full)
    assert m_part["tokens"]["after_mixture"]["val"]["documents"] == len(val_part)


# --- mixture --------------------------------------------------------------------------------------------------

def test_mixture_yaml_and_errors(tmp_path):
    cfg = tmp_path / "mix.yaml"
    cfg.write_text("source: {wiki: 2.5, forum: 0.5}\nquality: {HIGH: 1.0, LOW: 0}\n")
    m = Mixture.load(cfg)
    assert m.weight("wiki", {"quality": "HIGH"}) == 2.5
    assert m.weight("forum", {"quality": "LOW"}) == 0
    assert m.weight("other", {}) == 1.0
    assert m.copies("x", "forum", {"quality": "LOW"}) == 0
    assert m.copies("x", "wiki", {"quality": "HIGH"}) in (2, 3)
    cfg.write_text("source: {wiki: -1}\n")
    with pytest.raises(UserError, match="source.wiki"):
        Mixture.load(cfg)
    cfg.write_text("sources: {wiki: 1}\n")
    with pytest.raises(UserError, match="unknown key 'sources'"):
        Mixture.load(cfg)


def test_mixture_proportions_within_one_percent(tmp_path, tokenizer_dir):
    n = 12_000
    text = "Ala ma kota, a kot ma Alę."
    sources = {"wiki": 2.5, "forum": 0.4, "news": 1.0}
    for name in sources:
        write_jsonl(tmp_path / "in" / f"{name}.jsonl",
                    [{"id": f"{name}-{i}", "text": text,
                      "meta": {"quality": ("HIGH", "MEDIUM", "LOW")[i % 3], "category": "c"}} for i in range(n)])
    mix = Mixture(source=sources, quality={"HIGH": 1.0, "MEDIUM": 0.5, "LOW": 0})
    meta = tokenize_corpus(tokenizer_dir, [tmp_path / "in"], tmp_path / "out", mixture=mix, val_fraction=0.0)
    before, after = meta["tokens"]["before_mixture"], meta["tokens"]["after_mixture"]["train"]
    assert before["source"] == {s: before["tokens"] // 3 for s in sources}
    assert "LOW" not in after["quality"]
    mean_quality = (1.0 + 0.5 + 0.0) / 3
    expected = {s: w * mean_quality for s, w in sources.items()}
    total = sum(expected.values())
    for s, w in expected.items():
        # requested share of the training tokens, reproduced within 1 percentage point
        assert abs(after["source"][s] / after["tokens"] - w / total) < 0.01, (s, after["source"][s], w)
        assert abs(after["source"][s] / before["source"][s] - w) < 0.03  # kept/repeated fraction itself
    assert abs(after["quality"]["MEDIUM"] / after["tokens"] - 0.5 / 1.5) < 0.01
    assert meta["mixture"]["source"] == sources
    shards = TokenShards(tmp_path / "out", prefix="train")
    assert shards.n_tokens == after["tokens"]


# --- reader ---------------------------------------------------------------------------------------------------

def test_windows_span_shards(tmp_path):
    rng = np.random.default_rng(0)
    docs = [rng.integers(2, 500, size=rng.integers(1, 40)) for _ in range(60)]
    paths = []
    for k in range(3):
        paths.append(tmp_path / f"train-{k:05d}.tok")
        with ShardWriter(paths[-1], vocab_size=500, eos_id=1) as w:
            for d in docs[k * 20:(k + 1) * 20]:
                w.add(d)
    full = np.concatenate([np.append(d, 1) for d in docs])
    shards = TokenShards(tmp_path, prefix="train")
    assert shards.paths == paths and shards.n_tokens == len(full) == len(shards)
    boundary = int(shards.offsets[1])
    for i, length in [(0, len(full)), (boundary - 3, 10), (boundary - 1, int(shards.offsets[2]) - boundary + 5),
                      (len(full) - 7, 7), (5, 0)]:
        assert shards.window(i, length).tolist() == full[i:i + length].tolist()
    for _ in range(50):
        i = int(rng.integers(0, len(full) - 64))
        assert np.array_equal(shards.window(i, 64), full[i:i + 64])
    with pytest.raises(IndexError):
        shards.window(len(full) - 3, 4)
    starts = np.cumsum([0] + [len(d) + 1 for d in docs[:-1]])
    assert shards.doc_starts.tolist() == starts.tolist()
    rel = shards.doc_starts_in(boundary - 3, 10)
    assert all(full[boundary - 3 + r - 1] == 1 for r in rel if r > 0)
    assert 3 in rel.tolist()  # the second shard starts with a document
    assert np.array_equal(shards.document(20), np.append(docs[20], 1))
    with pytest.raises(UserError, match="no token shards"):
        TokenShards(tmp_path, prefix="val")


# --- tasks: parallel and resumable ------------------------------------------------------------------------------

def _split_corpus(folder: Path, parts: int = 3) -> Path:
    import json as _json

    docs = CORPUS.read_text(encoding="utf-8").splitlines()
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(parts):
        (folder / f"part{k}.jsonl").write_text("\n".join(docs[k::parts]) + "\n", encoding="utf-8")
    assert all(_json.loads(line) for line in docs[:1])
    return folder


def _snapshot(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.glob("*.tok"))}


def test_workers_and_resume_give_identical_shards(tokenizer_dir, tmp_path):
    from gniazdo.shards import tokenize_corpus

    src = _split_corpus(tmp_path / "in")
    one = tokenize_corpus(tokenizer_dir, [src], tmp_path / "one", val_fraction=0.1, shard_tokens=20_000)
    two = tokenize_corpus(tokenizer_dir, [src], tmp_path / "two", val_fraction=0.1, shard_tokens=20_000, workers=2)
    assert _snapshot(tmp_path / "one") == _snapshot(tmp_path / "two") and one["tokens"] == two["tokens"]
    assert {p.split("-")[1] for p in _snapshot(tmp_path / "one")} == {"00000", "00001", "00002"}  # a series a file
    # a kill in the middle of task 1: its marker never written, one of its shards half-written, a temp file left
    (tmp_path / "one" / ".done" / "00001.json").unlink()
    victim = sorted((tmp_path / "one").glob("train-00001-*.tok"))[0]
    victim.write_bytes(victim.read_bytes()[:100])
    (tmp_path / "one" / ".train-00001-00009.tok.tmp-123").write_bytes(b"junk")
    again = tokenize_corpus(tokenizer_dir, [src], tmp_path / "one", val_fraction=0.1, shard_tokens=20_000)
    assert _snapshot(tmp_path / "one") == _snapshot(tmp_path / "two") and again["tokens"] == one["tokens"]
    assert not list((tmp_path / "one").glob(".*.tmp*"))
    assert again["shards"] == one["shards"]
