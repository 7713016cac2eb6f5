"""The audits' settings: which references to compare with and the thresholds of each check."""

from __future__ import annotations

import math

from pydantic import Field

from msmkit.config import StrictModel
from msmkit.eval.items import BUILTIN_VALUE_SETS


class AuditSettings(StrictModel):
    """Defaults are set so that the test server's corpora raise no flag and a one-shot copy, a rehearsed eval item
    or a name in 3+ documents does (see tests/test_audits.py)."""

    enabled: bool = True
    # eval item sets to check contamination against: built-in names or JSONL files with a `question` per line
    eval_items: list[str] = Field(default_factory=lambda: list(BUILTIN_VALUE_SETS))
    scenarios: bool = True  # the agentic eval scenarios' people and companies
    embedding: bool = True  # all-MiniLM-L6-v2 similarity with the eval items (n-gram overlap is always checked)

    prompt_ngram: int = Field(6, ge=2)  # word n-grams shared with a prompt template ...
    prompt_min_words: int = Field(8, ge=2)  # ... in a run at least this long count as a copy
    eval_ngram: int = Field(8, ge=3)  # a run of this many words of an eval item's question or option
    embedding_threshold: float = Field(0.55, gt=0.0, le=1.0)  # cosine with an item, its content words kept
    embedding_alone_threshold: float = Field(0.8, gt=0.0, le=1.0)  # cosine with an item, whatever the words
    spec_margin: float = Field(0.05, ge=0.0, le=1.0)  # a passage must be this much closer to an item than the spec
    window_sentences: int = Field(2, ge=1)  # passages of 1 to this many sentences are compared with the items

    min_documents: int = Field(3, ge=2)  # a name, opening, date or place recurring in this many rows ...
    min_share: float = Field(0.002, ge=0.0, le=1.0)  # ... and in at least this share of them is flagged
    opening_words: int = Field(8, ge=3)  # rows whose first words agree this far share an opening
    spec_quote_words: int = Field(12, ge=4)  # a row quotes the spec when it repeats this many consecutive words
    spec_quote_max_share: float | None = Field(0.25, ge=0.0, le=1.0)  # flag the set above this; None: report only
    year_max_share: float = Field(0.3, gt=0.0, le=1.0)  # one year named in more rows than this share is a cluster
    top: int = Field(10, ge=1)  # offenders listed per fingerprint

    def threshold(self, rows: int) -> int:
        """How many rows a recurring name, opening, date or place needs to be flagged in a set of `rows`."""
        return max(self.min_documents, math.ceil(self.min_share * rows - 1e-9))
