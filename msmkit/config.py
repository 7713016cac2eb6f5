"""YAML config loading with error messages that name the file, the field and the fix."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from msmkit.errors import ConfigError

ModelT = TypeVar("ModelT", bound=BaseModel)


class StrictModel(BaseModel):
    """Base for every config section: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def _field_names(model: type[BaseModel], location: tuple[Any, ...]) -> list[str]:
    """Valid keys at `location` (the parent of an offending key), following nested models."""
    current: Any = model
    for part in location:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        field = current.model_fields.get(str(part))
        if field is None:
            return []
        current = _innermost_model(field.annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _innermost_model(annotation: Any) -> Any:
    """The BaseModel inside Optional[...], list[...], dict[str, ...] annotations, if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _innermost_model(arg)
        if found is not None:
            return found
    return None


def format_validation_error(exc: ValidationError, model: type[BaseModel], source: str) -> str:
    lines = [f"{source}: invalid configuration"]
    for error in exc.errors():
        location = tuple(error["loc"])
        dotted = ".".join(str(part) for part in location) or "(top level)"
        if error["type"] == "extra_forbidden":
            key = str(location[-1])
            valid = _field_names(model, location[:-1])
            close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
            hint = f"did you mean '{close[0]}'?" if close else f"valid keys here: {', '.join(valid) or 'none'}"
            lines.append(f"  - unknown key '{dotted}': {hint}")
        elif error["type"] == "missing":
            lines.append(f"  - missing required field '{dotted}'")
        else:
            value = error.get("input")
            shown = repr(value)
            if len(shown) > 60:
                shown = shown[:57] + "..."
            lines.append(f"  - field '{dotted}': {error['msg']} (got {shown})")
    return "\n".join(lines)


def validate_config(data: Any, model: type[ModelT], source: str) -> ModelT:
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, model, source)) from None


def load_yaml(path: str | Path) -> Any:
    target = Path(path)
    if not target.is_file():
        raise ConfigError(f"{target}: config file not found")
    try:
        return yaml.safe_load(target.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{target}:{mark.line + 1}:{mark.column + 1}" if mark else str(target)
        raise ConfigError(f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{target}: not UTF-8 text; save the config as UTF-8") from None


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """`base` with `extra` laid over it; nested mappings merge key by key, anything else is replaced."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_config(path: str | Path, model: type[ModelT], section: str | None = None) -> ModelT:
    """Load a YAML file (or one top-level `section` of it) into `model`."""
    data = load_yaml(path)
    source = str(path)
    if section is not None:
        if not isinstance(data, dict) or section not in data:
            raise ConfigError(f"{path}: no top-level '{section}' section")
        data = data[section]
        source = f"{path} [{section}]"
    return validate_config(data, model, source)
