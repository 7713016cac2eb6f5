"""Pull a JSON value out of model text and validate it."""

from __future__ import annotations

import functools
import json
import re
from typing import Any

from pydantic import PydanticUserError, TypeAdapter, ValidationError

_FENCE = re.compile(r"```(?:json|JSON)?\s*\n(.*?)```", re.DOTALL)


def _balanced_spans(text: str) -> list[str]:
    """Candidate JSON object/array spans, scanning brackets outside of strings."""
    spans = []
    for start, char in enumerate(text):
        if char not in "{[":
            continue
        depth, in_string, escaped = 0, False, False
        for end in range(start, len(text)):
            current = text[end]
            if in_string:
                if escaped:
                    escaped = False
                elif current == "\\":
                    escaped = True
                elif current == '"':
                    in_string = False
            elif current == '"':
                in_string = True
            elif current in "{[":
                depth += 1
            elif current in "}]":
                depth -= 1
                if depth == 0:
                    spans.append(text[start : end + 1])
                    break
        if spans:
            break
    return spans


def extract_json(text: str) -> Any:
    """The first JSON value found in fenced blocks, the whole text, or a balanced span.

    Raises ValueError when none parses.
    """
    candidates = [block.strip() for block in _FENCE.findall(text)] + [text.strip()] + _balanced_spans(text)
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except json.JSONDecodeError:
            continue
    raise ValueError("no valid JSON object or array found in the answer")


def parse_structured(text: str, adapter: TypeAdapter[Any]) -> Any:
    """Extract and validate; raises ValueError with a message fit to send back to the model."""
    data = extract_json(text)
    try:
        return adapter.validate_python(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}" for err in exc.errors()[:8]
        )
        raise ValueError(f"the JSON does not match the required schema ({problems})") from None


def schema_text(schema: Any, adapter: TypeAdapter[Any]) -> str | None:
    """The JSON schema of `adapter` as canonical JSON text (kept per `schema`), or None when it has none."""
    try:
        return _cached_schema_text(schema)
    except TypeError:  # an unhashable schema object: work it out each time
        return _schema_text(adapter)


@functools.lru_cache(maxsize=256)
def _cached_schema_text(schema: Any) -> str | None:
    return _schema_text(schema if isinstance(schema, TypeAdapter) else TypeAdapter(schema))


def _schema_text(adapter: TypeAdapter[Any]) -> str | None:
    try:
        return json.dumps(adapter.json_schema(), sort_keys=True)
    except PydanticUserError:  # e.g. a custom type without a JSON schema
        return None
