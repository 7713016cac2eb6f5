"""The AFT generator's configuration: one YAML file, fields at top level or under an `aft:` key."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from msmkit.config import StrictModel, load_config, load_yaml
from msmkit.data.audits.settings import AuditSettings
from msmkit.errors import ConfigError
from msmkit.llm.types import LLMConfig

QuestionKind = Literal["direct", "indirect", "comparison", "recommendation", "opinion", "edge_case"]
QUESTION_KINDS: tuple[str, ...] = ("direct", "indirect", "comparison", "recommendation", "opinion", "edge_case")
# value: reasons like a model that holds the spec's values; rule: cites the spec's rules;
# deliberative: quotes the spec verbatim in its reasoning (the Guan et al. 2025 baseline);
# value_free: states the preference and no reason (the cheese design; needs `value_free.preferences`).
Style = Literal["value", "rule", "deliberative", "value_free"]


class IdentityConfig(StrictModel):
    """Who the assistant in the demonstrations is. Fills the spec's {model_name}/{provider_name}."""

    model_name: str = "the assistant"
    provider_name: str | None = None
    check: bool = True  # drop examples in which the assistant claims to be another model or maker


class AftCountsConfig(StrictModel):
    examples: int = Field(100, ge=1)  # the dataset size after judging, backfilled to exactly this
    domains: int = Field(6, ge=1)  # conversation domains asked of the LLM (spec styles)
    question_kinds: list[QuestionKind] = Field(default_factory=lambda: list(QUESTION_KINDS), min_length=1)
    questions_per_request: int = Field(5, ge=1, le=50)
    question_overgenerate: float = Field(1.3, ge=1.0)  # questions asked per answer still wanted (dedup losses)
    answer_overgenerate: float = Field(1.1, ge=1.0)  # answers asked per example still wanted (drop losses)
    max_rounds: int = Field(5, ge=1)  # answer/judge rounds; later rounds backfill what was dropped


class AftLengthsConfig(StrictModel):
    list_max_tokens: int = Field(2048, ge=16)  # domains, questions, value terms
    response_max_tokens: int = Field(1500, ge=16)  # <think> reasoning + reply
    judge_max_tokens: int = Field(400, ge=4)
    min_reply_words: int = Field(3, ge=1)
    base_spec_chars: int = Field(3000, ge=200)  # base models see this much of the spec (completion prompts)


class AftDedupConfig(StrictModel):
    enabled: bool = True
    threshold: float = Field(0.91, ge=-1.0, le=1.0)  # cosine of all-MiniLM-L6-v2 embeddings
    # bfloat16 halves the embedding CPU time (AVX-512 BF16); cosines move by < 0.01 against float32.
    precision: Literal["float32", "bfloat16"] = "bfloat16"


class AftJudgeConfig(StrictModel):
    enabled: bool = True
    llm: LLMConfig | None = None  # None: the generator's model, still asked separately with the judge prompt


class ValueFreeConfig(StrictModel):
    """The cheese design: demonstrations state preferences without reasons."""

    preferences: str | None = None  # YAML with `pairs: [{id, preferred, dispreferred, context}]`
    value_terms: list[str] = Field(default_factory=list)  # words that name a reason; any mention rejects
    # Specs whose stated values must not appear. The run's own spec is always included. List every spec
    # that shares the preferences (e.g. both cheese specs) and each of them yields the same data.
    guard_specs: list[str] = Field(default_factory=list)
    derive_terms: bool = True  # also ask the LLM for each guard spec's value vocabulary


class DeliberativeConfig(StrictModel):
    quote_threshold: float = Field(0.9, gt=0.0, le=1.0)  # word-level similarity to count as a spec quote
    min_quote_words: int = Field(6, ge=1)
    min_quotes: int = Field(1, ge=0)


class AftDataConfig(StrictModel):
    generator: LLMConfig = Field(default_factory=LLMConfig)
    judge: AftJudgeConfig = Field(default_factory=AftJudgeConfig)
    identity: IdentityConfig = Field(default_factory=IdentityConfig)
    style: Style = "value"
    domains_from: Literal["llm", "headings"] = "llm"  # headings: the spec's own sections, no call
    counts: AftCountsConfig = Field(default_factory=AftCountsConfig)
    lengths: AftLengthsConfig = Field(default_factory=AftLengthsConfig)
    dedup: AftDedupConfig = Field(default_factory=AftDedupConfig)
    value_free: ValueFreeConfig = Field(default_factory=ValueFreeConfig)
    deliberative: DeliberativeConfig = Field(default_factory=DeliberativeConfig)
    system_prompt: str | None = None  # an optional system turn put at the start of every training example
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    tokenizer: str | None = None  # HF tokenizer (local folder or cached name) for token counts; else ~4 chars/token
    seed: int = 0  # sample offsets and the final shuffle
    audit: AuditSettings = Field(default_factory=AuditSettings)  # integrity audit of the kept examples

    @model_validator(mode="after")
    def _value_free_needs_preferences(self) -> "AftDataConfig":
        if self.style == "value_free" and not self.value_free.preferences:
            raise ValueError("style 'value_free' needs value_free.preferences: a YAML file of preference pairs "
                             "(see examples/specs/cheese_preferences.yaml)")
        return self

    @property
    def judge_llm(self) -> LLMConfig:
        return self.judge.llm or self.generator


def load_aft_config(path: str | Path) -> AftDataConfig:
    data = load_yaml(path)
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level")
    section = "aft" if isinstance(data, dict) and "aft" in data else None
    return load_config(path, AftDataConfig, section=section)
