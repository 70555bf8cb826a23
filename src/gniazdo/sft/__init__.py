"""Instruction fine-tuning data: conversations → chat template → masked, weighted, packed rows (done once,
offline), read back memory-mapped by the trainer.

    from gniazdo.sft import SFTPrepareConfig, prepare_sft, SFTDataset
    prepare_sft(SFTPrepareConfig(tokenizer="tok/pl32k", data=["chat.jsonl"], out="sft/", pack=True))
    row = SFTDataset("sft/").row(0)
"""

from gniazdo.sft.conversations import (convert_file, detect_and_convert, from_alpaca, from_sharegpt, from_speakleash,
                                       load_conversations, validate_conversation)
from gniazdo.sft.dataset import SFTDataset, read_meta
from gniazdo.sft.prepare import SFTPrepareConfig, pack_rows, prepare_sft
from gniazdo.sft.templates import TEMPLATES, ChatTemplate, get_template, write_template

__all__ = ["load_conversations", "validate_conversation", "from_speakleash", "from_alpaca", "from_sharegpt",
           "detect_and_convert", "convert_file", "ChatTemplate", "TEMPLATES", "get_template", "write_template",
           "SFTPrepareConfig", "prepare_sft", "pack_rows", "SFTDataset", "read_meta"]
