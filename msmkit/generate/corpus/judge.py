"""Optional judge pass: does a document contradict the spec or invent values? Unsure means drop."""

from __future__ import annotations

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


async def judge_document(ctx: CorpusContext, item: JudgeItem) -> Verdict:
    """The verdict on one document, asked as soon as the document is clean. A failed call drops it for this run
    only (a rerun asks again)."""
    record = await _judge_one(ctx, item)
    if not record.get("answered"):
        return Verdict(False, "judge_failed", record.get("error") or "")
    if not record.get("ok"):
        return Verdict(False, "judge_unusable", record.get("error") or "")
    if record["keep"]:
        return Verdict(True, "")
    return Verdict(False, "judge_rejected", record.get("reason", ""))
