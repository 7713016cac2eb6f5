"""Small Markdown helpers for the generated pages: table cells and anchors that survive any text."""

from __future__ import annotations

import re

_ANCHOR_UNSAFE = re.compile(r"[^a-z0-9]+")


def anchor(*parts: str) -> str:
    """An id for `{ #id }` headings and `#id` links: lowercase letters, digits and hyphens."""
    return "-".join(filter(None, (_ANCHOR_UNSAFE.sub("-", part.lower()).strip("-") for part in parts)))


def cell(text: str) -> str:
    """Text for one table cell: one line, pipes escaped, and angle brackets shown (not read as HTML) outside
    code spans."""
    pieces = text.replace("\n", " ").split("`")
    for index in range(0, len(pieces), 2):  # even pieces are outside code spans
        pieces[index] = pieces[index].replace("<", "&lt;").replace(">", "&gt;")
    return "`".join(pieces).replace("|", "\\|")


def prose(text: str) -> str:
    """A paragraph of code-derived text (docstrings, help): angle brackets shown outside code spans."""
    pieces = text.split("`")
    for index in range(0, len(pieces), 2):
        pieces[index] = pieces[index].replace("<", "&lt;").replace(">", "&gt;")
    return "`".join(pieces)


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


_MARKDOWN_SPECIAL = ("\\", "`", "*", "_", "[", "]", "#", "|")


def literal(text: str) -> str:
    """Text shown exactly as written (error messages): every Markdown and HTML special character escaped."""
    for character in _MARKDOWN_SPECIAL:
        text = text.replace(character, "\\" + character)
    return text.replace("<", "&lt;").replace(">", "&gt;")
