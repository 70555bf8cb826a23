"""Token shards: tokenized corpora as memory-mappable files for pretraining.

    from gniazdo.shards import tokenize_corpus, TokenShards
    tokenize_corpus("tokenizer/", ["corpus/"], "shards/", mixture="mixture.yaml", seed=0)
    train = TokenShards("shards/", prefix="train"); train.window(123, 2048)

See :mod:`gniazdo.shards.format` for the file layout.
"""

from gniazdo.shards.format import HEADER_SIZE, MAGIC, SHARD_SUFFIX, VERSION, Header, dtype_for, read_header
from gniazdo.shards.mixture import Mixture
from gniazdo.shards.reader import TokenShards
from gniazdo.shards.writer import ShardSeries, ShardWriter, is_val, tokenize_corpus

__all__ = ["HEADER_SIZE", "MAGIC", "SHARD_SUFFIX", "VERSION", "Header", "dtype_for", "read_header", "Mixture",
           "TokenShards", "ShardSeries", "ShardWriter", "is_val", "tokenize_corpus"]
