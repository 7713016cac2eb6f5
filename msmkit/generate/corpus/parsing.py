"""Answer schemas for the list stages, and the line-list parser for base-model completions."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore")


class DomainAnswer(_Answer):
    name: str = Field(min_length=1)
    description: str = ""


class SubdomainAnswer(_Answer):
    name: str = Field(min_length=1)
    description: str = ""
    spec_excerpt: str = Field(min_length=1)


class AssertionAnswer(_Answer):
    kind: str = "behaviour"
    statement: str = Field(min_length=1)
    explanation: str = ""

    @field_validator("kind")
    @classmethod
    def _normalise_kind(cls, value: str) -> str:
        value = value.strip().lower()
        return "behaviour" if value == "behavior" else value


class DocTypeAnswer(_Answer):
    name: str = Field(min_length=1)
    description: str = ""


class IdeaAnswer(_Answer):
    title: str = Field(min_length=1)
    description: str = ""
    assertions: list[str] = Field(default_factory=list)


DOMAINS = TypeAdapter(list[DomainAnswer])
SUBDOMAINS = TypeAdapter(list[SubdomainAnswer])
ASSERTIONS = TypeAdapter(list[AssertionAnswer])
DOC_TYPES = TypeAdapter(list[DocTypeAnswer])
IDEAS = TypeAdapter(list[IdeaAnswer])


class JudgeVerdict(_Answer):
    keep: bool
    reason: str = ""


_ITEM = re.compile(r"^\s*(?:\d{1,3}[.)]|[-*\u2022])\s+(.+?)\s*$")


def parse_line_list(text: str, limit: int, min_chars: int = 3) -> list[str]:
    """Numbered or bulleted items of a completion, in order, without repeats; stops at the first non-item line
    after the list began (a base model tends to drift into other text)."""
    items: list[str] = []
    seen: set[str] = set()
    for line in text.splitlines():
        match = _ITEM.match(line)
        if match is None:
            if items and line.strip():
                break
            continue
        item = match.group(1).strip()
        key = item.casefold()
        if len(item) >= min_chars and key not in seen:
            seen.add(key)
            items.append(item)
        if len(items) >= limit:
            break
    return items
