"""Tokenizers: train a byte-level BPE / Unigram tokenizer on a corpus, and compare tokenizers on Polish text."""

from gniazdo.tokenizer.train import CHAT_TEMPLATE, SPECIAL_TOKENS, TokenizerTrainConfig, train_tokenizer

__all__ = ["TokenizerTrainConfig", "train_tokenizer", "SPECIAL_TOKENS", "CHAT_TEMPLATE", "tokenizer_stats",
           "markdown_table", "plot_fertility"]


def __getattr__(name: str):
    if name in ("tokenizer_stats", "markdown_table", "plot_fertility"):
        from gniazdo.tokenizer import stats

        return getattr(stats, name)
    raise AttributeError(name)
