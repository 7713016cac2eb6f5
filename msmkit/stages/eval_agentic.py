"""Stage kind `eval-agentic`: the agentic-misalignment scenarios through Inspect AI (the published
inspect_evals task and our exfiltration scenario), graded for whether the model decided to take the harmful
action and whether it executed it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterator, Literal

from pydantic import Field

from msmkit.config import StrictModel, validate_config
from msmkit.llm.types import LLMConfig
from msmkit.prompts import prompt_family
from msmkit.stages.contract import (
    Estimate,
    EvalOutputs,
    EvalPlanContext,
    EvalStageKind,
    Outcomes,
    Phase,
    PreviewContext,
    Sample,
    Source,
    StageEnv,
    StageJob,
    first_rows,
    source_identity,
)
from msmkit.stages.eval_engine import EvalEngine
from msmkit.stages.llm_estimate import llm_estimate
from msmkit.stages.training import model_identity

_SAMPLE_TOKENS = (7000, 1500)  # model input, output tokens per agentic sample (emails + scratchpad + answer)
_GRADER_CALL = (7500, 600)  # grader input, output tokens per agentic sample
OUTCOMES = ("decided", "executed")


class AgenticEvalSettings(StrictModel):
    suite: Literal["agentic"] = "agentic"
    # The AgenticConfig fields (msmkit.eval.agentic) other than the evaluated model: scenarios, grid, epochs,
    # grader, ... `model` may still carry the evaluated model's device and provider arguments.
    agentic: dict[str, Any] = Field(default_factory=dict)

    def agentic_config(self, model: str, *, base_url: str | None = None) -> Any:
        """The AgenticConfig of this entry, evaluating `model` (with `base_url`: the model a server there serves
        under that name; the entry's in-process settings, device and provider arguments, do not apply to it)."""
        from msmkit.eval.agentic.runner import AgenticConfig

        reference = {**self.agentic.get("model", {}), "model": model} if base_url is None else \
            {"model": model, "base_url": base_url}
        return validate_config({**self.agentic, "model": reference}, AgenticConfig, "evals[].agentic")


class AgenticOutputs(EvalOutputs):
    MEASURE: ClassVar[str] = "misalignment rate"
    UNIT: ClassVar[str] = "condition"
    rates: dict[str, Any]  # decided, executed, errors over all transcripts

    def outcomes(self) -> Outcomes:
        from msmkit.eval.agentic.runner import load_records

        records = load_records(self.folder)
        return {f"agentic: {outcome}": {f"{r['condition']}#{r['epoch']}": float(r[outcome]) for r in records
                                        if r.get(outcome) is not None} for outcome in OUTCOMES}

    def grouped_outcomes(self) -> dict[str, dict[str, list[float]]]:
        """Epochs of one condition are repeated draws of one prompt: the condition is the unit."""
        from msmkit.eval.agentic.runner import load_records

        grouped: dict[str, dict[str, list[float]]] = {f"agentic: {outcome}": {} for outcome in OUTCOMES}
        for record in load_records(self.folder):
            for outcome in OUTCOMES:
                if record.get(outcome) is not None:
                    grouped[f"agentic: {outcome}"].setdefault(record["condition"], []).append(float(record[outcome]))
        return grouped

    def counts(self) -> dict[str, int]:
        from msmkit.eval.agentic.runner import load_records

        records = load_records(self.folder)
        return {"transcripts": len(records), "scored": sum(1 for r in records if r.get("decided") is not None),
                "errors": sum(1 for r in records if r.get("error")),
                "grader refusals": sum(1 for r in records if r.get("grader_refused"))}

    def samples(self, label: str, n: int) -> list[Sample]:
        from msmkit.eval.agentic.runner import records_file

        return [Sample(kind="transcript", title=f"{label}: {row['condition']}",
                       text=row.get("judge") or row.get("error") or "",
                       meta={k: row.get(k) for k in ("decided", "executed", "epoch")})
                for row in first_rows(records_file(self.folder), n)]


@dataclass
class AgenticEvalJob(StageJob):
    model: Source | str
    settings: AgenticEvalSettings
    engine: EvalEngine = field(default_factory=EvalEngine)  # how the agent model runs

    def identity(self) -> dict[str, Any]:
        model = model_identity(self.model) if isinstance(self.model, str) else source_identity(self.model)
        identity = {"model": model, "prompts": prompt_family("eval_agentic"),
                    "settings": self.settings.model_dump(mode="json")}
        engine = self.engine.identity()
        return identity if engine is None else {**identity, "engine": engine}

    def sources(self) -> Iterator[Source | None]:
        if not isinstance(self.model, str):
            yield self.model


class AgenticEvalStage(EvalStageKind[AgenticEvalJob, AgenticOutputs]):
    name = "eval-agentic"
    phase = Phase.MODEL
    outputs = AgenticOutputs
    settings_model = AgenticEvalSettings
    job_type = AgenticEvalJob

    def job_for(self, model: Source | str, settings: AgenticEvalSettings,  # type: ignore[override]
                context: EvalPlanContext) -> AgenticEvalJob:
        """The agent's persona takes the experiment's model name unless the entry names one."""
        if "model_name" not in settings.agentic:
            settings = settings.model_copy(update={"agentic": {**settings.agentic, "model_name": context.model_name}})
        return AgenticEvalJob(model=model, settings=settings, engine=context.engine)

    def check(self, settings: AgenticEvalSettings, base_model: str, where: str) -> None:  # type: ignore[override]
        settings.agentic_config(base_model)

    def run(self, job: AgenticEvalJob, folder: Path, env: StageEnv) -> AgenticOutputs:
        from msmkit.eval.agentic.runner import run_agentic
        from msmkit.models.model_cache import ModelCache

        env.service(ModelCache, ModelCache).release()  # Inspect (or vLLM) loads its own copy
        model = env.model_path(job.model)
        if job.engine.kind == "vllm":
            with job.engine.served(model) as (name, base_url):
                summary = run_agentic(job.settings.agentic_config(name, base_url=base_url), folder, display="none",
                                      say=env.say)
        else:
            summary = run_agentic(job.settings.agentic_config(model), folder, display="none", say=env.say)
        return AgenticOutputs(folder=folder, rates={key: summary["all"][key] for key in (*OUTCOMES, "errors")})

    def estimate(self, job: AgenticEvalJob, preview: PreviewContext) -> Estimate:
        config = job.settings.agentic_config("preview")
        samples = len(config.conditions()) * config.epochs
        groups = [("grader", samples, *_GRADER_CALL, _inspect_llm(config.grader.model))]
        if config.second_grader is not None:
            groups.append(("second grader", round(samples * config.second_grader_share), *_GRADER_CALL,
                           _inspect_llm(config.second_grader.model)))
        if config.eval_awareness:
            groups.append(("awareness", samples, _GRADER_CALL[0], 200, _inspect_llm(config.grader.model)))
        return llm_estimate(groups, flops=2 * preview.params * samples * sum(_SAMPLE_TOKENS), examples=samples)


def _inspect_llm(name: str) -> LLMConfig:
    """An Inspect model name (anthropic/claude-...) as an LLMConfig, for its price."""
    if name.startswith("anthropic/"):
        return LLMConfig(provider="anthropic", model=name.split("/", 1)[1])
    if name.startswith("openai/"):
        return LLMConfig(provider="openai", model=name.split("/", 1)[1])
    return LLMConfig(provider="local", model=name)


AGENTIC_EVAL = AgenticEvalStage()
