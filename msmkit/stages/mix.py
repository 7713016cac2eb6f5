"""Stage kind `mix`: an AFT set blended with general instruction data at a token or row ratio."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from msmkit.data.mix import MixConfig, MixOutputs
from msmkit.stages.contract import (
    Estimate,
    FileInput,
    Phase,
    PreviewContext,
    Source,
    StageEnv,
    StageJob,
    StageKind,
    StageRef,
    source_identity,
)


@dataclass
class MixJob(StageJob):
    aft: Source
    general: FileInput
    mix: MixConfig
    cot: bool  # which of the AFT set's two files is mixed

    def identity(self) -> dict[str, Any]:
        return {"aft": source_identity(self.aft), "general": self.general.identity(), "cot": self.cot,
                "settings": self.mix.model_dump(mode="json", exclude={"general"})}

    def sources(self) -> Iterator[Source]:
        yield self.aft
        yield self.general


class MixStage(StageKind[MixJob, MixOutputs]):
    name = "mix"
    phase = Phase.GENERATION
    outputs = MixOutputs

    def run(self, job: MixJob, folder: Path, env: StageEnv) -> MixOutputs:
        from msmkit.data.mix import mix_files

        outputs = mix_files(env.chat_file(job.aft, job.cot), job.general.path, folder, ratio=job.mix.ratio,
                            by=job.mix.by, tokenizer=job.mix.tokenizer)
        env.say(f"mixed {outputs.aft_rows} AFT rows with {outputs.general_rows_used} general rows")
        return outputs

    def estimate(self, job: MixJob, preview: PreviewContext) -> Estimate:
        aft = preview.of(job.aft) if isinstance(job.aft, StageRef) else Estimate()
        return Estimate(data_tokens=int(aft.data_tokens * (1 + job.mix.ratio)), examples=aft.examples)


MIX = MixStage()
