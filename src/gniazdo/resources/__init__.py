"""Files shipped inside the package: the sample corpus and its ground truth, sample instructions and prefs."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def sample_path(name: str = "") -> Path:
    """Path of a file in ``gniazdo/resources/sample`` (the package is installed unzipped, so it is a real path)."""
    return Path(str(files("gniazdo.resources") / "sample" / name))
