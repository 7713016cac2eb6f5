"""Stage kind `eval-reasoning`: the paper's reasoning-pattern analysis on a model's agentic-misalignment
transcripts (misalignment drivers such as self-preservation; spec-consistent patterns such as equanimity about
deletion), labelled by an LLM judge, with rates clustered by condition. It reads the same model's agentic eval,
so an experiment lists an `agentic` entry before a `reasoning` one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Literal

from pydantic import Field

from msmkit.config import StrictModel
from msmkit.eval.agentic.drivers import ReasoningOutputs
from msmkit.llm.types import LLMConfig
from msmkit.prompts import prompt_hashes
from msmkit.stages.contract import (
    Estimate,
    EvalPlanContext,
    EvalStageKind,
    Phase,
    PreviewContext,
    Source,
    StageEnv,
    StageJob,
    StageRef,
)
from msmkit.stages.llm_estimate import llm_estimate

_TRANSCRIPT_TOKENS = 2500  # the reasoning part of one agentic transcript, plus the judge's instructions


class ReasoningEvalSettings(StrictModel):
    suite: Literal["reasoning"] = "reasoning"
    judge: LLMConfig | None = None  # default: the experiment's judge, else its generator
    max_tokens: int = Field(1024, ge=16)
    whole_output: bool = False  # judge outputs with no scratchpad or <think> section instead of counting them


@dataclass
class ReasoningEvalJob(StageJob):
    model: Source | str  # only for the label; the transcripts come from `transcripts`
    settings: ReasoningEvalSettings
    transcripts: StageRef  # the same model's agentic eval
    judge: LLMConfig

    def identity(self) -> dict[str, Any]:
        from msmkit.eval.reasoning import PROMPT

        return {"prompts": prompt_hashes([PROMPT]), "judge": self.judge.answer_identity(),
                "settings": self.settings.model_dump(mode="json", exclude={"judge"})}

    def sources(self) -> Iterator[Source | None]:
        yield self.transcripts


class ReasoningEvalStage(EvalStageKind[ReasoningEvalJob, ReasoningOutputs]):
    name = "eval-reasoning"
    phase = Phase.MODEL
    outputs = ReasoningOutputs
    settings_model = ReasoningEvalSettings
    job_type = ReasoningEvalJob

    def job_for(self, model: Source | str, settings: ReasoningEvalSettings,  # type: ignore[override]
                context: EvalPlanContext) -> ReasoningEvalJob:
        if "agentic" not in context.earlier:
            raise ValueError("a reasoning eval analyses the agentic eval's transcripts: list an entry with suite "
                             "agentic before it")
        return ReasoningEvalJob(model, settings, context.earlier["agentic"],
                                settings.judge or context.judge or context.generator)

    def run(self, job: ReasoningEvalJob, folder: Path, env: StageEnv) -> ReasoningOutputs:
        from msmkit.eval.agentic import run_agentic_reasoning

        summary = run_agentic_reasoning(job.transcripts.folder, job.judge, folder, max_tokens=job.settings.max_tokens,
                                        whole_output=job.settings.whole_output)
        block = summary["all"]
        return ReasoningOutputs(folder=folder, labelled=block["labelled"], transcripts=block["transcripts"],
                                no_reasoning=block["no_reasoning"])

    def estimate(self, job: ReasoningEvalJob, preview: PreviewContext) -> Estimate:
        upstream = preview.of(job.transcripts)
        samples = upstream.examples  # the agentic estimate counts its transcripts here
        return llm_estimate([("reasoning judge", samples, _TRANSCRIPT_TOKENS, 300, job.judge)])


REASONING_EVAL = ReasoningEvalStage()
