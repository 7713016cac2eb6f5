"""Provider batch APIs (Anthropic Message Batches, OpenAI Batch) with resumable polling.

Each submitted batch is journaled on disk (keyed by the set of request keys) before polling starts, so
a restarted run finds the journal and resumes polling the same batch instead of paying again. Results
go into the response cache; items a batch did not answer fall back to ordinary calls.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from msmkit.io import atomic_write_json, read_json
from msmkit.llm.failures import FailureCause, FailureKind
from msmkit.llm.types import LLMRequest, LLMResponse

if TYPE_CHECKING:
    from msmkit.llm.client import LLMCallFailed, LLMClient

logger = logging.getLogger(__name__)
MAX_BATCH_REQUESTS = 10_000


def journal_path(client: "LLMClient", keys: list[str]) -> Path:
    digest = hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()[:32]
    root = client.cache.path.parent / "batches"
    return root / f"{client.config.provider}-{digest}.json"


async def run_batch(client: "LLMClient", requests: list[LLMRequest], description: str
                    ) -> list["LLMResponse | LLMCallFailed"]:
    from msmkit.llm.client import LLMCallFailed

    keys = [client.cache_key(r) for r in requests]
    pending = {key: request for key, request in zip(keys, requests) if client.cache.get(key) is None}
    pending_keys = sorted(pending)
    for start in range(0, len(pending_keys), MAX_BATCH_REQUESTS):
        chunk = {key: pending[key] for key in pending_keys[start:start + MAX_BATCH_REQUESTS]}
        await _submit_and_collect(client, chunk, description)

    results: list[LLMResponse | LLMCallFailed] = []
    missing: list[int] = []
    for index, (key, request) in enumerate(zip(keys, requests)):
        response = client.cache.get(key)
        if response is None:
            missing.append(index)
            cause = FailureCause(FailureKind.NOT_ANSWERED, FailureKind.NOT_ANSWERED.label, client.config.describe())
            results.append(LLMCallFailed(cause, request, 0))
        else:
            if key in pending:  # answered by this batch: paid now, not a cache hit
                response = response.model_copy(update={"cached": False})
            results.append(response)
            client._record(response)
    if missing:
        logger.warning("%d request(s) unanswered by the batch API; sending them individually", len(missing))
        retried = await client.with_stage(client.stage).complete_many_direct([requests[i] for i in missing],
                                                                              description)
        for index, outcome in zip(missing, retried):
            results[index] = outcome
    return results


async def _submit_and_collect(client: "LLMClient", chunk: dict[str, LLMRequest], description: str) -> None:
    journal = journal_path(client, list(chunk))
    runner = _runner_for(client)
    if journal.exists():
        state = read_json(journal)
        batch_id = state["batch_id"]
        logger.info("resuming batch %s from %s", batch_id, journal)
    else:
        batch_id = await runner.submit(chunk)
        atomic_write_json(journal, {"batch_id": batch_id, "provider": client.config.provider,
                                    "model": client.config.model, "requests": len(chunk), "status": "submitted"})
        logger.info("submitted batch %s (%d requests)", batch_id, len(chunk))
    if client.run is not None:
        client.run.log(f"{description}: batch {batch_id} ({len(chunk)} requests), journal {journal}")
    while True:
        status = await runner.status(batch_id)
        if status == "ended":
            break
        await asyncio.sleep(client.config.batch_poll_interval_s)
    answered = 0
    async for key, raw in runner.results(batch_id):
        if key in chunk and raw is not None:
            client.cache.put(key, client.finish(chunk[key], raw, batch=True))
            answered += 1
    state = read_json(journal)
    state.update(status="collected", answered=answered)
    atomic_write_json(journal, state)


def _runner_for(client: "LLMClient") -> "_AnthropicBatches | _OpenAIBatches":
    if client.config.provider == "anthropic":
        return _AnthropicBatches(client)
    return _OpenAIBatches(client)


class _AnthropicBatches:
    def __init__(self, client: "LLMClient") -> None:
        self.client = client

    async def _sdk(self) -> Any:
        return (await self.client.backend()).client  # type: ignore[attr-defined]

    async def submit(self, chunk: dict[str, LLMRequest]) -> str:
        from msmkit.llm.anthropic_backend import messages_body

        sdk = await self._sdk()
        items = [{"custom_id": key, "params": messages_body(request, self.client.config.model)}
                 for key, request in chunk.items()]
        batch = await sdk.messages.batches.create(requests=items)
        return str(batch.id)

    async def status(self, batch_id: str) -> str:
        batch = await (await self._sdk()).messages.batches.retrieve(batch_id)
        return "ended" if batch.processing_status == "ended" else "running"

    async def results(self, batch_id: str) -> Any:
        from msmkit.llm.anthropic_backend import parse_message

        sdk = await self._sdk()
        async for item in await sdk.messages.batches.results(batch_id):
            if item.result.type == "succeeded":
                yield item.custom_id, parse_message(item.result.message.model_dump(), self.client.config.model)
            else:
                yield item.custom_id, None


class _OpenAIBatches:
    def __init__(self, client: "LLMClient") -> None:
        self.client = client

    async def _sdk(self) -> Any:
        return (await self.client.backend()).client  # type: ignore[attr-defined]

    async def submit(self, chunk: dict[str, LLMRequest]) -> str:
        from msmkit.llm.openai_backend import chat_body

        sdk = await self._sdk()
        lines = [json.dumps({"custom_id": key, "method": "POST", "url": "/v1/chat/completions",
                             "body": chat_body(request, self.client.config.model)})
                 for key, request in chunk.items()]
        upload = await sdk.files.create(file=("batch.jsonl", io.BytesIO("\n".join(lines).encode())), purpose="batch")
        batch = await sdk.batches.create(input_file_id=upload.id, endpoint="/v1/chat/completions",
                                         completion_window="24h")
        return str(batch.id)

    async def status(self, batch_id: str) -> str:
        batch = await (await self._sdk()).batches.retrieve(batch_id)
        return "ended" if batch.status in ("completed", "failed", "expired", "cancelled") else "running"

    async def results(self, batch_id: str) -> Any:
        from msmkit.llm.openai_backend import parse_chat_completion

        sdk = await self._sdk()
        batch = await sdk.batches.retrieve(batch_id)
        if not batch.output_file_id:
            return
        content = await sdk.files.content(batch.output_file_id)
        for line in content.text.splitlines():
            if not line.strip():
                continue
            record = json.loads(line)
            response = record.get("response") or {}
            if response.get("status_code") == 200:
                yield record["custom_id"], parse_chat_completion(response["body"], self.client.config.model)
            else:
                yield record["custom_id"], None


__all__ = ["run_batch"]
