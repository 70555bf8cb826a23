"""The decoder-only transformer (Llama / Mistral), its presets, and Hugging Face checkpoint conversion."""

from gniazdo.model.hf import config_from_hf, config_to_hf, from_pretrained, save_pretrained
from gniazdo.model.model import ModelConfig, Transformer, positions_from_document_ids
from gniazdo.model.presets import PRESETS, model_config

__all__ = [
    "ModelConfig",
    "Transformer",
    "positions_from_document_ids",
    "model_config",
    "PRESETS",
    "save_pretrained",
    "from_pretrained",
    "config_to_hf",
    "config_from_hf",
]
