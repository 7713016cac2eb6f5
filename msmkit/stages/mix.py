"""Stage kind `mix`: an AFT set blended with general instruction data at a token or row ratio."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from msmkit.data.mix import MixConfig, MixOutputs
from msmkit.fingerprint import content_hash
from msmkit.hub import is_hub_ref, parse_ref
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

_GENERAL_ROW_TOKENS = 150  # prompt + answer of one instruction-mix row, for previews


@dataclass
class MixJob(StageJob):
    aft: Source | None  # None: the instruction mix alone (the paper's "baseline" arm)
    general: FileInput | None  # your own instruction data; None with a preset
    mix: MixConfig
    cot: bool  # which of the AFT set's two files is mixed

    def identity(self) -> dict[str, Any]:
        dataset = self.mix.dataset
        return {"aft": source_identity(self.aft), "general": self.general.identity() if self.general else None,
                "dataset": (parse_ref(dataset, "dataset").text() if is_hub_ref(dataset) else content_hash(dataset))
                if dataset else None, "cot": self.cot,
                "settings": self.mix.model_dump(mode="json", exclude={"general", "dataset"})}

    def sources(self) -> Iterator[Source | None]:
        yield self.aft
        yield self.general


class MixStage(StageKind[MixJob, MixOutputs]):
    name = "mix"
    phase = Phase.GENERATION
    outputs = MixOutputs

    def run(self, job: MixJob, folder: Path, env: StageEnv) -> MixOutputs:
        from msmkit.data.mix import mix_files, mix_preset

        aft = env.chat_file(job.aft, job.cot) if job.aft is not None else None
        if job.mix.preset is not None:
            outputs = mix_preset(aft, job.mix.preset, folder, dataset=job.mix.dataset, tokenizer=job.mix.tokenizer)
        else:
            assert job.general is not None and job.mix.ratio is not None and aft is not None
            outputs = mix_files(aft, job.general.path, folder, ratio=job.mix.ratio, by=job.mix.by,
                                tokenizer=job.mix.tokenizer)
        env.say(f"mixed {outputs.aft_rows} AFT rows with {outputs.general_rows_used} general rows")
        return outputs

    def estimate(self, job: MixJob, preview: PreviewContext) -> Estimate:
        aft = preview.of(job.aft) if isinstance(job.aft, StageRef) else Estimate()
        if job.mix.preset is not None:
            from msmkit.data.presets import get_preset

            rows = get_preset(job.mix.preset).rows
            return Estimate(data_tokens=aft.data_tokens + rows * _GENERAL_ROW_TOKENS, examples=aft.examples + rows)
        return Estimate(data_tokens=int(aft.data_tokens * (1 + (job.mix.ratio or 0))), examples=aft.examples)


MIX = MixStage()
