"""Conversation records for instruction fine-tuning: reading, validating, converting other formats.

One conversation a JSONL line (the format of ``resources/sample/instructions.jsonl``)::

    {"messages": [{"role": "system", "content": "..."}, {"role": "user", "content": "..."},
                  {"role": "assistant", "content": "..."}], "weight": 1.0}

``role`` is ``system``, ``user`` or ``assistant``; at least one assistant turn (what the model learns);
``weight`` (optional, >= 0, default 1) scales the conversation's tokens in the loss. Other keys are kept.

Converters turn SpeakLeash instruction records (``instruct``/``input``/``output``), Alpaca records
(``instruction``/``input``/``output``/``system``) and ShareGPT records (``conversations``: ``from``/``value``)
into conversations.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterator

from gniazdo.errors import UserError
from gniazdo.fileio import atomic_open, iter_lines

ROLES = ("system", "user", "assistant")
FORMATS = ("auto", "speakleash", "alpaca", "sharegpt", "messages")


class BadRecord(ValueError):
    """A record that is not a usable conversation; ``reason`` is a short key for counting."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def validate_conversation(rec: Any) -> dict[str, Any]:
    """Check a conversation record (see the module docstring); returns it, raises :class:`BadRecord`."""
    if not isinstance(rec, dict):
        raise BadRecord("not_an_object", f"expected a JSON object, got {type(rec).__name__}")
    messages = rec.get("messages")
    if messages is None:
        raise BadRecord("no_messages", f"no 'messages' key (keys: {', '.join(sorted(rec)) or 'none'})")
    if not isinstance(messages, list):
        raise BadRecord("bad_message", f"'messages' must be a list, got {type(messages).__name__}")
    if not messages:
        raise BadRecord("empty", "empty conversation ('messages' is [])")
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise BadRecord("bad_message", f"message {i} is not an object")
        if m.get("role") not in ROLES:
            raise BadRecord("unknown_role", f"message {i} has role {m.get('role')!r} (valid: {', '.join(ROLES)})")
        if not isinstance(m.get("content"), str):
            raise BadRecord("bad_message", f"message {i} has no text 'content'")
    if not any(m["role"] == "assistant" for m in messages):
        raise BadRecord("no_assistant", "no assistant turn (nothing to learn)")
    if "weight" in rec:
        w = rec["weight"]
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
            raise BadRecord("bad_weight", f"weight must be a number >= 0, got {w!r}")
    return rec


def weight_of(conv: dict[str, Any]) -> float:
    return float(conv.get("weight", 1.0))


def _records(path: Path) -> Iterator[tuple[Any, int]]:
    """(parsed JSON or a BadRecord, line number) for every non-blank line; .gz/.zst are decompressed."""
    for line_no, raw in enumerate(iter_lines(path), 1):
        if not raw.strip():
            continue
        try:
            yield json.loads(raw), line_no
        except (ValueError, UnicodeDecodeError) as e:
            yield BadRecord("bad_json", f"not valid JSON ({str(e).splitlines()[0]})"), line_no


def _read(path: str | Path, convert: Callable[[Any], dict[str, Any]], strict: bool,
          skipped: Counter | None) -> Iterator[tuple[dict[str, Any], int]]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"input not found: {path}")
    for rec, line_no in _records(path):
        try:
            if isinstance(rec, BadRecord):
                raise rec
            yield validate_conversation(convert(rec)), line_no
        except BadRecord as e:
            if strict:
                raise UserError(f"{path}:{line_no}: {e}") from None
            if skipped is not None:
                skipped[e.reason] += 1


def load_conversations(path: str | Path, strict: bool = True,
                       skipped: Counter | None = None) -> Iterator[tuple[dict[str, Any], int]]:
    """Conversations of a JSONL file (.gz/.zst too) with their line numbers.

    ``strict``: a bad record is a one-line :class:`UserError` naming file and line. Otherwise it is skipped and
    counted in ``skipped`` by reason (``bad_json``, ``no_messages``, ``unknown_role``, ``empty``, ...).
    """
    return _read(path, lambda rec: rec, strict, skipped)


# ---------------------------------------------------------------- converters


