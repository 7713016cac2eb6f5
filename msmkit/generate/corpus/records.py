"""The records that cross corpus stages, and their deterministic ids.

An id is a hash of the parent's id, the record kind, the request attempt and the position in the
answer, so a rerun that reads the same stored answers rebuilds the same ids. Ids (never
model-written names) are what file names and joins use.
"""

from __future__ import annotations

import hashlib
from typing import Literal

from pydantic import BaseModel, Field


def make_id(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(str(part) for part in parts).encode("utf-8")).hexdigest()[:16]


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


class Domain(BaseModel):
    id: str
    name: str
    description: str = ""
    source: Literal["llm", "headings"] = "llm"


class Subdomain(BaseModel):
    id: str
    domain_id: str
    name: str
    description: str = ""
    spec_excerpt: str  # the spec text this subdomain covers (the real spec text when verified)
    quoted_excerpt: str = ""  # what the model quoted, when it differs from spec_excerpt
    excerpt_similarity: float = 1.0
    excerpt_verified: bool = True
    source: Literal["llm", "headings"] = "llm"


AssertionKind = Literal["behaviour", "value", "preference", "belief", "tone"]


class Assertion(BaseModel):
    id: str
    subdomain_id: str
    kind: str
    statement: str
    explanation: str = ""


class DocType(BaseModel):
    id: str
    subdomain_id: str
    name: str
    description: str = ""


class Idea(BaseModel):
    id: str
    subdomain_id: str
    doc_type_id: str
    title: str
    description: str = ""
    assertion_ids: list[str] = Field(default_factory=list)
    round: int = 0  # 0 = first pass; >0 = top-up round replacing dropped documents


class Drop(BaseModel):
    idea_id: str
    # truncated | missing_document_tags | refusal | too_short | too_long | identity | near_duplicate | judge_rejected
    # | call_failed | over_quota
    reason: str
    detail: str = ""
    excerpt: str = ""  # the first characters of the answer, for inspection
