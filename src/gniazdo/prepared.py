"""Folders written whole by a ``prepare`` command (``gniazdo sft prepare``, ``gniazdo prefs prepare``): a
``meta.json`` naming their format and version, built in a temp folder and swapped into place when complete.

Shared so that every such command refuses the same way to overwrite a folder that is not its own, and every
reader refuses the same way a folder of another format or version.
"""

from __future__ import annotations

import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from gniazdo.errors import UserError


def read_meta(folder: str | Path, fmt: str, version: int, command: str) -> dict[str, Any]:
    """``meta.json`` of ``folder``, checked to be of format ``fmt`` (written by ``command``) and ``version``."""
    path = Path(folder) / "meta.json"
    if not path.is_file():
        raise UserError(f"{folder}: no meta.json (not a folder made by '{command}')")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise UserError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != fmt:
        raise UserError(f"{path}: format is {meta.get('format') if isinstance(meta, dict) else None!r}, "
                        f"expected '{fmt}'")
    if meta.get("version") != version:
        raise UserError(f"{path}: version {meta.get('version')} is not supported (this gniazdo reads {version})")
    return meta


def check_replaceable(out: Path, fmt: str, command: str) -> None:
    """Only a folder of format ``fmt`` (or an empty one) may be replaced: never delete someone else's files."""
    if out.exists() and not out.is_dir():
        raise UserError(f"output {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        try:
            ours = json.loads((out / "meta.json").read_text(encoding="utf-8")).get("format") == fmt
        except (OSError, ValueError, AttributeError):
            ours = False
        if not ours:
            raise UserError(f"output {out} is not empty and not a '{command}' folder; choose another")


def replace_folder(tmp: Path, out: Path) -> None:
    """Swap the finished temp folder into place (the old folder is moved aside first, then deleted)."""
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(out)


@contextmanager
def build_folder(out: Path, fmt: str, command: str) -> Iterator[Path]:
    """``with build_folder(out, fmt, command) as tmp:`` write everything into ``tmp``; when the block ends it
    replaces ``out`` whole, and if it fails nothing of it remains (``out`` untouched). ``out`` must be empty or a
    ``fmt`` folder (:func:`check_replaceable`)."""
    check_replaceable(out, fmt, command)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        replace_folder(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def special_token_id(tokenizer: Any, tok_file: Path, key: str, default: str) -> int | None:
    """The id of the tokenizer's ``key`` token (``pad_token``, ``eos_token``) as tokenizer_config.json beside
    ``tok_file`` names it, else of ``default``: what a prepared folder records for the trainer."""
    name = default
    config = tok_file.with_name("tokenizer_config.json")
    if config.is_file():
        value = json.loads(config.read_text(encoding="utf-8")).get(key)
        name = value.get("content", default) if isinstance(value, dict) else value or default
    return tokenizer.token_to_id(name)
