"""In-memory OpenAI Batch API (files + batches) and Anthropic Message Batches.

A batch stays in progress for `delay_s` after creation, then every item is answered at once through
`answer_item(api, endpoint, body) -> (status, json body)`, so clients can be tested polling and
resuming. State lives in memory only: a restarted server has no batches.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from msmkit.testing.wire_openai import BadRequest, new_id

AnswerItem = Callable[[str, str, dict[str, Any]], Awaitable[tuple[int, dict[str, Any]]]]
OPENAI_ENDPOINTS = {"/v1/chat/completions": "chat", "/v1/completions": "completions"}


def rfc3339(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat().replace("+00:00", "Z")


@dataclass
class StoredFile:
    id: str
    filename: str
    purpose: str
    content: bytes
    created_at: int = field(default_factory=lambda: int(time.time()))

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "object": "file", "bytes": len(self.content), "created_at": self.created_at,
                "filename": self.filename, "purpose": self.purpose, "status": "processed", "status_details": None,
                "expires_at": None}


@dataclass
class Batch:
    id: str
    api: str
    items: list[tuple[str, dict[str, Any]]]  # (custom_id, request body)
    created_at: float
    ends_at: float
    endpoint: str = "/v1/messages"
    input_file_id: str | None = None
    metadata: dict[str, Any] | None = None
    ended_at: float | None = None
    cancelled: bool = False
    results: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)  # custom_id, status, body
    output_file_id: str | None = None
    error_file_id: str | None = None
    task: asyncio.Task[None] | None = None

    @property
    def succeeded(self) -> int:
        return sum(1 for _, status, _ in self.results if status == 200)


class BatchStore:
    def __init__(self, answer_item: AnswerItem, delay_s: float) -> None:
        self.answer_item = answer_item
        self.delay_s = delay_s
        self.files: dict[str, StoredFile] = {}
        self.batches: dict[str, Batch] = {}

    # ---- shared lifecycle -------------------------------------------------------------------
    def _start(self, batch: Batch) -> Batch:
        self.batches[batch.id] = batch
        batch.task = asyncio.get_running_loop().create_task(self._finish_later(batch))
        return batch

    async def _finish_later(self, batch: Batch) -> None:
        await asyncio.sleep(max(0.0, batch.ends_at - time.time()))
        kind = OPENAI_ENDPOINTS.get(batch.endpoint, "messages")
        for custom_id, body in batch.items:
            status, answer = await self.answer_item(batch.api, kind, body)
            batch.results.append((custom_id, status, answer))
        self._end(batch)

    def _end(self, batch: Batch) -> None:
        batch.ended_at = time.time()
        if batch.api == "openai":
            self._write_openai_files(batch)

    def cancel(self, batch_id: str) -> Batch:
        """Cancel a batch still in progress: none of its items are answered."""
        batch = self.get(batch_id)
        if batch.ended_at is None:
            batch.cancelled = True
            if batch.task is not None:
                batch.task.cancel()
            batch.results.clear()
            self._end(batch)
        return batch

    def get(self, batch_id: str) -> Batch:
        if batch_id not in self.batches:
            raise KeyError(f"no batch with id {batch_id!r} (batches live in the server's memory only)")
        return self.batches[batch_id]

    def close(self) -> None:
        for batch in self.batches.values():
            if batch.task is not None:
                batch.task.cancel()

    # ---- OpenAI -------------------------------------------------------------------------------
    def add_file(self, filename: str, purpose: str, content: bytes) -> StoredFile:
        stored = StoredFile(new_id("file-"), filename, purpose, content)
        self.files[stored.id] = stored
        return stored

    def create_openai(self, body: dict[str, Any]) -> Batch:
        input_file_id = body.get("input_file_id")
        if input_file_id not in self.files:
            raise BadRequest(f"input_file_id: no file {input_file_id!r}; upload it with POST /v1/files first")
        endpoint = body.get("endpoint")
        if endpoint not in OPENAI_ENDPOINTS:
            raise BadRequest(f"endpoint: the test server batches {', '.join(OPENAI_ENDPOINTS)}, not {endpoint!r}")
        items = []
        for number, line in enumerate(self.files[input_file_id].content.decode().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise BadRequest(f"input file line {number}: not JSON ({exc.msg})") from None
            if not isinstance(record, dict) or not record.get("custom_id") or not isinstance(record.get("body"), dict):
                raise BadRequest(f"input file line {number}: needs 'custom_id', 'method', 'url' and 'body'")
            if record.get("url") != endpoint:
                raise BadRequest(f"input file line {number}: url {record.get('url')!r} differs from the batch endpoint")
            items.append((str(record["custom_id"]), record["body"]))
        now = time.time()
        return self._start(Batch(new_id("batch_"), "openai", items, now, now + self.delay_s, endpoint=endpoint,
                                 input_file_id=input_file_id, metadata=body.get("metadata")))

    def _write_openai_files(self, batch: Batch) -> None:
        output, errors = [], []
        for custom_id, status, answer in batch.results:
            line = json.dumps({"id": new_id("batch_req_"), "custom_id": custom_id,
                               "response": {"status_code": status, "request_id": new_id("req_"), "body": answer},
                               "error": None})
            (output if status == 200 else errors).append(line)
        if output:
            batch.output_file_id = self.add_file(f"{batch.id}_output.jsonl", "batch_output",
                                                 ("\n".join(output) + "\n").encode()).id
        if errors:
            batch.error_file_id = self.add_file(f"{batch.id}_error.jsonl", "batch_output",
                                                ("\n".join(errors) + "\n").encode()).id

    def openai_json(self, batch: Batch) -> dict[str, Any]:
        done = batch.ended_at is not None
        status = ("cancelled" if batch.cancelled else "completed") if done else "in_progress"
        failed = len(batch.results) - batch.succeeded
        return {
            "id": batch.id, "object": "batch", "endpoint": batch.endpoint, "errors": None,
            "input_file_id": batch.input_file_id, "completion_window": "24h", "status": status,
            "output_file_id": batch.output_file_id, "error_file_id": batch.error_file_id,
            "created_at": int(batch.created_at), "in_progress_at": int(batch.created_at),
            "expires_at": int(batch.created_at + 86400), "finalizing_at": int(batch.ended_at) if done else None,
            "completed_at": int(batch.ended_at) if done and not batch.cancelled else None,
            "failed_at": None, "expired_at": None, "cancelling_at": None,
            "cancelled_at": int(batch.ended_at) if done and batch.cancelled else None,
            "request_counts": {"total": len(batch.items), "completed": batch.succeeded, "failed": failed},
            "metadata": batch.metadata,
        }

    # ---- Anthropic ----------------------------------------------------------------------------
    def create_anthropic(self, body: dict[str, Any], validate: Callable[[dict[str, Any]], object]) -> Batch:
        requests = body.get("requests")
        if not isinstance(requests, list) or not requests:
            raise BadRequest("requests: must be a non-empty list of {custom_id, params}")
        items, seen = [], set()
        for index, item in enumerate(requests):
            if not isinstance(item, dict) or not item.get("custom_id") or not isinstance(item.get("params"), dict):
                raise BadRequest(f"requests.{index}: needs 'custom_id' and 'params'")
            if item["custom_id"] in seen:
                raise BadRequest(f"requests.{index}.custom_id: {item['custom_id']!r} is used twice")
            seen.add(item["custom_id"])
            try:
                validate(item["params"])
            except BadRequest as exc:
                raise BadRequest(f"requests.{index}.params.{exc}") from None
            items.append((str(item["custom_id"]), item["params"]))
        now = time.time()
        return self._start(Batch(new_id("msgbatch_"), "anthropic", items, now, now + self.delay_s))

    def anthropic_json(self, batch: Batch, base_url: str) -> dict[str, Any]:
        done = batch.ended_at is not None
        counts = {"processing": 0 if done else len(batch.items), "succeeded": batch.succeeded,
                  "errored": len(batch.results) - batch.succeeded,
                  "canceled": len(batch.items) if batch.cancelled else 0, "expired": 0}
        return {
            "id": batch.id, "type": "message_batch", "processing_status": "ended" if done else "in_progress",
            "request_counts": counts, "created_at": rfc3339(batch.created_at),
            "expires_at": rfc3339(batch.created_at + 86400), "ended_at": rfc3339(batch.ended_at),
            "cancel_initiated_at": rfc3339(batch.ended_at) if batch.cancelled else None, "archived_at": None,
            "results_url": f"{base_url}/v1/messages/batches/{batch.id}/results" if done else None,
        }

    def anthropic_results(self, batch: Batch) -> bytes:
        lines = []
        if batch.cancelled:
            lines = [json.dumps({"custom_id": cid, "result": {"type": "canceled"}}) for cid, _ in batch.items]
        for custom_id, status, answer in batch.results:
            result = ({"type": "succeeded", "message": answer} if status == 200
                      else {"type": "errored", "error": answer})
            lines.append(json.dumps({"custom_id": custom_id, "result": result}))
        return ("\n".join(lines) + "\n").encode()
