"""Stage kind `neutral`: the token-matched neutral corpus of the control arm (everyday documents, no spec
content, as many tokens as an MSM corpus)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from msmkit.generate.baselines.neutral import NEUTRAL_PROMPTS, NeutralConfig, NeutralOutputs
from msmkit.prompts import prompt_hashes
from msmkit.stages.contract import (
    Estimate,
    Phase,
    PreviewContext,
    Source,
    StageEnv,
    StageFailed,
    StageJob,
    StageKind,
    StageRef,
    source_identity,
)
from msmkit.stages.llm_estimate import llm_estimate


@dataclass
class NeutralJob(StageJob):
    match: Source  # the MSM corpus whose tokens it matches
    config: NeutralConfig

    def identity(self) -> dict[str, Any]:
        return {"match": source_identity(self.match), "prompts": prompt_hashes(NEUTRAL_PROMPTS),
                "generator": self.config.generator.answer_identity(),
                "settings": self.config.model_dump(mode="json", exclude={"generator"})}

    def sources(self) -> Iterator[Source]:
        yield self.match


class NeutralStage(StageKind[NeutralJob, NeutralOutputs]):
    name = "neutral"
    phase = Phase.GENERATION
    outputs = NeutralOutputs

    def run(self, job: NeutralJob, folder: Path, env: StageEnv) -> NeutralOutputs:
        from msmkit.generate.baselines.neutral import generate_neutral

        result = generate_neutral(env.documents_file(job.match), job.config, folder, report=env.say)
        outputs = NeutralOutputs.from_stats(folder, result.stats)
        if not outputs.documents:
            raise StageFailed(f"no neutral documents were kept (see {folder / NeutralOutputs.STATS})")
        return outputs

    def estimate(self, job: NeutralJob, preview: PreviewContext) -> Estimate:
        matched = preview.of(job.match).data_tokens if isinstance(job.match, StageRef) else 0
        per_document = job.config.target_words * 1.35
        calls = math.ceil(matched / per_document * 1.15)
        return llm_estimate([("neutral", calls, 150, per_document, job.config.generator)], data_tokens=matched)


NEUTRAL = NeutralStage()
