"""Generation judged by an LLM: the evaluated model answers freely, a judge reads off its choice.

Each item is asked in both option orders. The judge maps each answer to A, B or neither (JSON verdict,
validated; a bad verdict is re-asked once by the client and otherwise recorded as a parse failure,
never as a choice). The item counts only when both orders' verdicts name the same underlying option;
otherwise it is dropped with a reason (answer_failed, judge_failed, parse_failed, neither,
orders_disagree). The first two are calls that failed (with their cause): a rerun asks them again.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Literal, Sequence

from pydantic import BaseModel

from msmkit.eval.forced_choice import ORDERS, slot_labels
from msmkit.eval.items import ValueItem
from msmkit.llm.client import LLMCallFailed, LLMClient, StructuredResult
from msmkit.llm.failures import is_call_failure
from msmkit.llm.types import LLMRequest, LLMResponse
from msmkit.prompts import load_prompt

ANSWER_PROMPTS = {"chat": "eval/judged_answer_chat", "completion": "eval/judged_answer_completion"}
JUDGE_PROMPT = "eval/judge_choice"
RETRIED_REASONS = frozenset({"answer_failed", "judge_failed"})  # calls that failed: asked again on resume


class ChoiceVerdict(BaseModel):
    choice: Literal["A", "B", "neither"]
    reason: str = ""


@dataclass
class JudgedChoiceScorer:
    model: LLMClient  # the evaluated model (local backend or any endpoint)
    judge: LLMClient
    answer_max_tokens: int = 200
    answer_temperature: float = 0.0
    judge_max_tokens: int = 200

    @property
    def prompt_names(self) -> list[str]:
        return [self._answer_prompt_name, JUDGE_PROMPT]

    @property
    def _answer_prompt_name(self) -> str:
        return ANSWER_PROMPTS["completion" if self.model.is_base_model else "chat"]

    def answer_request(self, item: ValueItem, order: str) -> LLMRequest:
        first, second = slot_labels(order)
        text = load_prompt(self._answer_prompt_name).render(
            question=item.question, option_a=item.options[first], option_b=item.options[second]).rstrip()
        stop = ("\nQuestion:",) if self.model.is_base_model else ()
        return LLMRequest.of(text, max_tokens=self.answer_max_tokens, temperature=self.answer_temperature, stop=stop)

    def judge_request(self, item: ValueItem, order: str, answer: str) -> LLMRequest:
        first, second = slot_labels(order)
        text = load_prompt(JUDGE_PROMPT).render(question=item.question, option_a=item.options[first],
                                                option_b=item.options[second], answer=answer.strip() or "(empty)")
        return LLMRequest.of(text, max_tokens=self.judge_max_tokens, temperature=0.0)

    async def score(self, items: Sequence[ValueItem]) -> list[dict[str, Any]]:
        """One record per item, same order as `items`."""
        requests = [self.answer_request(item, order) for item in items for order in ORDERS]
        answers = await self.model.complete_many(requests, description="answers")

        async def judge_one(index: int) -> dict[str, Any]:
            item, order = items[index // 2], ORDERS[index % 2]
            answer = answers[index]
            if isinstance(answer, LLMCallFailed):
                return _order_record(order, answer, None)
            result = await self.judge.complete_json(self.judge_request(item, order, answer.text), ChoiceVerdict)
            return _order_record(order, answer, result)

        judged = await asyncio.gather(*(judge_one(i) for i in range(len(requests))))
        return [combine_verdicts(item, judged[2 * k:2 * k + 2]) for k, item in enumerate(items)]


def _order_record(order: str, answer: LLMResponse | LLMCallFailed, result: StructuredResult[Any] | None
                  ) -> dict[str, Any]:
    slot_a, _ = slot_labels(order)
    failed = answer if isinstance(answer, LLMCallFailed) else None
    response = None if failed is not None else answer
    verdict = result.value.choice if result is not None and result.ok else None
    return {
        "order": order, "slot_a": slot_a,
        "answer": response.text if response is not None else None,
        "answer_truncated": bool(response is not None and response.truncated),
        "answer_error": str(failed) if failed is not None else None,
        "answer_cause": failed.cause.to_json() if failed is not None else None,
        "verdict": verdict,  # the slot the judge named (A/B), "neither", or None when the verdict failed to parse
        "judge_reason": result.value.reason if verdict is not None else None,
        "judge_error": None if result is None or result.ok else result.error,
        "judge_cause": result.failure.cause.to_json() if result is not None and result.failure else None,
        "judge_raw": result.response.text if result is not None and result.response is not None else None,
    }


def judge_call_failed(order: dict[str, Any]) -> bool:
    """The judge's call failed (no verdict to parse). Records from before causes were kept say so in
    `judge_error` only."""
    return bool(order.get("judge_cause")) or is_call_failure(order.get("judge_error"))


def needs_retry(record: dict[str, Any]) -> bool:
    """A record whose answer or verdict call failed: a rerun asks again instead of reusing it."""
    return record.get("drop_reason") in RETRIED_REASONS or any(judge_call_failed(o) for o in record["orders"])


def combine_verdicts(item: ValueItem, orders: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Map each order's slot verdict back to the item's own labels; count the item only if both agree."""
    chosen_labels = []
    for record in orders:
        verdict = record["verdict"]
        if verdict in ("A", "B"):
            first, second = slot_labels(record["order"])
            record["chosen_label"] = first if verdict == "A" else second
        else:
            record["chosen_label"] = None
        chosen_labels.append(record["chosen_label"])
    if any(r["answer_error"] is not None for r in orders):
        reason = "answer_failed"
    elif any(judge_call_failed(r) for r in orders):
        reason = "judge_failed"
    elif any(r["verdict"] is None for r in orders):
        reason = "parse_failed"
    elif any(r["verdict"] == "neither" for r in orders):
        reason = "neither"
    elif chosen_labels[0] != chosen_labels[1]:
        reason = "orders_disagree"
    else:
        reason = None
    chosen = chosen_labels[0] if reason is None else None
    return {
        "id": item.id, "domain": item.domain, "split": item.split, "target_value": item.target_value,
        "target_label": item.target_label, "orders": list(orders), "counted": reason is None,
        "drop_reason": reason, "chosen": chosen, "chosen_value": item.values[chosen] if chosen else None,
        "chose_target": chosen == item.target_label if chosen else None,
    }
