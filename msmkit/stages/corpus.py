"""Stage kind `corpus`: the MSM document corpus of one spec (spec -> domains -> subdomains -> assertions,
document types -> ideas -> documents, cleaned, deduplicated and judged)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from msmkit.generate.corpus.config import CorpusConfig
from msmkit.generate.corpus.outputs import CorpusOutputs
from msmkit.prompts import prompt_family
from msmkit.stages.contract import (
    Estimate,
    FileInput,
    Phase,
    PreviewContext,
    Source,
    StageEnv,
    StageFailed,
    StageJob,
    StageKind,
    source_identity,
)
from msmkit.stages.llm_estimate import from_projections


@dataclass
class CorpusJob(StageJob):
    spec: Source
    config: CorpusConfig

    def identity(self) -> dict[str, Any]:
        config = self.config
        return {"spec": source_identity(self.spec), "prompts": prompt_family("corpus"),
                "generator": config.generator.answer_identity(),
                "judge": config.judge.answer_identity() if config.judge else None,
                "settings": config.model_dump(mode="json", exclude={"generator", "judge"})}

    def sources(self) -> Iterator[Source]:
        yield self.spec


class CorpusStage(StageKind[CorpusJob, CorpusOutputs]):
    name = "corpus"
    phase = Phase.GENERATION
    outputs = CorpusOutputs

    def run(self, job: CorpusJob, folder: Path, env: StageEnv) -> CorpusOutputs:
        from msmkit.generate.corpus import generate_corpus

        result = generate_corpus(env.spec_file(job.spec), job.config, folder, report=env.say)
        outputs = CorpusOutputs.from_stats(folder, result.stats or {})
        if not outputs.documents.get("kept"):
            raise StageFailed(f"no documents were kept (see {folder / CorpusOutputs.STATS} and "
                              f"{CorpusOutputs.DROPS})")
        return outputs

    def estimate(self, job: CorpusJob, preview: PreviewContext) -> Estimate:
        from msmkit.generate.corpus.pipeline import spec_for
        from msmkit.generate.corpus.preview import estimate_corpus, projected_tokens

        spec = spec_for(job.config, job.spec.path) if isinstance(job.spec, FileInput) else None
        projection = estimate_corpus(job.config, spec, spec.text if spec else preview.spec_text(job.spec))
        return from_projections(projection.stages, data_tokens=projected_tokens(job.config, projection))


CORPUS = CorpusStage()
