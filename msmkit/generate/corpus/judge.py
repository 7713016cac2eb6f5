"""Optional judge pass: does a document contradict the spec or invent values? Unsure means drop."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Sequence

from pydantic import TypeAdapter

from msmkit.generate.corpus.context import CorpusContext
from msmkit.generate.corpus.parsing import JudgeVerdict
from msmkit.generate.corpus.records import Assertion, text_hash

_VERDICT = TypeAdapter(JudgeVerdict)


@dataclass(frozen=True)
class JudgeItem:
    idea_id: str
    text: str
    assertions: Sequence[Assertion]

    @property
    def task(self) -> str:
        return f"{self.idea_id}:{text_hash(self.text)}"


@dataclass(frozen=True)
class Verdict:
    keep: bool
    reason: str  # "" when kept; else judge_rejected | judge_unusable | judge_failed
    detail: str = ""


async def _judge_one(ctx: CorpusContext, item: JudgeItem) -> dict[str, Any]:
    log = ctx.log("judge")
    stored = log.get(item.task)
    if stored is not None:
        ctx.counters["judge"].reused += 1
        return stored
    result = await ctx.ask_json("judge", ctx.prompts.judge(item.text, item.assertions), _VERDICT, task=item.task)
    if result is None:
        return {"task": item.task, "answered": False}
    record = {"task": item.task, "answered": True, "ok": result.ok, "error": result.error,
              "keep": bool(result.value.keep) if result.ok else False,
              "reason": result.value.reason if result.ok else ""}
    log.append(record)
    return record


async def judge_documents(ctx: CorpusContext, items: Sequence[JudgeItem]) -> dict[str, Verdict]:
    """Verdict per idea id. A failed call drops the document for this run only (a rerun asks again)."""
    if ctx.judge_client is None or not items:
        return {}
    log = ctx.log("judge")
    await ctx.prefetch("judge", [ctx.prompts.judge(item.text, item.assertions) for item in items
                                 if log.get(item.task) is None])
    records = await asyncio.gather(*(_judge_one(ctx, item) for item in items))
    verdicts: dict[str, Verdict] = {}
    for item, record in zip(items, records):
        if not record.get("answered"):
            verdicts[item.idea_id] = Verdict(False, "judge_failed", record.get("error") or "")
        elif not record.get("ok"):
            verdicts[item.idea_id] = Verdict(False, "judge_unusable", record.get("error") or "")
        elif record["keep"]:
            verdicts[item.idea_id] = Verdict(True, "")
        else:
            verdicts[item.idea_id] = Verdict(False, "judge_rejected", record.get("reason", ""))
    return verdicts
