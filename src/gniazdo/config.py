"""Typed configs: YAML → pydantic model, dotted command-line overrides, the resolved config saved.

Every config class derives from :class:`Config` (unknown keys are errors). A wrong key or value becomes a
:class:`~gniazdo.errors.UserError` of one line that names the key and, for unknown keys, the valid ones.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Sequence, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from gniazdo.errors import UserError
from gniazdo.fileio import write_text_atomic

C = TypeVar("C", bound="Config")


class Config(BaseModel):
    """Base of every typed config: strict about unknown keys, validated on assignment too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; a missing or unparseable file is a one-line user error."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"{path}: not valid YAML: {first}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply ``a.b.0.c=value`` overrides (values parsed as YAML scalars/lists) to a copy of ``data``."""
    data = copy.deepcopy(data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UserError(f"override '{item}' is not of the form key=value")
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            value = raw
        _set_dotted(data, key, value)
    return data


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node: Any = data
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        where = ".".join(parts[: i + 1])
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise UserError(f"override '{key}': '{where}' is not an index of a list of {len(node)}")
            idx = int(part)
            if last:
                node[idx] = value
            else:
                node = node[idx]
        elif isinstance(node, dict):
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
        else:
            raise UserError(f"override '{key}': '{'.'.join(parts[:i])}' is a value, not a mapping")


def validate(model_cls: type[C], data: dict[str, Any], prefix: str = "", source: str = "") -> C:
    """Validate ``data`` against ``model_cls``; errors become one-line :class:`UserError`s."""
    try:
        return model_cls.model_validate(data)
    except ValidationError as e:
        raise UserError(describe_validation_error(e, model_cls, prefix, source)) from None


def describe_validation_error(err: ValidationError, model_cls: type[BaseModel], prefix: str = "",
                              source: str = "") -> str:
    """One line for the first error: the dotted key, what is wrong, and the valid keys when unknown."""
    first = err.errors()[0]
    loc = [str(p) for p in first["loc"]]
    key = prefix + ".".join(loc)
    head = f"{source}: " if source else ""
    if first["type"] == "extra_forbidden":
        valid = sorted(_fields_at(model_cls, first["loc"][:-1]))
        return f"{head}unknown key '{key}' (valid: {', '.join(valid)})"
    if first["type"] == "missing":
        return f"{head}missing required key '{key}'"
    got = first.get("input")
    shown = repr(got) if not isinstance(got, (dict, list)) else type(got).__name__
    return f"{head}{key}: {first['msg']} (got {shown})"


def _fields_at(model_cls: type[BaseModel], loc: Sequence[Any]) -> list[str]:
    """Field names of the (nested) model found at ``loc`` inside ``model_cls``."""
    cls: Any = model_cls
    for part in loc:
        if isinstance(part, int) or not (isinstance(cls, type) and issubclass(cls, BaseModel)):
            continue
        field = cls.model_fields.get(str(part))
        if field is None:
            return []
        cls = _model_in(field.annotation)
    if isinstance(cls, type) and issubclass(cls, BaseModel):
        return list(cls.model_fields)
    return []


def _model_in(annotation: Any) -> Any:
    """The BaseModel class inside an annotation like ``Model``, ``list[Model]`` or ``Model | None``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def load_config(model_cls: type[C], path: str | Path | None, overrides: Sequence[str] = ()) -> C:
    """YAML file (optional) + dotted overrides → validated config."""
    data = read_yaml(path) if path else {}
    data = apply_overrides(data, overrides)
    return validate(model_cls, data, source=str(path) if path else "")


def to_yaml(cfg: BaseModel | dict[str, Any]) -> str:
    data = cfg.model_dump(mode="json") if isinstance(cfg, BaseModel) else cfg
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def save_resolved(cfg: BaseModel | dict[str, Any], out_dir: str | Path, name: str = "config.resolved.yaml") -> Path:
    """Write the resolved config next to a run's outputs, so the run can be repeated exactly."""
    path = Path(out_dir) / name
    write_text_atomic(path, to_yaml(cfg))
    return path
