"""What every corpus step shares: the generation context plus the corpus config, spec, prompts and flags."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from msmkit.generate.context import GenerationContext
from msmkit.generate.corpus.config import CorpusConfig
from msmkit.generate.corpus.prompting import CorpusPrompts
from msmkit.spec import ModelSpec


@dataclass(kw_only=True)
class CorpusContext(GenerationContext):
    config: CorpusConfig
    spec: ModelSpec
    prompts: CorpusPrompts
    flags: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # wall seconds per phase

    def sample_index(self, attempt: int) -> int:
        return self.config.seed * 1000 + attempt