def _text(rec: dict[str, Any], *keys: str, required: bool = True) -> str:
    """The first of ``keys`` present in ``rec``, stripped (raw instruction data has stray whitespace)."""
    for key in keys:
        value = rec.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise BadRecord("bad_message", f"'{key}' must be text, got {type(value).__name__}")
        return value.strip()
    if required:
        raise BadRecord("missing_field", f"no {' or '.join(repr(k) for k in keys)} (keys: {', '.join(sorted(rec))})")
    return ""


def _instruction_turns(rec: Any, instruction_keys: tuple[str, ...]) -> list[dict[str, str]]:
    if not isinstance(rec, dict):
        raise BadRecord("not_an_object", f"expected a JSON object, got {type(rec).__name__}")
    instruction = _text(rec, *instruction_keys)
    extra = _text(rec, "input", required=False)
    output = _text(rec, "output")
    user = f"{instruction}\n\n{extra}" if extra else instruction
    return [{"role": "user", "content": user}, {"role": "assistant", "content": output}]


def from_speakleash(rec: Any) -> dict[str, Any]:
    """SpeakLeash instruction record (``instruct`` or ``instruction``, optional ``input``, ``output``): the user
    turn is the instruction, a blank line and the input; the output is the answer. ``source_name`` is kept."""
    conv: dict[str, Any] = {"messages": _instruction_turns(rec, ("instruct", "instruction"))}
    if isinstance(rec.get("source_name"), str):
        conv["source"] = rec["source_name"]
    return conv


def from_alpaca(rec: Any) -> dict[str, Any]:
    """Alpaca record (``instruction``, optional ``input``, ``output``, optional ``system``)."""
    messages = _instruction_turns(rec, ("instruction",))
    system = _text(rec, "system", required=False)
    if system:
        messages.insert(0, {"role": "system", "content": system})
    return {"messages": messages}


_SHAREGPT_ROLES = {"system": "system", "human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant"}


def from_sharegpt(rec: Any) -> dict[str, Any]:
    """ShareGPT record: ``conversations`` of ``{"from": "human"|"gpt"|"system", "value"}``."""
    turns = rec.get("conversations") if isinstance(rec, dict) else None
    if not isinstance(turns, list):
        raise BadRecord("no_messages", "no 'conversations' list")
    messages = []
    for i, t in enumerate(turns):
        role = _SHAREGPT_ROLES.get(t.get("from")) if isinstance(t, dict) else None
        if role is None or not isinstance(t.get("value"), str):
            raise BadRecord("unknown_role", f"turn {i} is not {{'from': human|gpt|system, 'value': text}}")
        messages.append({"role": role, "content": t["value"]})
    return {"messages": messages}


def detect_and_convert(rec: Any) -> dict[str, Any]:
    """Any supported record → a conversation, by its keys: ``messages`` (already one), ``conversations``
    (ShareGPT), ``instruct`` (SpeakLeash), ``instruction`` (Alpaca; SpeakLeash records that use it are the same)."""
    if not isinstance(rec, dict):
        raise BadRecord("not_an_object", f"expected a JSON object, got {type(rec).__name__}")
    if "messages" in rec:
        return rec
    if "conversations" in rec:
        return from_sharegpt(rec)
    if "instruct" in rec:
        return from_speakleash(rec)
    if "instruction" in rec:
        return from_alpaca(rec)
    raise BadRecord("unknown_format", f"cannot tell the format from the keys {', '.join(sorted(rec)) or '(none)'}")


CONVERTERS: dict[str, Callable[[Any], dict[str, Any]]] = {
    "auto": detect_and_convert, "speakleash": from_speakleash, "alpaca": from_alpaca,
    "sharegpt": from_sharegpt, "messages": lambda rec: rec,
}


def convert_file(src: str | Path, dst: str | Path, fmt: str = "auto", strict: bool = False) -> dict[str, Any]:
    """Convert every record of ``src`` to a conversation and write them to ``dst`` (JSONL, atomically).
    Returns ``{"written": n, "skipped": {reason: n}}``; with ``strict`` the first bad record is an error."""
    if fmt not in CONVERTERS:
        raise UserError(f"unknown input format '{fmt}' (valid: {', '.join(CONVERTERS)})")
    skipped: Counter = Counter()
    written = 0
    with atomic_open(dst, "w", encoding="utf-8") as f:
        for conv, _ in _read(src, CONVERTERS[fmt], strict, skipped):
            f.write(json.dumps(conv, ensure_ascii=False) + "\n")
            written += 1
    return {"written": written, "skipped": dict(skipped)}
