"""Projected calls, tokens and dollars of a batch of similar LLM calls, for previews."""

from __future__ import annotations

from dataclasses import dataclass

from msmkit.llm.pricing import cost_usd, price_for
from msmkit.llm.types import LLMConfig, Usage


@dataclass
class CallProjection:
    """One kind of call: how many, and their tokens and cost (None: a model with no known price)."""

    stage: str
    calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float | None


def project_calls(name: str, calls: int, input_per_call: float, output_per_call: float, llm: LLMConfig
                  ) -> CallProjection:
    input_tokens, output_tokens = int(calls * input_per_call), int(calls * output_per_call)
    price = price_for(llm)
    cost = None if price is None and llm.provider != "local" else cost_usd(
        price, Usage(input_tokens=input_tokens, output_tokens=output_tokens), batch=llm.use_batch_api)
    return CallProjection(name, calls, input_tokens, output_tokens, cost)
