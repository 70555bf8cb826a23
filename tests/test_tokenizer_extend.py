import json
from pathlib import Path

import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from gniazdo.errors import UserError
from gniazdo.resources import sample_path
from gniazdo.tokenizer.extend import extend_tokenizer, fertility
from gniazdo.tokenizer.stats import byte_level_decoder

GPT2 = Path("/work/shared/data/tokenizers/gpt-2/tokenizer.from-gguf.json")
BOOK = Path("/work/shared/data/pl/corpus/books/lalka-tom-pierwszy.txt")

ENGLISH = [
    "The quick brown fox jumps over the lazy dog while the farmer watches from the window of his house.",
    "A tokenizer splits text into pieces; the model then learns an embedding for every piece it knows.",
    "In the morning there was rain, and in the evening the sun came out over the hills and the river.",
    "She said that the weather would be better tomorrow, so they planned a long walk through the forest.",
    "Numbers like 1234 and 5678 appear in reports, tables, invoices and many other kinds of documents.",
    "Reading books, writing letters and talking with friends are the things he liked the most of all.",
]


_CHAR2BYTE = byte_level_decoder()


def _raw(token: str) -> bytes:
    return bytes(_CHAR2BYTE[c] for c in token)


def _polish() -> list[str]:
    return [json.loads(line)["text"] for line in sample_path("corpus.jsonl").read_text(encoding="utf-8").splitlines()
            if line.strip()]


def _base(tmp_path: Path, merges_as_strings: bool = False) -> Path:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(ENGLISH * 20, trainer=trainer)
    spec = json.loads(tok.to_str())
    if merges_as_strings:
        spec["model"]["merges"] = [" ".join(m) for m in spec["model"]["merges"]]
    base = tmp_path / "base"
    base.mkdir()
    (base / "tokenizer.json").write_text(json.dumps(spec), encoding="utf-8")
    (base / "tokenizer_config.json").write_text('{"model_max_length": 2048}', encoding="utf-8")
    return base


@pytest.mark.parametrize("merges_as_strings", [False, True])
def test_extend_small_base_with_polish(tmp_path, merges_as_strings):
    base_dir = _base(tmp_path, merges_as_strings)
    base = Tokenizer.from_file(str(base_dir / "tokenizer.json"))
    old_vocab = base.get_vocab(with_added_tokens=True)
    assert 350 <= len(old_vocab) <= 400
    polish = _polish()

    report = extend_tokenizer(base_dir, polish, 200, tmp_path / "out")

    out = tmp_path / "out"
    new = Tokenizer.from_file(str(out / "tokenizer.json"))
    new_vocab = new.get_vocab(with_added_tokens=True)
    # every old token keeps its id, the special token included
    assert all(new_vocab[t] == i for t, i in old_vocab.items())
    assert new.token_to_id("<|endoftext|>") == old_vocab["<|endoftext|>"]
    # new ids are contiguous right after the old ones
    assert report["added"] == 200 and report["first_new_id"] == len(old_vocab)
    new_ids = sorted(i for t, i in new_vocab.items() if t not in old_vocab)
    assert new_ids == list(range(len(old_vocab), len(old_vocab) + 200))
    # merges format preserved
    merges = json.loads((out / "tokenizer.json").read_text(encoding="utf-8"))["model"]["merges"]
    assert isinstance(merges[-1], str if merges_as_strings else list)
    # lossless on Polish text, and fewer tokens per word
    for text in polish[:20] + ["Zażółć gęślą jaźń — „cudzysłów” i wielokropek…\n\n  spacje"]:
        assert new.decode(new.encode(text).ids) == text
    assert report["fertility_after"] < report["fertility_before"] * 0.85
    assert fertility(new, polish) == pytest.approx(report["fertility_after"], abs=1e-3)
    # every new token is reachable: its own text encodes to it
    id2tok = {i: t for t, i in new_vocab.items()}
    for i in new_ids:
        assert [t.id for t in new.model.tokenize(id2tok[i])] == [i]
    # decomposition into old ids whose bytes concatenate to the new token's bytes
    decomposition = json.loads((out / "new_tokens.json").read_text(encoding="utf-8"))
    assert sorted(map(int, decomposition)) == new_ids
    for new_id, old_ids in decomposition.items():
        assert len(old_ids) >= 2 and all(i < len(old_vocab) for i in old_ids)
        assert b"".join(_raw(id2tok[i]) for i in old_ids) == _raw(id2tok[int(new_id)])
    # side files copied
    assert (out / "tokenizer_config.json").read_text(encoding="utf-8") == '{"model_max_length": 2048}'


def test_limit_docs_and_small_corpus(tmp_path):
    base_dir = _base(tmp_path)
    report = extend_tokenizer(base_dir, _polish(), 10_000, tmp_path / "out", limit_docs=5)
    assert report["docs"] == 5
    assert 0 < report["added"] < 10_000  # five documents do not hold 10k new tokens: add what there is
    assert report["last_new_id"] - report["first_new_id"] + 1 == report["added"]


def test_rejects_unsupported_bases(tmp_path):
    spm = tmp_path / "spm"
    spm.mkdir()
    (spm / "tokenizer.model").write_bytes(b"\x00")
    with pytest.raises(UserError, match="SentencePiece"):
        extend_tokenizer(spm, ["tekst"], 10, tmp_path / "o1")
    ws = tmp_path / "ws"
    ws.mkdir()
    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(ENGLISH, trainer=trainers.BpeTrainer(vocab_size=100, special_tokens=["[UNK]"],
                                                                 show_progress=False))
    tok.save(str(ws / "tokenizer.json"))
    with pytest.raises(UserError, match="byte-level"):
        extend_tokenizer(ws, ["tekst"], 10, tmp_path / "o2")
    with pytest.raises(UserError, match="no tokenizer.json"):
        extend_tokenizer(tmp_path / "missing", ["tekst"], 10, tmp_path / "o3")
    base_dir = _base(tmp_path)
    with pytest.raises(UserError, match="must differ"):
        extend_tokenizer(base_dir, ["tekst"], 10, base_dir)


@pytest.mark.skipif(not (GPT2.exists() and BOOK.exists()), reason="shared reference tokenizer / book absent")
def test_extend_gpt2_with_polish(tmp_path):
    report = extend_tokenizer(GPT2, _polish(), 500, tmp_path / "out")
    new = Tokenizer.from_file(str(tmp_path / "out" / "tokenizer.json"))
    base = Tokenizer.from_file(str(GPT2))
    assert report["added"] == 500 and report["first_new_id"] == 50257
    assert new.token_to_id("<|endoftext|>") == 50256
    chunk = BOOK.read_text(encoding="utf-8")[20_000:120_000]
    before, after = fertility(base, [chunk]), fertility(new, [chunk])
    print(f"GPT-2 +500 Polish tokens: fertility on book chunk {before:.3f} -> {after:.3f}; "
          f"on sample corpus {report['fertility_before']} -> {report['fertility_after']}")
    assert after < before * 0.9
    assert new.decode(new.encode(chunk[:5000]).ids) == chunk[:5000]
