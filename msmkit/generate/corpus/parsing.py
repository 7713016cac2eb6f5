"""Answer schemas for the corpus list steps (chat models answer JSON validated by these)."""

from __future__ import annotations

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
