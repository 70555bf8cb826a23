"""Live reconfiguration: a YAML file changes allowed settings while the run goes on.

The file (``live.file``, default ``<out>/live.yaml``) holds overrides *relative to the config the run started
with*, nested (``optim: {lr: 1.0e-4}``) or dotted (``optim.lr: 1.0e-4``). It is the single source of truth:
removing a key reverts that field to its start value; an empty or deleted file reverts them all. Only fields
in ``LIVE_FIELDS`` may change. Other fields, unknown keys, invalid values and unparseable YAML are refused
with a reason and the run goes on as it was: a typo must not end a week-long run. A refused invalid value
leaves the field at the value it had.

``command: stop`` / ``command: checkpoint_now`` (or a list of them) are one-shot: a command is taken when
the file changes and not again until it changes again - touch or rewrite the file to repeat a command. A
command already in the file when the run starts is ignored (a stale ``stop`` must not end a resumed run);
its overrides do apply. ``kill -USR1 <pid>`` also asks for a checkpoint (:func:`install_sigusr1`).

The file is re-read only when its mtime, size or inode changed, so polling costs one ``stat()``. Rank 0 calls
``poll()`` every ``live.interval`` steps and broadcasts the returned :class:`LiveUpdate` (plain, picklable
data); the other ranks apply it with :func:`apply_update` and so stay identical.
"""

from __future__ import annotations

import copy
import os
import signal
import threading
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import yaml
from pydantic import BaseModel, ValidationError

from gniazdo.config import describe_validation_error
from gniazdo.train.config import LIVE_FIELDS

COMMANDS = ("stop", "checkpoint_now")


@dataclass
class LiveUpdate:
    changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # dotted key -> (old, new)
    commands: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)  # dotted key (or the file, or "command") -> reason

    def messages(self) -> list[str]:
        out = [f"live: {k} {_fmt(old)} -> {_fmt(new)}" for k, (old, new) in self.changes.items()]
        out += [f"live: command {c}" for c in self.commands]
        out += [f"live: refused {k}: {why}" for k, why in self.refused.items()]
        return out


