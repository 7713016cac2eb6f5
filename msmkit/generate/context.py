"""What every generator shares (MSM corpus, AFT data and its baselines, neutral corpus): the run folder, the
LLM clients, one append-only log and one set of counters per generation step, and asking a call so that a
failure is counted and logged instead of failing the stage.

A generation *step* is one kind of call inside a stage (domains, ideas, documents, judge ...). Each step's
answers are logged under `<run>/steps/<step>.jsonl` as they arrive, so a killed run resumes item by item.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from msmkit.errors import MsmError
from msmkit.generate.batching import BatchWindow
from msmkit.generate.step_log import StepLog
from msmkit.llm.client import LLMCallFailed, LLMClient, StructuredResult
from msmkit.llm.failures import summarize_failures
from msmkit.llm.types import LLMRequest, LLMResponse
from msmkit.runs import LOG_FILE, RunDir

STEPS_DIR = "steps"
_LEGACY_STEPS_DIR = "stages"  # the folder's name before msmkit 0.2: renamed on first use, so old runs resume


class GenerationFailed(MsmError):
    """A generator got nothing usable because its calls failed; the message names the endpoint and the cause."""


@dataclass
class StepCounters:
    requests: int = 0  # calls made this run (cache hits included)
    reused: int = 0  # answers read back from the step log: not requested again
    failed: int = 0  # calls that failed after retries (asked again on the next run)
    unusable: int = 0  # answered, but nothing usable in it (bad JSON after a re-ask, refusal)
    topup_requests: int = 0  # extra asks when a list answer came back short
    items_trimmed: int = 0
    items_rejected: int = 0


def steps_dir(run: RunDir) -> Path:
    legacy, current = run.path / _LEGACY_STEPS_DIR, run.path / STEPS_DIR
    if legacy.is_dir() and not current.exists():
        legacy.rename(current)
    return run.stage_dir(STEPS_DIR)


@dataclass
class GenerationContext:
    """`name` prefixes the usage labels ("corpus", "aft", "neutral"); the judge step uses `judge_client`."""

    name: str
    client: LLMClient
    run: RunDir
    judge_client: LLMClient | None = None
    logs: dict[str, StepLog] = field(default_factory=dict)
    counters: dict[str, StepCounters] = field(default_factory=lambda: defaultdict(StepCounters))
    failures: list[LLMCallFailed] = field(default_factory=list)  # in order; the first names the cause
    # Batch-API providers: gather each step's calls into batches as they become ready (item-by-item generators).
    batch_windows: bool = False
    windows: dict[str, BatchWindow] = field(default_factory=dict)
    # When the client's slots are all busy, steps with lower numbers go first (upstream steps unlock more work).
    step_priority: dict[str, int] = field(default_factory=dict)

    def log(self, step: str) -> StepLog:
        if step not in self.logs:
            self.logs[step] = StepLog(steps_dir(self.run) / f"{step}.jsonl")
        return self.logs[step]

    def step_client(self, step: str) -> LLMClient:
        client = self.judge_client if step == "judge" and self.judge_client is not None else self.client
        return client.with_stage(f"{self.name}/{step}")

    async def ask(self, step: str, request: LLMRequest, *, task: str = "") -> LLMResponse | None:
        """One call; None (counted, logged) when it fails after retries: one failed item never fails a stage."""
        self.counters[step].requests += 1
        client = self.step_client(step)
        await self._through_batch(step, client, request)
        try:
            return await client.complete(request, priority=self.step_priority.get(step, 0))
        except LLMCallFailed as exc:
            self._failed(step, task, exc)
            return None

    async def ask_json(self, step: str, request: LLMRequest, schema: Any, *,
                       task: str = "") -> StructuredResult[Any] | None:
        """A structured answer (validated JSON, re-asked once when it does not parse); None, counted and
        logged, when the call itself failed. An answer that never parses comes back with `ok` False."""
        self.counters[step].requests += 1
        client = self.step_client(step)
        await self._through_batch(step, client, request)
        result = await client.complete_json(request, schema, priority=self.step_priority.get(step, 0))
        if result.failure is not None:
            self._failed(step, task, result.failure)
            return None
        return result

    async def _through_batch(self, step: str, client: LLMClient, request: LLMRequest) -> None:
        if not (self.batch_windows and client.config.use_batch_api):
            return
        try:
            if client.cache.get(client.cache_key(request)) is not None:
                return
        except LLMCallFailed:
            return  # the call itself reports it
        window = self.windows.get(step)
        if window is None:
            window = self.windows[step] = BatchWindow(client, f"{self.name}/{step} (batch)")
        await window.wait_for(request)

    def _failed(self, step: str, task: str, error: LLMCallFailed) -> None:
        self.counters[step].failed += 1
        self.failures.append(error)
        self.run.log(f"{self.name}/{step}{f' {task}' if task else ''}: call failed: {error}")

    def raise_if_calls_failed(self, what: str) -> None:
        """Raise GenerationFailed for `what` (e.g. "the decomposition produced no subdomains") when calls failed."""
        if self.failures:
            raise GenerationFailed(f"{what}: {self.failure_summary()}. Fix the cause and rerun the same command: "
                                   "every answer already received is kept")

    def failure_summary(self) -> str:
        """One sentence on the calls that failed (endpoint, first cause in plain words, where the log is)."""
        requests = sum(counter.requests for counter in self.counters.values())
        return summarize_failures(self.failures, total=requests, log=self.run.path / LOG_FILE)

    async def prefetch(self, step: str, requests: list[LLMRequest]) -> None:
        """With a provider batch API, answer a step's requests as one batch first.

        The batch fills the response cache (and journals its batch id, so a rerun resumes polling); the
        per-item calls that follow are then served from the cache and logged item by item.
        """
        client = self.step_client(step)
        if requests and client.config.use_batch_api:
            await client.complete_many(requests, description=f"{self.name}/{step} (batch)")

    def stored(self, step: str, task: str) -> dict[str, Any] | None:
        """The logged answer of `task`, counted as reused; None when it was never answered."""
        record = self.log(step).get(task)
        if record is not None and record.get("answered"):
            self.counters[step].reused += 1
            return record
        return None

    def counter_table(self) -> dict[str, dict[str, int]]:
        return {step: vars(counter).copy() for step, counter in self.counters.items()}

    def close(self) -> None:
        for log in self.logs.values():
            log.close()
