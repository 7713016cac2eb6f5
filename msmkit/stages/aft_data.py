"""Stage kind `aftdata`: AFT chat data from one spec, with and without chain of thought, or one of the
paper's baselines built the same way: deliberative alignment (reasoning quotes the spec) and anti-spec
(data from the inverted spec)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Literal

from msmkit.data.filters import estimate_tokens
from msmkit.fingerprint import content_hash
from msmkit.generate.aft.config import AftDataConfig
from msmkit.generate.aft.outputs import AftDataOutputs
from msmkit.prompts import prompt_family
from msmkit.stages.contract import (
    Estimate,
    Phase,
    PreviewContext,
    Source,
    StageEnv,
    StageFailed,
    StageJob,
    StageKind,
    source_identity,
)
from msmkit.stages.llm_estimate import CallGroup, llm_estimate

AftDataMode = Literal["aft", "deliberative", "anti"]
_AFT_PROMPT_TOKENS = 60  # a user question (+ chat markup) per AFT example
MODE_TITLES: dict[str, str] = {"aft": "AFT data", "deliberative": "deliberative-alignment AFT data",
                               "anti": "anti-spec AFT data"}


@dataclass
class AftDataJob(StageJob):
    mode: AftDataMode
    spec: Source
    config: AftDataConfig

    def identity(self) -> dict[str, Any]:
        config = self.config
        files = [config.value_free.preferences, *config.value_free.guard_specs]
        return {"mode": self.mode, "spec": source_identity(self.spec), "prompts": prompt_family("aft", "spec"),
                "files": sorted(content_hash(path) for path in files if path),
                "generator": config.generator.answer_identity(),
                "judge": config.judge.llm.answer_identity() if config.judge.llm else None,
                "settings": config.model_dump(mode="json", exclude={
                    "generator": True, "judge": {"llm"}, "value_free": {"preferences", "guard_specs"}})}

    def sources(self) -> Iterator[Source]:
        yield self.spec


class AftDataStage(StageKind[AftDataJob, AftDataOutputs]):
    name = "aftdata"
    phase = Phase.GENERATION
    outputs = AftDataOutputs

    def run(self, job: AftDataJob, folder: Path, env: StageEnv) -> AftDataOutputs:
        from msmkit.generate.aft import generate_aft
        from msmkit.generate.baselines.anti_spec import generate_anti_spec
        from msmkit.generate.baselines.deliberative import generate_deliberative

        generate = {"aft": generate_aft, "deliberative": generate_deliberative, "anti": generate_anti_spec}[job.mode]
        result = generate(env.spec_file(job.spec), job.config, folder, report=env.say)
        outputs = AftDataOutputs.from_stats(folder, result.stats)
        if not outputs.examples["kept"]:
            raise StageFailed(f"no examples were kept (see {folder / AftDataOutputs.STATS})")
        return outputs

    def estimate(self, job: AftDataJob, preview: PreviewContext) -> Estimate:
        config = job.config
        spec_tokens = estimate_tokens(preview.spec_text(job.spec))
        counts, llm = config.counts, config.generator
        answers = math.ceil(counts.examples * counts.answer_overgenerate)
        questions = math.ceil(answers * counts.question_overgenerate / counts.questions_per_request)
        response = config.lengths.response_max_tokens * 0.6
        groups: list[CallGroup] = [
            ("questions", questions, spec_tokens + 400, counts.questions_per_request * 35, llm),
            ("responses", answers, spec_tokens + 400, response, llm)]
        if config.domains_from == "llm":
            groups.append(("domains", 1, spec_tokens + 300, counts.domains * 40, llm))
        if config.judge.enabled:
            groups.append(("judge", answers, spec_tokens + response + 500, 80, config.judge_llm))
        if config.style == "value_free" and config.value_free.derive_terms:
            groups.append(("value terms", 1 + len(config.value_free.guard_specs), spec_tokens + 300, 200, llm))
        if job.mode == "anti":
            groups.append(("inversion", 1, spec_tokens + 300, spec_tokens * 1.5, llm))
        return llm_estimate(groups, data_tokens=int(counts.examples * (_AFT_PROMPT_TOKENS + response)),
                            examples=counts.examples)


AFT_DATA = AftDataStage()
