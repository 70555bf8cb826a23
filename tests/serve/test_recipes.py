"""The serving recipes in configs/serve/ validate as ServeConfig."""

from __future__ import annotations

from pathlib import Path


def test_serve_recipe_validates():
    from gniazdo.config import load_config
    from gniazdo.serve.config import ServeConfig

    recipe = Path(__file__).resolve().parents[2] / "configs/serve/company-local.yaml"
    cfg = load_config(ServeConfig, recipe, ["port=9000"])
    assert [m.served_name for m in cfg.models] == ["bielik", "sft"]
    assert cfg.port == 9000 and cfg.guard.lexicon.endswith("polish_vulgarisms_extended_2.0.txt")
