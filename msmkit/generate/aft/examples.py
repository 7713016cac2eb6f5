"""One question -> one response -> checks -> strict judge -> a kept example or a drop with its reason.

Raw answers are logged (responses by question id, verdicts by question id + response hash), and the
checks are recomputed from them on every run, so tightening a check costs no new calls.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from msmkit.data.filters import looks_like_refusal
from msmkit.generate.aft.context import AftContext
from msmkit.generate.aft.identity import IdentityGuard
from msmkit.generate.aft.quotes import check_quotes
from msmkit.generate.aft.records import Question, QuestionCell
from msmkit.generate.aft.think import SplitResponse, split_think
from msmkit.generate.aft.values import ValueGuard
from msmkit.llm.types import StopReason


class JudgeAnswer(BaseModel):
    verdict: str
    reason: str = ""


@dataclass(frozen=True)
class Checks:
    identity: IdentityGuard | None
    values: ValueGuard | None  # value-free style only
    quote_spec: str | None  # deliberative style only: the spec text quotes must come from


@dataclass
class Example:
    question: Question
    reasoning: str
    reply: str
    model: str
    verdict: str  # pass | not_judged
    judge_reason: str
    round: int
    quotes: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Drop:
    question_id: str
    reason: str
    detail: str = ""
    excerpt: str = ""
    round: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"question_id": self.question_id, "reason": self.reason, "detail": self.detail,
                "excerpt": self.excerpt, "round": self.round}


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


async def _respond(ctx: AftContext, question: Question, cell: QuestionCell) -> dict[str, Any] | None:
    stored = ctx.stored("responses", question.id)
    if stored is not None:
        return stored
    request = ctx.prompts.response(question.text, cell)
    response = await ctx.ask("responses", request)
    if response is None:
        return None
    # Base models were prompted with an open "<think>": the answer continues it.
    text = ("<think>" + response.text) if ctx.prompts.base_model else response.text
    record = {"task": question.id, "answered": True, "text": text, "stop_reason": response.stop_reason,
              "model": response.model, "max_tokens": request.max_tokens}
    ctx.log("responses").append(record)
    return record


def check_response(record: dict[str, Any], question: Question, checks: Checks
                   ) -> tuple[SplitResponse | None, str | None, str]:
    """(split, drop reason or None, detail) for one logged answer; spec quotes are checked in `process`."""
    text = record["text"]
    if record["stop_reason"] == StopReason.REFUSAL:
        return None, "refusal", "provider stop_reason=refusal"
    if record["stop_reason"] == StopReason.MAX_TOKENS:
        return None, "truncated", f"cut at max_tokens={record['max_tokens']}"
    split = split_think(text)
    if not split.ok:
        return None, split.problem, split.detail
    assert split.reasoning is not None and split.reply is not None
    if looks_like_refusal(split.reply):
        return None, "refusal", "the reply declines"
    if checks.identity is not None:
        issue = checks.identity.problem(split.reasoning + "\n" + split.reply)
        if issue:
            return None, "identity", issue
    if checks.values is not None:
        issue = checks.values.problem("\n".join((question.text, split.reasoning, split.reply)))
        if issue:
            return None, "mentions_value", issue
    return split, None, ""


async def _judge(ctx: AftContext, question: Question, cell: QuestionCell, split: SplitResponse
                 ) -> dict[str, Any] | None:
    assert split.reasoning is not None and split.reply is not None
    task = f"{question.id}:{_hash(split.with_cot())}"
    stored = ctx.stored("judge", task)
    if stored is not None:
        return stored
    request = ctx.prompts.judge(question.text, split.reasoning, split.reply, cell)
    if ctx.prompts.judge_base_model:
        response = await ctx.ask("judge", request)
        if response is None:
            return None
        words = response.text.strip().split()
        word = words[0].strip(".:,!").lower() if words else ""
        record = {"task": task, "answered": True, "verdict": word if word in ("pass", "fail") else "unclear",
                  "reason": "", "raw": response.text[:300]}
    else:
        result = await ctx.ask_json("judge", request, JudgeAnswer, task=task)
        if result is None:
            return None
        verdict = result.value.verdict.strip().lower() if result.ok else "unclear"
        record = {"task": task, "answered": True, "verdict": verdict if verdict in ("pass", "fail") else "unclear",
                  "reason": result.value.reason if result.ok else f"unusable verdict: {result.error}",
                  "raw": (result.response.text if result.response else "")[:300]}
    ctx.log("judge").append(record)
    return record


@dataclass
class JudgeTally:
    judged: int = 0
    passed: int = 0
    failed: int = 0
    unclear: int = 0


async def process(ctx: AftContext, question: Question, cell: QuestionCell, checks: Checks, round_number: int,
                  tally: JudgeTally) -> Example | Drop:
    record = await _respond(ctx, question, cell)
    if record is None:
        return Drop(question.id, "call_failed", "no answer (the call failed; a rerun asks again)", round=round_number)
    split, reason, detail = check_response(record, question, checks)
    excerpt = record["text"][:300]
    quotes: list[dict[str, Any]] = []
    if reason is None and checks.quote_spec is not None:
        settings = ctx.config.deliberative
        assert split is not None and split.reasoning is not None
        quote_check = check_quotes(split.reasoning, checks.quote_spec, threshold=settings.quote_threshold,
                                   min_words=settings.min_quote_words, min_quotes=settings.min_quotes)
        quotes = quote_check.quotes
        if quote_check.problem:
            reason, detail = "unverified_quotes", quote_check.problem
    if reason is not None or split is None:
        return Drop(question.id, reason or "unknown", detail, excerpt, round_number)
    assert split.reasoning is not None and split.reply is not None
    if not ctx.config.judge.enabled:
        return Example(question, split.reasoning, split.reply, record.get("model", ""), "not_judged", "",
                       round_number, quotes)
    verdict = await _judge(ctx, question, cell, split)
    if verdict is None:
        return Drop(question.id, "judge_failed", "the judge call failed; a rerun asks again", excerpt, round_number)
    tally.judged += 1
    if verdict["verdict"] == "pass":
        tally.passed += 1
        return Example(question, split.reasoning, split.reply, record.get("model", ""), "pass", verdict["reason"],
                       round_number, quotes)
    if verdict["verdict"] == "fail":
        tally.failed += 1
        return Drop(question.id, "judge_rejected", verdict["reason"], excerpt, round_number)
    tally.unclear += 1
    return Drop(question.id, "judge_unclear", verdict["reason"] or f"verdict was not pass/fail: {verdict['raw']!r}",
                excerpt, round_number)
