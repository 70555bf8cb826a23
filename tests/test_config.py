from __future__ import annotations

from typing import Literal

import pytest

from gniazdo.config import Config, apply_overrides, load_config, save_resolved, read_yaml
from gniazdo.errors import UserError


class Inner(Config):
    min_words: int = 0
    mode: Literal["a", "b"] = "a"


class Outer(Config):
    name: str = "x"
    workers: int = 1
    inner: Inner = Inner()
    items: list[Inner] = []


def test_overrides_dotted_with_list_index_and_yaml_values():
    data = {"workers": 1, "items": [{"min_words": 1}, {"min_words": 2}]}
    out = apply_overrides(data, ["workers=4", "items.1.min_words=30", "inner.mode=b", "name=ala ma kota"])
    assert out == {"workers": 4, "items": [{"min_words": 1}, {"min_words": 30}], "inner": {"mode": "b"},
                   "name": "ala ma kota"}
    assert data["workers"] == 1  # the input is not modified


def test_load_config_yaml_and_overrides(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("workers: 2\ninner:\n  min_words: 5\n")
    cfg = load_config(Outer, p, ["inner.min_words=7"])
    assert cfg.workers == 2 and cfg.inner.min_words == 7
    saved = save_resolved(cfg, tmp_path / "out")
    assert read_yaml(saved)["inner"] == {"min_words": 7, "mode": "a"}


def test_unknown_key_names_key_and_valid_choices(tmp_path):
    with pytest.raises(UserError) as e:
        load_config(Outer, None, ["inner.min_wordz=3"])
    msg = str(e.value)
    assert "unknown key 'inner.min_wordz'" in msg and "valid: min_words, mode" in msg
    assert "\n" not in msg


def test_wrong_type_and_literal_are_one_line():
    with pytest.raises(UserError, match=r"^workers: .*integer.*\(got 'many'\)$"):
        load_config(Outer, None, ["workers=many"])
    with pytest.raises(UserError, match=r"inner.mode: .*'a' or 'b'"):
        load_config(Outer, None, ["inner.mode=c"])


def test_bad_override_and_missing_file(tmp_path):
    with pytest.raises(UserError, match="key=value"):
        apply_overrides({}, ["workers"])
    with pytest.raises(UserError, match="not an index"):
        apply_overrides({"items": []}, ["items.3.x=1"])
    with pytest.raises(UserError, match="config file not found"):
        load_config(Outer, tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_config(Outer, bad)
