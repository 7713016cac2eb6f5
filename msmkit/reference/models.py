"""Config field reference, read from the pydantic models themselves: name, type, default, limits, description.

Descriptions come from `Field(description=...)` when given, else from the comments beside or above the
field in the source (the project's style), so the reference says what the code says.
"""

from __future__ import annotations

import ast
import collections.abc
import enum
import inspect
import io
import json
import textwrap
import tokenize
import types
import typing
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined


@dataclass(frozen=True)
class FieldDoc:
    name: str
    type_text: str
    default_text: str
    limits: str
    description: str
    annotation: Any
    models: tuple[type[BaseModel], ...]  # the nested sections' models, when the field holds some


def model_doc(model: type[BaseModel]) -> str:
    """The class docstring, cleaned; empty when the class has none of its own."""
    doc = model.__dict__.get("__doc__")
    return inspect.cleandoc(doc) if doc else ""


def fields_of(model: type[BaseModel]) -> list[FieldDoc]:
    return [_field_doc(model, name, info) for name, info in model.model_fields.items()]


def nested_models(annotation: Any) -> tuple[type[BaseModel], ...]:
    """The pydantic models a field holds directly or inside Optional / Union / list / dict / tuple."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return (annotation,)
    found: list[type[BaseModel]] = []
    for argument in typing.get_args(annotation):
        found += [model for model in nested_models(argument) if model not in found]
    return tuple(found)


def _field_doc(model: type[BaseModel], name: str, info: FieldInfo) -> FieldDoc:
    description = info.description or field_comments(_defining_class(model, name)).get(name, "")
    return FieldDoc(name=name, type_text=type_text(info.annotation), default_text=default_text(info),
                    limits=limits_text(info), description=description, annotation=info.annotation,
                    models=nested_models(info.annotation))


def _defining_class(model: type[BaseModel], name: str) -> type:
    """The class in the MRO whose own body declares `name` (AftConfig inherits most fields of StageConfig)."""
    for klass in model.__mro__:
        if name in klass.__dict__.get("__annotations__", {}):
            return klass
    return model


def type_text(annotation: Any, name_of: Callable[[type], str] = lambda klass: klass.__name__) -> str:
    """A reader's name for a type: `int`, `"llm" or "headings"`, `list of str`, `LLMConfig or null`.
    `name_of` names classes (the config page turns models into links)."""
    def inner(argument: Any) -> str:
        return type_text(argument, name_of)

    if annotation is None or annotation is type(None):
        return "null"
    if annotation is Any:
        return "any"
    origin, arguments = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return " or ".join(json.dumps(value.value if isinstance(value, enum.Enum) else value) for value in arguments)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(inner(argument) for argument in arguments)
    if origin is typing.Annotated:
        return inner(arguments[0])
    if origin in (list, set, frozenset, collections.abc.Sequence):
        return f"list of {inner(arguments[0])}" if arguments else "list"
    if origin is tuple:
        if len(arguments) == 2 and arguments[1] is Ellipsis:
            return f"list of {inner(arguments[0])}"
        return "[" + ", ".join(inner(argument) for argument in arguments) + "]"
    if origin in (dict, collections.abc.Mapping):
        return f"mapping of {inner(arguments[0])} to {inner(arguments[1])}" if arguments else "mapping"
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return " or ".join(json.dumps(member.value) for member in annotation)
    if isinstance(annotation, type):
        return name_of(annotation)
    return str(annotation).replace("typing.", "")


def default_text(info: FieldInfo) -> str:
    if info.default is PydanticUndefined and info.default_factory is None:
        return "required"
    value = info.default_factory() if info.default_factory is not None else info.default  # type: ignore[call-arg]
    if isinstance(value, BaseModel) and not _plain(value):
        return "its defaults"
    return _yaml_flow(_plain(value))


def _plain(value: Any) -> Any:
    """A default as the YAML a user would write: models shown by the values they change."""
    if isinstance(value, BaseModel):
        changed = value.model_dump(exclude_defaults=True)
        # a one-value Literal field (a union's discriminator, e.g. `suite`) says which model this is
        tags = {name: getattr(value, name) for name, info in type(value).model_fields.items()
                if typing.get_origin(info.annotation) is typing.Literal and len(typing.get_args(info.annotation)) == 1}
        return {key: _plain(item) for key, item in {**tags, **changed}.items()}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    return value


def _yaml_flow(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {_yaml_flow(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_yaml_flow(item) for item in value) + "]"
    if isinstance(value, str):
        return json.dumps(value) if value == "" or any(c in value for c in ":#{}[],\"'") else value
    return str(value)


_LIMIT_WORDS = (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))


def limits_text(info: FieldInfo) -> str:
    """Bounds, lengths and patterns the field is validated against."""
    parts = []
    for constraint in info.metadata:
        for attribute, symbol in _LIMIT_WORDS:
            bound = getattr(constraint, attribute, None)
            if bound is not None:
                parts.append(f"{symbol} {bound}")
        if getattr(constraint, "min_length", None) is not None:
            parts.append(f"at least {constraint.min_length} item(s)")
        if getattr(constraint, "max_length", None) is not None:
            parts.append(f"at most {constraint.max_length} item(s)")
        if getattr(constraint, "pattern", None):
            parts.append(f"matches {constraint.pattern}")
    return ", ".join(parts)


@lru_cache(maxsize=None)
def field_comments(klass: type) -> dict[str, str]:
    """Field name -> the comments above its declaration and on its lines, joined into one text."""
    try:
        source = textwrap.dedent(inspect.getsource(klass))
    except (OSError, TypeError):
        return {}
    lines = source.splitlines()
    comments: dict[int, str] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            comments[token.start[0]] = token.string.lstrip("#").strip()
    tree = ast.parse(source).body[0]
    found: dict[str, str] = {}
    for statement in getattr(tree, "body", []):
        if not (isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name)):
            continue
        above, line = [], statement.lineno - 1
        while line >= 1 and lines[line - 1].strip().startswith("#"):
            above.insert(0, comments.get(line, ""))
            line -= 1
        inline = [comments[n] for n in range(statement.lineno, (statement.end_lineno or statement.lineno) + 1)
                  if n in comments]
        text = " ".join(part for part in above + inline if part)
        if text:
            found[statement.target.id] = text
    return found
