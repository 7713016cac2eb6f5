"""What every AFT stage shares: config, spec, prompts, clients, append-only stage logs and counters."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from msmkit.generate.aft.config import AftConfig
from msmkit.generate.aft.prompting import AftPrompts
from msmkit.generate.corpus.store import StageLog
from msmkit.llm.client import LLMCallFailed, LLMClient
from msmkit.llm.types import LLMRequest, LLMResponse
from msmkit.runs import RunDir
from msmkit.spec import ModelSpec


@dataclass
class StageCounters:
    requests: int = 0  # calls made this run (cache hits included)
    reused: int = 0  # answers read back from the stage log: not requested again
    failed: int = 0  # calls that failed after retries (asked again on the next run)


@dataclass
class AftContext:
    config: AftConfig
    spec: ModelSpec
    prompts: AftPrompts
    client: LLMClient
    judge_client: LLMClient
    run: RunDir
    logs: dict[str, StageLog] = field(default_factory=dict)
    counters: dict[str, StageCounters] = field(default_factory=lambda: defaultdict(StageCounters))

    def log(self, stage: str) -> StageLog:
        if stage not in self.logs:
            self.logs[stage] = StageLog(self.run.stage_dir("stages") / f"{stage}.jsonl")
        return self.logs[stage]

    def stage_client(self, stage: str) -> LLMClient:
        client = self.judge_client if stage == "judge" else self.client
        return client.with_stage(f"aft/{stage}")

    async def ask(self, stage: str, request: LLMRequest) -> LLMResponse | None:
        """One call; None (counted and logged) when it fails after retries, so one item never fails a stage."""
        self.counters[stage].requests += 1
        try:
            return await self.stage_client(stage).complete(request)
        except LLMCallFailed as exc:
            self.counters[stage].failed += 1
            self.run.log(f"aft/{stage}: call failed: {exc}")
            return None

    async def prefetch(self, stage: str, requests: list[LLMRequest]) -> None:
        """With a provider batch API, answer a stage's requests as one batch first (fills the cache)."""
        client = self.stage_client(stage)
        if requests and client.config.use_batch_api:
            await client.complete_many(requests, description=f"aft/{stage} (batch)")

    def stored(self, stage: str, task: str) -> dict[str, Any] | None:
        record = self.log(stage).get(task)
        if record is not None and record.get("answered"):
            self.counters[stage].reused += 1
            return record
        return None

    def close(self) -> None:
        for log in self.logs.values():
            log.close()
