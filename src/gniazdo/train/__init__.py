"""Training: pre-training (this issue), SFT and preference objectives (next) on one trainer."""

from gniazdo.train.config import LIVE_FIELDS, TrainConfig

__all__ = ["TrainConfig", "LIVE_FIELDS", "Trainer", "train", "export_hf"]


def __getattr__(name: str):
    # torch-heavy modules load on first use, so `gniazdo --help` stays fast
    if name in ("Trainer", "train"):
        from gniazdo.train import trainer

        return getattr(trainer, name)
    if name == "export_hf":
        from gniazdo.train.export import export_hf

        return export_hf
    raise AttributeError(name)
