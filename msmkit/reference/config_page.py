"""The configuration reference page: one section per config file kind, one table per (nested) section."""

from __future__ import annotations

import typing
from collections import deque

from pydantic import BaseModel

from msmkit.reference.markdown import anchor, cell, prose, table
from msmkit.reference.models import FieldDoc, fields_of, model_doc, type_text

INTRO = """# Configuration reference

Generated from msmkit's own pydantic models when the site is built, so it lists exactly the fields the code
accepts. Every section rejects unknown keys (a typo is an error that names the key and the closest valid
one). A field whose default is "its defaults" is a section: leave it out, or set only the keys you want to
change. Limits are checked when the file is read.
"""


def section_paths(root: type[BaseModel]) -> list[tuple[str, type[BaseModel]]]:
    """(dotted path, model) of every nested section of `root`, breadth first, each model once."""
    found: list[tuple[str, type[BaseModel]]] = [("", root)]
    seen = {root}
    queue = deque(found)
    while queue:
        path, model = queue.popleft()
        for field in fields_of(model):
            for nested in field.models:
                if nested in seen:
                    continue
                seen.add(nested)
                label = _child_path(path, field, nested)
                found.append((label, nested))
                queue.append((label, nested))
    return found


def _child_path(parent: str, field: FieldDoc, nested: type[BaseModel]) -> str:
    origin = typing.get_origin(field.annotation)
    arguments = [a for a in typing.get_args(field.annotation) if a is not type(None)]
    shape = ""
    if origin in (list, tuple) or any(typing.get_origin(a) in (list, tuple) for a in arguments):
        shape = "[]"
    elif origin is dict or any(typing.get_origin(a) is dict for a in arguments):
        shape = ".NAME"
    label = f"{parent}.{field.name}{shape}" if parent else f"{field.name}{shape}"
    return f"{label} ({nested.__name__})" if len(field.models) > 1 else label


def config_page(roots: list[tuple[str, str, type[BaseModel]]]) -> str:
    root_anchor = {model: anchor(title) for title, _, model in roots}
    parts = [INTRO, " · ".join(f"[{title}](#{root_anchor[model]})" for title, _, model in roots), ""]
    for title, where, root in roots:
        paths = [(path, model) for path, model in section_paths(root)
                 if path == "" or model not in root_anchor]  # another file kind's model links to its own section
        anchors = {model: (root_anchor[root] if path == "" else anchor(title, path)) for path, model in paths}
        links = {model: f"#{a}" for model, a in {**root_anchor, **anchors}.items()}
        parts.append(f"## {title} {{ #{root_anchor[root]} }}\n\n{prose(where)}\n")
        for path, model in paths:
            if path:
                parts.append(f"### `{path}` {{ #{anchors[model]} }}\n")
            doc = model_doc(model)
            if doc:
                parts.append(prose(doc) + "\n")
            parts.append(_fields_table(model, links) + "\n")
    return "\n".join(parts)


def _fields_table(model: type[BaseModel], links: dict[type, str]) -> str:
    def name_of(klass: type) -> str:
        return f"[{klass.__name__}]({links[klass]})" if klass in links else klass.__name__

    rows = []
    for field in fields_of(model):
        limits = f"({field.limits})" if field.limits else ""
        description = " ".join(part for part in (field.description, limits) if part)
        rows.append([f"`{field.name}`", cell(type_text(field.annotation, name_of)), cell(field.default_text),
                     cell(description)])
    return table(["key", "type", "default", "description"], rows)
