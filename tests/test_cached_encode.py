"""The cached encoder gives exactly the tokenizer's ids, and falls back to the tokenizer where it cannot."""

from __future__ import annotations

import random

import numpy as np
import pytest
from tokenizers import Tokenizer, pre_tokenizers

from gniazdo.corpus import read_documents
from gniazdo.resources import sample_path
from gniazdo.tokenizer import TokenizerTrainConfig, train_tokenizer
from gniazdo.tokenizer.cached_encode import CachedEncoder, batch_encoder

from conftest import SHARED

TRICKY = [
    "Zażółć gęślą jaźń. „Cytat” — i… (np. 12345 zł, 3,14%) 2024-01-02",
    "e\u0301 Å\u030a ﬁ NFC; emoji 🎉🇵🇱👍🏽 i 中文, русский, עברית",
    "sep\x1cara\x1dtors\x1e\x1f nel\x85line nbsp\u00a0x ls\u2028ps\u2029 ideo\u3000space\tTab\r\nCRLF\n\n\n  end  ",
    "def f(x):\n    return {'a': [1, 2]}  # kod\n\t\tif x >= 10_000: pass\n",
    "   ",
    "",
    "<|im_start|>user\nCześć</s><s>",
]


def sample_texts() -> list[str]:
    return [d.text for d in read_documents([sample_path("corpus.jsonl")])]


def random_texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    alphabet = list("aąbcćeęłńóśźżAĄŁ019 .,;:!?-—„”…()[]'\"\n\r\t") + ["\u00a0", "\x1c", "\x85", "\u2028",
                                                                      "e\u0301", "🎉", "中", "\u3000", "  "]
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 200))) for _ in range(n)]


@pytest.fixture(scope="module", params=["whole", "each", "group3"])
def ours(request, tmp_path_factory):
    out = tmp_path_factory.mktemp("tok") / request.param
    cfg = TokenizerTrainConfig(corpus=[str(sample_path("corpus.jsonl"))], vocab_size=1500, out=str(out),
                               digits=request.param, progress=False)
    return Tokenizer.from_file(str(train_tokenizer(cfg) / "tokenizer.json"))


@pytest.fixture(scope="module")
def gpt2_style():
    from tokenizers import ByteLevelBPETokenizer

    tok = ByteLevelBPETokenizer()
    tok.train_from_iterator(sample_texts(), vocab_size=1200, special_tokens=["<|endoftext|>"])
    return Tokenizer.from_str(tok.to_str())


def reference(tok: Tokenizer, texts: list[str]) -> list[list[int]]:
    return [e.ids for e in tok.encode_batch(texts, add_special_tokens=False)]


def assert_same(tok: Tokenizer, texts: list[str], **kw) -> None:
    enc = CachedEncoder.create(tok, **kw)
    assert enc is not None
    got = enc.encode_batch(texts)
    assert all(g.dtype == np.int64 for g in got)
    assert [g.tolist() for g in got] == reference(tok, texts)


def test_same_ids_as_tokenizer_on_our_tokenizers(ours):
    assert_same(ours, sample_texts() + TRICKY + random_texts(300))


def test_same_ids_as_tokenizer_on_gpt2_style(gpt2_style):
    assert_same(gpt2_style, sample_texts() + TRICKY + random_texts(300, seed=1))


def test_cache_reset_keeps_results(ours):
    assert_same(ours, sample_texts()[:40], max_pieces=500)


@pytest.mark.skipif(not (SHARED.parent / "tokenizers" / "gpt-2").exists(), reason="shared tokenizers not present")
def test_same_ids_on_real_gpt2():
    tok = Tokenizer.from_file(str(SHARED.parent / "tokenizers" / "gpt-2" / "tokenizer.from-gguf.json"))
    assert_same(tok, sample_texts()[:80] + TRICKY)


def test_unsupported_pipeline_falls_back_to_tokenizer(ours):
    other = Tokenizer.from_str(ours.to_str())
    other.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                   pre_tokenizers.ByteLevel(add_prefix_space=False)])
    assert CachedEncoder.create(other) is None
    texts = sample_texts()[:20] + TRICKY
    assert [a.tolist() for a in batch_encoder(other)(texts)] == reference(other, texts)


def test_a_mismatch_switches_to_the_tokenizer(ours, monkeypatch):
    monkeypatch.setattr(CachedEncoder, "encode_batch", lambda self, texts: [np.zeros(1, np.int64) for _ in texts])
    encode = batch_encoder(ours)
    texts = sample_texts()[:5]
    with pytest.warns(UserWarning, match="differs"):
        got = encode(texts)
    assert [g.tolist() for g in got] == reference(ours, texts)
