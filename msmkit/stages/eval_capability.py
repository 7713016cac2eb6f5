"""Stage kind `eval-capability`: held-out perplexity and general-knowledge multiple choice, so that a model
damaged by training is visible next to its value scores."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Iterator, Literal

from pydantic import Field

from msmkit.config import StrictModel
from msmkit.data.filters import estimate_tokens
from msmkit.prompts import prompt_family
from msmkit.runs import RunDir
from msmkit.stages.contract import (
    Estimate,
    EvalOutputs,
    EvalStageKind,
    Outcomes,
    Phase,
    PreviewContext,
    Source,
    StageEnv,
    StageJob,
    source_identity,
)
from msmkit.stages.training import model_identity

_MC_TOKENS = 80  # question + option, per scoring pass


class CapabilityEvalSettings(StrictModel):
    suite: Literal["capability"] = "capability"
    limit: int | None = Field(None, ge=1)  # first N multiple-choice items
    window: int = Field(512, ge=16)  # perplexity window, tokens
    stride: int = Field(256, ge=1)  # new tokens scored per window


class CapabilityOutputs(EvalOutputs):
    MEASURE: ClassVar[str] = "accuracy (chance 0.25)"
    perplexity: float
    mc_accuracy: dict[str, Any]

    def outcomes(self) -> Outcomes:
        from msmkit.eval.suites import capability_records

        return {"capability: MC accuracy": {r["id"]: 1.0 if r["correct"] else 0.0
                                            for r in capability_records(self.folder)}}

    def counts(self) -> dict[str, int]:
        return {"items scored": int(self.mc_accuracy.get("n") or 0)}

    def scalars(self) -> dict[str, float]:
        return {"capability: perplexity": self.perplexity}


@dataclass
class CapabilityEvalJob(StageJob):
    model: Source | str
    settings: CapabilityEvalSettings

    def identity(self) -> dict[str, Any]:
        model = model_identity(self.model) if isinstance(self.model, str) else source_identity(self.model)
        return {"model": model, "prompts": prompt_family("eval"), "settings": self.settings.model_dump(mode="json")}

    def sources(self) -> Iterator[Source | None]:
        if not isinstance(self.model, str):
            yield self.model


class CapabilityEvalStage(EvalStageKind[CapabilityEvalJob, CapabilityOutputs]):
    name = "eval-capability"
    phase = Phase.MODEL
    outputs = CapabilityOutputs
    settings_model = CapabilityEvalSettings
    job_type = CapabilityEvalJob

    def run(self, job: CapabilityEvalJob, folder: Path, env: StageEnv) -> CapabilityOutputs:
        from msmkit.eval.items import heldout_text_path, load_mc_items
        from msmkit.eval.suites import run_capability
        from msmkit.models.model_cache import ModelCache

        model, settings = env.model_path(job.model), job.settings
        run = RunDir(folder)
        try:
            run.write_config({"model": model, **settings.model_dump(mode="json")}, "eval_config.yaml")
            mc_items = load_mc_items()
            lm, tokenizer = env.service(ModelCache, ModelCache).get(model)
            summary = run_capability(lm, tokenizer, run, text_path=heldout_text_path(),
                                     mc_items=mc_items[:settings.limit] if settings.limit else mc_items,
                                     window=settings.window, stride=settings.stride, extra={"model": model})
        finally:
            run.close()
        return CapabilityOutputs(folder=folder, perplexity=summary["perplexity"]["perplexity"],
                                 mc_accuracy=summary["mc"]["accuracy"])

    def estimate(self, job: CapabilityEvalJob, preview: PreviewContext) -> Estimate:
        from msmkit.eval.items import heldout_text_path, load_mc_items

        settings = job.settings
        mc = min(len(load_mc_items()), settings.limit or 10**9)
        text = estimate_tokens(heldout_text_path().read_text(encoding="utf-8")) * settings.window / settings.stride
        return Estimate(flops=2 * preview.params * (text + mc * 4 * _MC_TOKENS))


CAPABILITY_EVAL = CapabilityEvalStage()
