"""What every corpus stage shares: config, spec, prompts, the LLM client, stage logs and counters."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from msmkit.generate.corpus.config import CorpusConfig
from msmkit.generate.corpus.prompting import CorpusPrompts
from msmkit.generate.corpus.store import StageLog
from msmkit.llm.client import LLMCallFailed, LLMClient
from msmkit.llm.types import LLMRequest, LLMResponse
from msmkit.runs import RunDir
from msmkit.spec import ModelSpec

STAGES = ("domains", "subdomains", "assertions", "doc_types", "ideas", "documents", "judge")


@dataclass
class StageCounters:
    requests: int = 0  # calls made this run (cache hits included)
    reused: int = 0  # answers read back from the stage log: not requested again
    failed: int = 0  # calls that failed after retries (retried on the next run)
    unusable: int = 0  # answered, but nothing usable in it (bad JSON after a re-ask, refusal)
    topup_requests: int = 0
    items_trimmed: int = 0
    items_rejected: int = 0


@dataclass
class CorpusContext:
    config: CorpusConfig
    spec: ModelSpec
    prompts: CorpusPrompts
    client: LLMClient
    run: RunDir
    judge_client: LLMClient | None = None
    logs: dict[str, StageLog] = field(default_factory=dict)
    counters: dict[str, StageCounters] = field(default_factory=lambda: defaultdict(StageCounters))
    flags: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # wall seconds per stage

    @property
    def stage_root(self) -> Path:
        return self.run.stage_dir("stages")

    def log(self, stage: str) -> StageLog:
        if stage not in self.logs:
            self.logs[stage] = StageLog(self.stage_root / f"{stage}.jsonl")
        return self.logs[stage]

    def sample_index(self, attempt: int) -> int:
        return self.config.seed * 1000 + attempt

    def stage_client(self, stage: str) -> LLMClient:
        client = self.judge_client if stage == "judge" and self.judge_client is not None else self.client
        return client.with_stage(f"corpus/{stage}")

    async def prefetch(self, stage: str, requests: list[LLMRequest]) -> None:
        """With the batch API on, answer a stage's requests as one provider batch first.

        The batch fills the response cache (and journals its batch id, so a rerun resumes polling);
        the per-item calls that follow are then served from the cache and logged item by item.
        """
        client = self.stage_client(stage)
        if requests and client.config.use_batch_api:
            await client.complete_many(requests, description=f"corpus/{stage} (batch)")

    async def ask(self, stage: str, request: LLMRequest) -> LLMResponse | None:
        """One call; None (counted, logged) when it fails after retries: one failed item never fails a stage."""
        self.counters[stage].requests += 1
        try:
            return await self.stage_client(stage).complete(request)
        except LLMCallFailed as exc:
            self.counters[stage].failed += 1
            self.run.log(f"{stage}: call failed: {exc}")
            return None

    def close(self) -> None:
        for log in self.logs.values():
            log.close()
