"""Stage kind `variant`: a spec derived from another one for the paper's spec comparisons (rules only,
+ sub-rules, + value explanations, general guidance, about another AI or about humans)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Iterator

from msmkit.data.filters import estimate_tokens
from msmkit.llm.types import LLMConfig
from msmkit.prompts import prompt_family
from msmkit.runs import RunDir
from msmkit.spec.variants import VariantKind, VariantOptions
from msmkit.stages.contract import (
    Estimate,
    Phase,
    PreviewContext,
    Source,
    SpecFile,
    StageEnv,
    StageJob,
    StageKind,
    source_identity,
)
from msmkit.stages.llm_estimate import llm_estimate

# How much longer (or shorter) each kind makes a spec, for previews of variants not built yet.
_GROWTH = {VariantKind.EXPLAIN_VALUES: 3.0, VariantKind.ADD_SUBRULES: 3.0, VariantKind.RULES_ONLY: 0.3}


class VariantOutputs(SpecFile):
    SPEC: ClassVar[str] = "spec.md"

    variant_notes: list[str] = []

    @property
    def spec_file(self) -> Path:
        return self.folder / self.SPEC


@dataclass
class VariantJob(StageJob):
    source: Source
    variant: VariantKind
    options: VariantOptions
    generator: LLMConfig | None  # the LLM kinds only
    model_name: str
    provider_name: str | None

    def identity(self) -> dict[str, Any]:
        return {"source": source_identity(self.source), "variant": self.variant.value,
                "options": self.options.model_dump(mode="json"), "model_name": self.model_name,
                "provider_name": self.provider_name,
                "generator": self.generator.answer_identity() if self.generator else None,
                "prompts": prompt_family("spec") if self.generator else {}}

    def sources(self) -> Iterator[Source]:
        yield self.source


class VariantStage(StageKind[VariantJob, VariantOutputs]):
    name = "variant"
    phase = Phase.GENERATION
    outputs = VariantOutputs

    def run(self, job: VariantJob, folder: Path, env: StageEnv) -> VariantOutputs:
        from msmkit.llm.client import LLMClient
        from msmkit.spec import load_spec
        from msmkit.spec.variants import make_llm_variant, make_variant, write_variant

        spec = load_spec(env.spec_file(job.source), model_name=job.model_name, provider_name=job.provider_name,
                         warn=False)
        if job.generator is not None:
            run = RunDir(folder)

            async def write() -> Any:
                async with LLMClient(job.generator, run=run, stage="variant") as client:
                    return await make_llm_variant(spec, job.variant, client)

            variant = asyncio.run(write())
            run.close()
        else:
            variant = make_variant(spec, job.variant, job.options)
        write_variant(variant, folder / VariantOutputs.SPEC)
        for note in variant.notes:
            env.say(f"variant note: {note}")
        return VariantOutputs(folder=folder, variant_notes=list(variant.notes))

    def estimate(self, job: VariantJob, preview: PreviewContext) -> Estimate:
        source = preview.spec_text(job.source)
        growth = _GROWTH.get(job.variant, 1.0)
        text = source[:int(len(source) * growth)] if growth <= 1 else source * int(growth)
        if job.generator is None:
            return Estimate(spec_text=text)
        tokens = estimate_tokens(source)
        return llm_estimate([("variant", 1, tokens + 400, tokens * growth, job.generator)], spec_text=text)


VARIANT = VariantStage()
