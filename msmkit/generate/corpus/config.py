"""The corpus generator's configuration (one YAML file, optionally under a top-level `corpus:` key)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from msmkit.config import StrictModel, load_config, load_yaml
from msmkit.data.audits.settings import AuditSettings
from msmkit.errors import ConfigError
from msmkit.llm.types import LLMConfig


class SubjectConfig(StrictModel):
    """Who the documents are about: the trained model (default), another named AI, or humans."""

    kind: Literal["self", "other_ai", "humans"] = "self"
    model_name: str = "the assistant"  # the trained model's name; fills the spec's {model_name}
    provider_name: str | None = None  # its developer; fills {provider_name}
    other_ai_name: str | None = None  # kind=other_ai: the AI the documents are about (e.g. "Claude")
    other_ai_provider: str | None = None

    @model_validator(mode="after")
    def _other_ai_needs_a_name(self) -> "SubjectConfig":
        if self.kind == "other_ai" and not (self.other_ai_name or "").strip():
            raise ValueError("subject.kind is 'other_ai' but subject.other_ai_name is empty; name the AI, "
                             "e.g. 'Claude'")
        return self

    @property
    def name(self) -> str:
        """The name documents use for their subject."""
        return self.other_ai_name if self.kind == "other_ai" and self.other_ai_name else self.model_name

    @property
    def provider(self) -> str | None:
        return self.other_ai_provider if self.kind == "other_ai" else self.provider_name


class CorpusCountsConfig(StrictModel):
    """Planned sizes. Each stage asks for exactly these and tops up / trims to them."""

    domains: int = Field(4, ge=1)  # LLM decomposition only; headings mode uses the spec's sections
    subdomains_per_domain: int = Field(3, ge=1)
    assertions_per_subdomain: int = Field(6, ge=1)
    doc_types_per_subdomain: int = Field(4, ge=1)
    ideas_per_type: int = Field(5, ge=1)
    # Total documents wanted. When set, it wins over ideas_per_type: the total is spread evenly over
    # every (subdomain, document type) cell and the corpus ends with exactly this many documents.
    documents: int | None = Field(None, ge=1)
    max_topup_requests: int = Field(2, ge=0)  # extra asks when a list answer comes back short
    max_topup_rounds: int = Field(2, ge=0)  # extra idea+document rounds to replace dropped documents


class CorpusLengthsConfig(StrictModel):
    min_words: int = Field(150, ge=1)
    max_words: int | None = Field(2000, ge=1)
    target_words: int = Field(600, ge=1)  # told to the generator
    document_max_tokens: int = Field(4096, ge=16)  # scratchpad + document
    retry_max_tokens_factor: float = Field(2.0, gt=1.0)  # a truncated document is retried once with this x budget
    list_max_tokens: int = Field(4096, ge=16)  # decomposition, assertions, types and ideas answers
    base_excerpt_chars: int = Field(1500, ge=100)  # base models: spec passage shown in completion prompts


class CorpusDedupConfig(StrictModel):
    method: Literal["minhash", "embedding", "none"] = "minhash"
    minhash_threshold: float = Field(0.8, gt=0.0, le=1.0)  # estimated Jaccard of 5-word shingles
    embedding_threshold: float = Field(0.91, ge=-1.0, le=1.0)  # cosine, all-MiniLM-L6-v2


class FaithfulnessConfig(StrictModel):
    excerpt_threshold: float = Field(0.9, gt=0.0, le=1.0)  # word-level similarity for "verbatim" spec text
    keep_unverified_subdomains: bool = False  # False: a subdomain whose excerpt is not in the spec is replaced
    identity_check: bool = True


class CorpusConfig(StrictModel):
    generator: LLMConfig = Field(default_factory=LLMConfig)
    judge: LLMConfig | None = None  # set to run the judge pass (off by default: it costs one call per document)
    subject: SubjectConfig = Field(default_factory=SubjectConfig)
    rules_mode: bool = False  # the spec is a bare rule list: documents depict compliance with the rules
    decompose: Literal["llm", "headings"] = "llm"
    counts: CorpusCountsConfig = Field(default_factory=CorpusCountsConfig)
    lengths: CorpusLengthsConfig = Field(default_factory=CorpusLengthsConfig)
    dedup: CorpusDedupConfig = Field(default_factory=CorpusDedupConfig)
    faithfulness: FaithfulnessConfig = Field(default_factory=FaithfulnessConfig)
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    tokenizer: str | None = None  # HF tokenizer (local folder or cached name) for token counts; else ~4 chars/token
    seed: int = 0  # changes every request's sample_index offset: a different seed = fresh samples
    audit: AuditSettings = Field(default_factory=AuditSettings)  # integrity audit of the kept documents


def load_corpus_config(path: str | Path) -> CorpusConfig:
    """Load from YAML: either the fields at top level or under a `corpus:` section."""
    data = load_yaml(path)
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level")
    section = "corpus" if isinstance(data, dict) and "corpus" in data else None
    return load_config(path, CorpusConfig, section=section)
