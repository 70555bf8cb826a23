"""Every training recipe in configs/train validates against TrainConfig."""

from __future__ import annotations

from pathlib import Path

import pytest

from gniazdo.config import load_config
from gniazdo.model import model_config
from gniazdo.train import TrainConfig

RECIPES = sorted((Path(__file__).resolve().parents[2] / "configs" / "train").glob("*.yaml"))


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_recipe_validates(path):
    cfg = load_config(TrainConfig, path)
    if cfg.model.preset:
        model_config(cfg.model.preset, **cfg.model.overrides)


def test_recipes_are_there():
    assert {p.stem for p in RECIPES} >= {"tiny-cpu", "1b-gpu", "continued-mistral7b"}
