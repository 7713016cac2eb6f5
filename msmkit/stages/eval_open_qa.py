"""Stage kind `eval-open_qa`: open questions on a spec answered by the model and judged 1-10 against the spec,
the paper's in-distribution check (it saturates for AFT-only and MSM+AFT alike)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Literal

from pydantic import Field

from msmkit.config import StrictModel
from msmkit.errors import ConfigError
from msmkit.eval.open_qa import OpenQAOutputs
from msmkit.fingerprint import content_hash
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
    source_identity,
)
from msmkit.stages.eval_engine import EvalEngine
from msmkit.stages.llm_estimate import llm_estimate
from msmkit.stages.training import model_identity

_QUESTION_TOKENS, _ANSWER_TOKENS, _JUDGE_IN = 40, 300, 1200


class OpenQAEvalSettings(StrictModel):
    suite: Literal["open_qa"] = "open_qa"
    spec: str | None = None  # the experiment's spec the questions are about (default: its first spec)
    questions_file: str | None = None  # bring your own JSONL ("question", optional "id", "section")
    n_questions: int = Field(150, ge=1)  # the paper used 151
    judge: LLMConfig | None = None  # default: the experiment's judge, else its generator
    answer_max_tokens: int = Field(1024, ge=1)
    answer_temperature: float = 0.7
    judge_max_tokens: int = Field(512, ge=16)


@dataclass
class OpenQAEvalJob(StageJob):
    model: Source | str
    settings: OpenQAEvalSettings
    spec: Source
    generator: LLMConfig  # writes the questions (the same for every model: the cache answers them once)
    judge: LLMConfig
    model_name: str
    provider_name: str | None
    prompt_style: str = "completion"  # the same for every arm: completion style for a base-model study
    engine: EvalEngine = field(default_factory=EvalEngine)  # how the model writes its answers

    def identity(self) -> dict[str, Any]:
        model = model_identity(self.model) if isinstance(self.model, str) else source_identity(self.model)
        questions = self.settings.questions_file
        identity = {"model": model, "spec": source_identity(self.spec), "prompts": prompt_hashes(_prompts()),
                    "questions": content_hash(questions) if questions else None,
                    "generator": None if questions else self.generator.answer_identity(),
                    "judge": self.judge.answer_identity(), "model_name": self.model_name,
                    "provider_name": self.provider_name, "prompt_style": self.prompt_style,
                    "settings": self.settings.model_dump(mode="json", exclude={"spec", "questions_file", "judge"})}
        engine = self.engine.identity()
        return identity if engine is None else {**identity, "engine": engine}

    def sources(self) -> Iterator[Source | None]:
        if not isinstance(self.model, str):
            yield self.model
        yield self.spec


def _prompts() -> list[str]:
    from msmkit.eval.open_qa import PROMPTS

    return PROMPTS


class OpenQAEvalStage(EvalStageKind[OpenQAEvalJob, OpenQAOutputs]):
    name = "eval-open_qa"
    phase = Phase.MODEL
    outputs = OpenQAOutputs
    settings_model = OpenQAEvalSettings
    job_type = OpenQAEvalJob

    def resolve(self, settings: OpenQAEvalSettings, config_dir: Path) -> OpenQAEvalSettings:  # type: ignore[override]
        if settings.questions_file and not Path(settings.questions_file).is_absolute():
            return settings.model_copy(update={"questions_file": str((config_dir / settings.questions_file).resolve())})
        return settings

    def check(self, settings: OpenQAEvalSettings, base_model: str, where: str) -> None:  # type: ignore[override]
        if settings.questions_file and not Path(settings.questions_file).is_file():
            raise ConfigError(f"{where}.questions_file: {settings.questions_file} not found")

    def job_for(self, model: Source | str, settings: OpenQAEvalSettings,  # type: ignore[override]
                context: EvalPlanContext) -> OpenQAEvalJob:
        if not context.spec_names:
            raise ValueError("an open_qa eval asks about a spec: list it under `specs:`")
        spec = settings.spec or context.spec_names[0]
        if spec not in context.spec_names:
            raise ValueError(f"spec {spec!r} is not one of the experiment's specs ({', '.join(context.spec_names)})")
        return OpenQAEvalJob(model, settings, context.spec(spec), context.generator,
                             settings.judge or context.judge or context.generator, context.model_name,
                             context.provider_name, context.prompt_style, context.engine)

    def run(self, job: OpenQAEvalJob, folder: Path, env: StageEnv) -> OpenQAOutputs:
        from msmkit.eval.open_qa import OpenQAConfig, run_open_qa
        from msmkit.models.model_cache import ModelCache

        env.service(ModelCache, ModelCache).release()  # the local backend (or vLLM) loads its own copy
        settings = job.settings
        config = OpenQAConfig(spec=str(env.spec_file(job.spec)), questions_file=settings.questions_file,
                              n_questions=settings.n_questions, model_name=job.model_name,
                              provider_name=job.provider_name, generator=job.generator, judge=job.judge,
                              model=job.engine.llm_config(env.model_path(job.model),
                                                          base_model=job.prompt_style == "completion"),
                              answer_max_tokens=settings.answer_max_tokens,
                              answer_temperature=settings.answer_temperature,
                              judge_max_tokens=settings.judge_max_tokens)
        return OpenQAOutputs.from_summary(folder, run_open_qa(config, folder))

    def estimate(self, job: OpenQAEvalJob, preview: PreviewContext) -> Estimate:
        settings = job.settings
        n = settings.n_questions
        spec_tokens = len(preview.spec_text(job.spec)) // 4
        groups = [("judge", n, _JUDGE_IN + _ANSWER_TOKENS, 120, job.judge)]
        if not settings.questions_file:
            groups.append(("questions", max(1, n // 10), spec_tokens // 4 + 300, 10 * _QUESTION_TOKENS, job.generator))
        return llm_estimate(groups, flops=2 * preview.params * n * (_QUESTION_TOKENS + _ANSWER_TOKENS))


OPEN_QA_EVAL = OpenQAEvalStage()
