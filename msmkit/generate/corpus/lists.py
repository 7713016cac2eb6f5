"""List steps (domains, subdomains, assertions, document types, ideas) with their counts enforced.

Each parent asks for exactly `want` items. A short answer is topped up by asking for the missing
number (listing what it already has); a long one is trimmed. Every answer is logged under the task
id `<parent>#<attempt>` before it is used, so a rerun re-reads it instead of asking again. Each job
runs on its own: its top-up asks follow its own answer, never a wave of other jobs.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Callable

from pydantic import TypeAdapter

from msmkit.generate.corpus.context import CorpusContext
from msmkit.generate.corpus.records import make_id
from msmkit.generate.line_list import parse_line_list
from msmkit.llm.types import LLMRequest

# (existing item descriptions, how many are needed, sample index) -> request
RequestBuilder = Callable[[list[str], int, int], LLMRequest]


@dataclass
class ListJob:
    parent_id: str
    want: int
    build: RequestBuilder
    # (raw item dict, deterministic item id) -> the item to keep, or None to reject it (counted)
    accept: Callable[[dict[str, Any], str], Any]
    describe: Callable[[Any], str]
    adapter: TypeAdapter[Any] | None = None  # chat models answer JSON validated by this
    base_opener: str = "1."  # base models: the list opener the prompt ends with
    base_item: Callable[[str], dict[str, Any]] = lambda line: {"text": line}
    items: list[Any] = field(default_factory=list)
    gave_up: bool = False


async def _answer(ctx: CorpusContext, step: str, job: ListJob, task: str, request: LLMRequest,
                  need: int) -> dict[str, Any]:
    if job.adapter is not None:
        result = await ctx.ask_json(step, request, job.adapter, task=task)
        if result is None:  # the call itself failed: not answered, a rerun asks again
            return {"task": task, "answered": False}
        items = [item.model_dump() for item in result.value] if result.ok else []
        text = result.response.text if result.response else ""
        stop = result.response.stop_reason if result.response else ""
        record = {"task": task, "answered": True, "items": items, "error": result.error, "stop_reason": stop,
                  "text": text}
    else:
        response = await ctx.ask(step, request, task=task)
        if response is None:
            return {"task": task, "answered": False}
        lines = parse_line_list(f"{job.base_opener}{response.text}", limit=need)
        record = {"task": task, "answered": True, "items": [job.base_item(line) for line in lines],
                  "error": None if lines else "no list items in the completion",
                  "stop_reason": response.stop_reason, "text": response.text}
    if not record["items"]:
        ctx.counters[step].unusable += 1
    ctx.log(step).append(record)
    return record


async def fill_list(ctx: CorpusContext, step: str, job: ListJob,
                    on_items: Callable[[list[Any]], None] | None = None) -> None:
    """Fill `job.items` up to `job.want` (fewer only when calls fail or answers stay short); `on_items` gets each
    answer's accepted items as soon as they are known, so their own work can start before any top-up ask."""
    counters = ctx.counters[step]
    for attempt in range(1 + ctx.config.counts.max_topup_requests):
        if job.gave_up or len(job.items) >= job.want:
            return
        task = f"{job.parent_id}#{attempt}"
        record = ctx.log(step).get(task)
        if record is not None and record.get("answered"):
            counters.reused += 1
        else:
            need = job.want - len(job.items)
            if attempt > 0:
                counters.topup_requests += 1
            request = job.build([job.describe(item) for item in job.items], need, ctx.sample_index(attempt))
            record = await _answer(ctx, step, job, task, request, need)
        if not record.get("answered"):
            job.gave_up = True
            return
        accepted = []
        for position, raw in enumerate(record["items"]):
            if len(job.items) >= job.want:
                counters.items_trimmed += len(record["items"]) - position
                break
            item = job.accept(raw, make_id(job.parent_id, step, attempt, position))
            if item is None:
                counters.items_rejected += 1
            else:
                job.items.append(item)
                accepted.append(item)
        if on_items is not None and accepted:
            on_items(accepted)


async def fill_lists(ctx: CorpusContext, step: str, jobs: list[ListJob]) -> None:
    """Every job filled side by side (each on its own schedule)."""
    await asyncio.gather(*(fill_list(ctx, step, job) for job in jobs))
