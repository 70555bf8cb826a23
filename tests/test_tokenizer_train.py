from __future__ import annotations

import json

import pytest
import yaml

from gniazdo.config import validate
from gniazdo.errors import UserError
from gniazdo.resources import sample_path
from gniazdo.tokenizer import SPECIAL_TOKENS, TokenizerTrainConfig, train_tokenizer

transformers = pytest.importorskip("transformers")

SAMPLES = [
    "Zażółć gęślą jaźń. ŹDŹBŁO, Łódź i Gdańsk — „cytat” – koniec…",
    "Emoji też: 🎉🇵🇱👍🏽 oraz znaki łączone: e\u0301 → NFC",
    "def fib(n: int) -> int:\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n\n\tprint({'a': [1, 2]})\n",
    "  dwie spacje,\r\nCRLF i\u00a0twarda spacja  ",
]


@pytest.fixture(scope="module")
def bpe_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("tok") / "bpe"
    cfg = TokenizerTrainConfig(corpus=[str(sample_path("corpus.jsonl"))], vocab_size=1000, out=str(out),
                               progress=False)
    return train_tokenizer(cfg)


@pytest.fixture(scope="module")
def hf(bpe_dir):
    return transformers.AutoTokenizer.from_pretrained(str(bpe_dir))


def test_output_files(bpe_dir):
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "config.resolved.yaml"):
        assert (bpe_dir / name).is_file(), name
    conf = json.loads((bpe_dir / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert conf["tokenizer_class"] == "PreTrainedTokenizerFast"
    resolved = yaml.safe_load((bpe_dir / "config.resolved.yaml").read_text(encoding="utf-8"))
    assert resolved["vocab_size"] == 1000 and resolved["model"] == "bpe"


def test_vocab_and_special_ids(hf):
    assert len(hf) == 1000
    assert hf.convert_tokens_to_ids(SPECIAL_TOKENS) == [0, 1, 2, 3, 4, 5]
    assert (hf.bos_token_id, hf.eos_token_id, hf.unk_token_id, hf.pad_token_id) == (0, 1, 2, 3)
    assert hf.encode("<|im_start|>user", add_special_tokens=False)[0] == 4


@pytest.mark.parametrize("text", SAMPLES)
def test_roundtrip_lossless(hf, text):
    import unicodedata

    ids = hf.encode(text, add_special_tokens=False)
    assert hf.unk_token_id not in ids
    assert hf.decode(ids) == unicodedata.normalize("NFC", text)


def test_nfc_normalization(hf):
    assert hf.encode("e\u0301", add_special_tokens=False) == hf.encode("é", add_special_tokens=False)


def test_numbers_stay_whole_pre_tokens(hf):
    # digits never merge with letters or punctuation; a number is one pre-token with its leading space
    assert "".join(hf.tokenize(" 2024")) == "Ġ2024"
    assert all(t.lstrip("Ġ").isdigit() for t in hf.tokenize(" 12345678 990") if any(c.isdigit() for c in t))


def test_polish_words_get_merges(hf):
    # a 1000-token vocabulary trained on Polish text should have common Polish words / stems
    assert len(hf.tokenize(" się")) == 1
    assert len(hf.tokenize("Zażółć gęślą jaźń")) < len("Zażółć gęślą jaźń".encode("utf-8"))


def test_chat_template(hf):
    messages = [{"role": "system", "content": "Jesteś pomocny."}, {"role": "user", "content": "Cześć!"},
                {"role": "assistant", "content": "Dzień dobry."}]
    text = hf.apply_chat_template(messages, tokenize=False)
    assert text == ("<|im_start|>system\nJesteś pomocny.<|im_end|>\n<|im_start|>user\nCześć!<|im_end|>\n"
                    "<|im_start|>assistant\nDzień dobry.<|im_end|>\n")
    prompt = hf.apply_chat_template(messages[:2], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<|im_start|>user\nCześć!<|im_end|>\n<|im_start|>assistant\n")
    ids = hf.apply_chat_template(messages[:2], tokenize=True, add_generation_prompt=True)
    ids = ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids
    assert ids[0] == 4 and ids.count(5) == 2


def test_unigram_trains_and_roundtrips(tmp_path):
    cfg = TokenizerTrainConfig(corpus=[str(sample_path("corpus.jsonl"))], vocab_size=800, out=str(tmp_path / "u"),
                               model="unigram", digits="each", limit_docs=100, progress=False)
    tok = transformers.AutoTokenizer.from_pretrained(str(train_tokenizer(cfg)))
    assert tok.convert_tokens_to_ids(SPECIAL_TOKENS) == [0, 1, 2, 3, 4, 5]
    assert len(tok) <= 800
    for text in SAMPLES[:3]:
        import unicodedata

        ids = tok.encode(text, add_special_tokens=False)
        assert tok.decode(ids) == unicodedata.normalize("NFC", text)
    assert tok.tokenize("rok 2024")[-4:] == ["2", "0", "2", "4"]


@pytest.mark.parametrize("digits, pieces", [("whole", ["Ġ12345"]), ("each", ["1", "2", "3", "4", "5"]),
                                             ("group3", ["Ġ123", "45"])])
def test_digit_options(tmp_path, digits, pieces):
    cfg = TokenizerTrainConfig(corpus=[str(sample_path("corpus.jsonl"))], vocab_size=600, out=str(tmp_path / "d"),
                               digits=digits, limit_docs=50, progress=False)
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(train_tokenizer(cfg) / "tokenizer.json"))
    got = [p for p, _ in tok.pre_tokenizer.pre_tokenize_str("rok 12345")]
    assert got[0] == "rok" and [p for p in got[1:] if p != "Ġ"] == pieces


def test_pre_tokenizer_keeps_polish_punctuation_with_words(tmp_path):
    from tokenizers import Tokenizer

    cfg = TokenizerTrainConfig(corpus=[str(sample_path("corpus.jsonl"))], vocab_size=600, out=str(tmp_path / "d"),
                               limit_docs=50, progress=False)
    tok = Tokenizer.from_file(str(train_tokenizer(cfg) / "tokenizer.json"))
    decoded = [tok.decoder.decode([p]) for p, _ in tok.pre_tokenizer.pre_tokenize_str("„Tak”.\n\nDom (np. kot)")]
    assert decoded == ["„Tak", "”.\n\n", "Dom", " (", "np", ".", " kot", ")"]


def test_progress_bar_and_limit(tmp_path):
    cfg = TokenizerTrainConfig(corpus=[str(sample_path("corpus.jsonl"))], vocab_size=400, out=str(tmp_path / "p"),
                               limit_docs=10)
    assert (train_tokenizer(cfg) / "tokenizer.json").is_file()


def test_config_errors(tmp_path):
    with pytest.raises(UserError, match="unknown key 'vocab'"):
        validate(TokenizerTrainConfig, {"corpus": ["x"], "out": "o", "vocab": 5})
    with pytest.raises(UserError, match="model"):
        validate(TokenizerTrainConfig, {"corpus": ["x"], "out": "o", "model": "wordpiece"})
    with pytest.raises(UserError, match="input not found"):
        train_tokenizer(TokenizerTrainConfig(corpus=[str(tmp_path / "none.jsonl")], out=str(tmp_path / "o"),
                                             progress=False))
