"""Token prices (US$ per million tokens) and cost computation. Users override per model with `price:`.

Prices are list prices as published by the providers; check them before trusting a budget.
Models are matched by the longest known prefix of the model name.
"""

from __future__ import annotations

import logging

from msmkit.llm.types import LLMConfig, Price, Usage

logger = logging.getLogger(__name__)

# Anthropic: cache reads 0.1x input, 5-minute cache writes 1.25x input.
_ANTHROPIC = {
    "claude-opus-4": (15.0, 75.0),
    "claude-opus-4-5": (5.0, 25.0),
    "claude-opus-4-6": (5.0, 25.0),
    "claude-sonnet-4": (3.0, 15.0),
    "claude-sonnet-4-5": (3.0, 15.0),
    "claude-sonnet-4-6": (3.0, 15.0),
    "claude-haiku-4-5": (1.0, 5.0),
    "claude-3-5-haiku": (0.8, 4.0),
    "claude-3-7-sonnet": (3.0, 15.0),
}
# OpenAI: cached input is billed at a discount (0.1x-0.5x depending on model); we use 0.5x.
_OPENAI = {
    "gpt-4o": (2.5, 10.0),
    "gpt-4o-mini": (0.15, 0.6),
    "gpt-4.1": (2.0, 8.0),
    "gpt-4.1-mini": (0.4, 1.6),
    "gpt-4.1-nano": (0.1, 0.4),
    "gpt-5": (1.25, 10.0),
    "gpt-5-mini": (0.25, 2.0),
    "gpt-5-nano": (0.05, 0.4),
    "o3": (2.0, 8.0),
    "o4-mini": (1.1, 4.4),
}
# Batch APIs of both providers bill half price.
BATCH_DISCOUNT = 0.5


def _table_price(provider: str, model: str) -> Price | None:
    if provider == "anthropic":
        table, cache_read, cache_write = _ANTHROPIC, 0.1, 1.25
    elif provider == "openai":
        table, cache_read, cache_write = _OPENAI, 0.5, 1.0
    else:
        return None
    matches = [name for name in table if model.startswith(name)]
    if not matches:
        return None
    input_price, output_price = table[max(matches, key=len)]
    return Price(input=input_price, output=output_price,
                 cache_read=input_price * cache_read, cache_write=input_price * cache_write)


_warned: set[str] = set()


def price_for(config: LLMConfig) -> Price | None:
    """The user's `price:` if set, else the table's, else None (local and unknown servers)."""
    if config.price is not None:
        return config.price
    if config.provider in ("local", "vllm"):  # weights on this machine: nothing to pay per token
        return None
    found = _table_price(config.provider, config.model)
    if found is None and config.describe() not in _warned:
        _warned.add(config.describe())
        logger.warning("no price known for %s; costs count as 0. Set `price:` in its config to track spend.",
                       config.describe())
    return found


def cost_usd(price: Price | None, usage: Usage, *, batch: bool = False) -> float:
    if price is None:
        return 0.0
    cache_read = price.cache_read if price.cache_read is not None else price.input
    cache_write = price.cache_write if price.cache_write is not None else price.input
    total = (usage.input_tokens * price.input + usage.output_tokens * price.output
             + usage.cache_read_tokens * cache_read + usage.cache_write_tokens * cache_write) / 1e6
    return total * (BATCH_DISCOUNT if batch else 1.0)