def _fmt(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def live_path(config: Any) -> Path:
    """The live file of a TrainConfig: ``live.file``, or ``<out>/live.yaml``."""
    return Path(config.live.file) if config.live.file else Path(config.out) / "live.yaml"


class LiveControl:
    def __init__(self, path: str | Path, config: BaseModel, allowed: frozenset[str] = LIVE_FIELDS):
        self.path = Path(path)
        self.allowed = frozenset(allowed)
        self._start = config
        self._config = config
        self._accepted: dict[str, Any] = {}  # overrides in effect: dotted key -> value from the file
        self._stamp: tuple[int, int, int] | None = None  # of the version last read (None: no file)
        self._stale = _stamp(self.path)  # commands in this version of the file predate the run
        self._requests: list[str] = []

    @property
    def config(self) -> BaseModel:
        return self._config

    def request(self, command: str) -> None:
        """Queue a command for the next poll(); safe to call from a signal handler."""
        if command not in COMMANDS:
            raise ValueError(f"unknown live command '{command}' (valid: {', '.join(COMMANDS)})")
        self._requests.append(command)

    def poll(self) -> LiveUpdate | None:
        # swap, not clear: a signal arriving meanwhile lands in one list or the other, never lost
        requests, self._requests = self._requests, []
        update = LiveUpdate()
        stamp = _stamp(self.path)
        if stamp != self._stamp:
            self._stamp = stamp
            self._reread(stamp, update)
        for command in requests:
            if command not in update.commands:
                update.commands.append(command)
        return update if (update.changes or update.commands or update.refused) else None

    def _reread(self, stamp: tuple[int, int, int] | None, update: LiveUpdate) -> None:
        data: Any = {}
        if stamp is not None:
            try:
                data = yaml.safe_load(self.path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
                what = "cannot read" if isinstance(e, OSError) else "not valid YAML"
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                update.refused[str(self.path)] = f"{what}, nothing changed: {first}"
                return
            data = {} if data is None else data
            if not isinstance(data, dict):
                update.refused[str(self.path)] = f"expected a mapping, got {type(data).__name__}; nothing changed"
                return
        data = {str(k): v for k, v in data.items()}
        self._take_commands(data.pop("command", None), stamp, update)
        cls = type(self._start)
        wanted: dict[str, Any] = {}
        for key, value in _flatten(data, cls):
            if _kind(cls, key) is None:
                update.refused[key] = "unknown key"
            elif key not in self.allowed:
                update.refused[key] = "cannot change while training"
            else:
                wanted[key] = value
        self._apply(wanted, update)

    def _take_commands(self, raw: Any, stamp: Any, update: LiveUpdate) -> None:
        if raw is None:
            return
        if stamp == self._stale:
            update.refused["command"] = "ignored: already in the file when the run started; touch the file to run it"
            return
        for command in raw if isinstance(raw, list) else [raw]:
            if command in COMMANDS:
                if command not in update.commands:
                    update.commands.append(command)
            else:
                update.refused["command"] = f"unknown command {command!r} (valid: {', '.join(COMMANDS)})"

    def _apply(self, wanted: dict[str, Any], update: LiveUpdate) -> None:
        # rebuilt from the start config each time, so a key left out of the file reverts
        cls, base = type(self._start), self._start.model_dump()
        accepted: dict[str, Any] = {}
        config = self._start
        for key, value in wanted.items():
            tries = [value] + ([self._accepted[key]] if key in self._accepted else [])  # else keep the old
            for i, candidate in enumerate(tries):
                try:
                    config = _build(cls, base, {**accepted, key: candidate})
                except ValidationError as e:
                    if i == 0:
                        reason = describe_validation_error(e, cls)  # "key: what is wrong (got ...)"
                        update.refused[key] = reason.removeprefix(f"{key}: ").removeprefix(": ")
                    continue
                accepted[key] = candidate
                break
        for key in list(accepted) + [k for k in self._accepted if k not in accepted]:
            old, new = _get(self._config, key), _get(config, key)
            if old != new:
                update.changes[key] = (old, new)
        self._accepted, self._config = accepted, config


def apply_update(config: BaseModel, update: LiveUpdate) -> BaseModel:
    """The config with the update's changes applied (for ranks that receive rank 0's update); pure."""
    if not update.changes:
        return config
    return _build(type(config), config.model_dump(), {k: new for k, (_, new) in update.changes.items()})


def install_sigusr1(live: LiveControl) -> bool:
    """Make SIGUSR1 queue ``checkpoint_now``; False (nothing done) off the main thread or without SIGUSR1."""
    if not hasattr(signal, "SIGUSR1") or threading.current_thread() is not threading.main_thread():
        return False
    signal.signal(signal.SIGUSR1, lambda signum, frame: live.request("checkpoint_now"))
    return True


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)  # inode: an editor saving by rename is a change too


def _flatten(data: dict[str, Any], root: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Dotted (key, value) pairs; a mapping is descended where the key names a section or a dict field
    (so ``model: {overrides: {dim: 64}}`` is refused as ``model.overrides.dim``)."""
    for k, v in data.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and _kind(root, key) in ("section", "dict"):
            yield from _flatten(v, root, key + ".")
        else:
            yield key, v


def _kind(cls: type[BaseModel], key: str) -> str | None:
    """'section' (a nested config), 'dict' (a dict field), 'field' (a value, or a key inside a dict field)
    or None (unknown key)."""
    node: Any = cls
    parts = key.split(".")
    for i, part in enumerate(parts):
        info = node.model_fields.get(part)
        if info is None:
            return None
        sub = _model_in(info.annotation)
        if sub is None:
            rest = parts[i + 1:]
            dict_like = info.annotation is dict or typing.get_origin(info.annotation) is dict
            if not rest:
                return "dict" if dict_like else "field"
            return "field" if dict_like else None
        node = sub
    return "section"


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _get(config: Any, key: str) -> Any:
    for part in key.split("."):
        config = getattr(config, part)
    return config


def _build(cls: type[BaseModel], base: dict[str, Any], overrides: dict[str, Any]) -> BaseModel:
    data = copy.deepcopy(base)
    for key, value in overrides.items():
        node = data
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = copy.deepcopy(value)
    return cls.model_validate(data)
