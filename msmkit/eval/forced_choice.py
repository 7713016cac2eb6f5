"""Forced choice by log-probability: which option text does the model itself find more likely?

Each item is shown with its options labelled A and B, in both orders (as written, and swapped). For
each order the model scores both option texts as the continuation of the prompt; an option's score is
its mean log-probability per token (the sum is recorded too), and the two orders are averaged, so
neither slot nor length decides the choice. How often the option in slot A wins is the position bias.

The two orders of an item are scored as one group by `continuation_scoring.score_requests`: the part
of the prompt both orders share (the question) runs once, each order's remainder and both continuations
reuse its KV cache, and only positions that predict a continuation token reach the LM head. With a
`context` (a spec shown before every question) the tokens all prompts share run once instead
(`prefix_scoring.PrefixCache`): the padded batches would exceed a sliding window and fall back to scoring
every order as a full sequence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Literal, Sequence

from msmkit.eval.continuation_scoring import (
    OptionScore,
    ScoringRequest,
    common_prefix_length,
    pad_id_of,
    score_requests,
)
from msmkit.eval.items import LABELS, Label, ValueItem
from msmkit.eval.prefix_scoring import PrefixCache, shared_prefix_length
from msmkit.prompts import load_prompt

PromptStyle = Literal["auto", "completion", "chat"]
ORDERS: tuple[str, str] = ("original", "swapped")
PROMPT_NAMES = {"completion": "eval/forced_choice_completion", "chat": "eval/forced_choice_chat"}


def resolve_style(tokenizer: Any, style: PromptStyle) -> Literal["completion", "chat"]:
    if style != "auto":
        return style
    return "chat" if getattr(tokenizer, "chat_template", None) else "completion"


def slot_labels(order: str) -> tuple[Label, Label]:
    """Which file label sits in slot A and slot B for an order."""
    return ("A", "B") if order == "original" else ("B", "A")


def build_request(item: ValueItem, order: str, tokenizer: Any, style: Literal["completion", "chat"],
                  context: str | None = None) -> ScoringRequest:
    """`context`: text shown before the question (a system turn in chat style), e.g. the spec for a pre-flight."""
    first, second = slot_labels(order)
    text = load_prompt(PROMPT_NAMES[style]).render(
        question=item.question, option_a=item.options[first], option_b=item.options[second]).rstrip()
    if style == "chat":
        turns = ([{"role": "system", "content": context}] if context else []) + [{"role": "user", "content": text}]
        rendered = tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
        prompt_ids = tokenizer(rendered, add_special_tokens=False)["input_ids"]
        prefix = ""
    else:
        prompt_ids = tokenizer(f"{context.rstrip()}\n\n{text}" if context else text)["input_ids"]
        prefix = " "
    # Continuations in file-label order (A then B), whatever slot they were shown in.
    continuations = [tokenizer(prefix + item.options[label], add_special_tokens=False)["input_ids"]
                     for label in LABELS]
    if any(not ids for ids in continuations):
        raise ValueError(f"item {item.id}: an option encodes to zero tokens")
    return ScoringRequest(prompt_ids=prompt_ids, continuations=continuations)


@dataclass
class ForcedChoiceScorer:
    """Scores value items with a loaded causal LM and its tokenizer."""

    model: Any
    tokenizer: Any
    style: PromptStyle = "auto"
    batch_size: int = 16  # items per forward pass (each item is 2 prompts and 4 continuations)
    context: str | None = None  # shown before every question (the spec-in-context pre-flight)
    # The context's KV cache (see `prefix_scoring`), kept between `score` calls and reusable by another
    # scorer with the same model, tokenizer, style and context (the pre-flight scores several item sets).
    prefix_cache: PrefixCache | None = None

    def __post_init__(self) -> None:
        self.resolved_style = resolve_style(self.tokenizer, self.style)
        self.model.eval()

    def _prefix_cache(self, requests: list[ScoringRequest], pad: int) -> PrefixCache | None:
        """The context's cache for these prompts: the kept one when they all start with it, else a new one
        covering the tokens they share, up to a few tokens before the context's end (so that the next item
        set, whose questions begin differently, can reuse it too). None without a context."""
        if not self.context or not requests:
            return None
        kept = self.prefix_cache
        if kept is not None and kept.model is self.model and all(
                r.prompt_ids[:len(kept.prefix_ids)] == kept.prefix_ids and len(r.prompt_ids) > len(kept.prefix_ids)
                for r in requests):
            return kept
        cap = context_token_length(self.tokenizer, self.resolved_style, self.context) - PREFIX_BACK_OFF
        length = min(shared_prefix_length(requests), cap)
        if length < 1:
            return None
        self.prefix_cache = PrefixCache(self.model, requests[0].prompt_ids[:length], pad)
        return self.prefix_cache

    @property
    def prompt_names(self) -> list[str]:
        return [PROMPT_NAMES[self.resolved_style]]

    def score(self, items: Sequence[ValueItem], on_batch: Callable[[int], None] | None = None
              ) -> Iterator[dict[str, Any]]:
        """Yield one record per item (see `combine_orders`), batch by batch.

        Items are batched by the length of what each order adds to the shared question (the widest
        pass), then of the question, so a batch pads little; records therefore come in that order, each
        carrying its item's id.
        """
        pad = pad_id_of(self.tokenizer)
        requests = [[build_request(item, order, self.tokenizer, self.resolved_style, self.context) for order in ORDERS]
                    for item in items]
        def widths(index: int) -> tuple[int, int]:
            prompts = [r.prompt_ids for r in requests[index]]
            shared = common_prefix_length(prompts)
            return max(map(len, prompts)) - shared, shared

        by_length = sorted(range(len(items)), key=widths)
        prefix = self._prefix_cache([r for pair in requests for r in pair], pad)
        for batch in _chunks(by_length, self.batch_size):
            batch_requests = [r for index in batch for r in requests[index]]
            scored = (prefix.score(batch_requests, group_size=len(ORDERS)) if prefix is not None
                      else score_requests(self.model, batch_requests, pad, group_size=len(ORDERS)))
            for position, index in enumerate(batch):
                by_order = {order: dict(zip(LABELS, scored[len(ORDERS) * position + k]))
                            for k, order in enumerate(ORDERS)}
                yield combine_orders(items[index], by_order)
            if on_batch:
                on_batch(len(batch))


PREFIX_BACK_OFF = 4  # tokens the cached prefix stops short of the context's end, so any item set shares it


def context_token_length(tokenizer: Any, style: Literal["completion", "chat"], context: str) -> int:
    """About how many leading prompt tokens are the context's (the system turn's, in chat style)."""
    if style == "chat":
        try:
            rendered = tokenizer.apply_chat_template([{"role": "system", "content": context}], tokenize=False)
            return len(tokenizer(rendered, add_special_tokens=False)["input_ids"])
        except Exception:  # a template that wants a user turn: no cap beyond what the prompts share
            return 1 << 30
    return len(tokenizer(context.rstrip())["input_ids"])


def combine_orders(item: ValueItem, by_order: dict[str, dict[Label, OptionScore]]) -> dict[str, Any]:
    """The per-item record: both orders' scores, the combined choice, and whether slot A won each order.

    Combined score of an option = mean over the two orders of its mean log-prob per token. `chose_target`
    is 1, 0, or 0.5 for an exact tie.
    """
    orders = []
    for order in ORDERS:
        scores = by_order[order]
        slot_a, _ = slot_labels(order)
        preferred: Label | None
        if scores["A"].mean_logprob == scores["B"].mean_logprob:
            preferred = None
        else:
            preferred = "A" if scores["A"].mean_logprob > scores["B"].mean_logprob else "B"
        orders.append({
            "order": order, "slot_a": slot_a,
            "scores": {label: {"sum_logprob": s.sum_logprob, "n_tokens": s.n_tokens, "mean_logprob": s.mean_logprob}
                       for label, s in scores.items()},
            "preferred": preferred,
            "preferred_value": item.values[preferred] if preferred else None,
            "slot_a_won": None if preferred is None else preferred == slot_a,
        })
    combined = {label: sum(by_order[o][label].mean_logprob for o in ORDERS) / len(ORDERS) for label in LABELS}
    target, other = item.target_label, ("B" if item.target_label == "A" else "A")
    if combined[target] == combined[other]:
        chosen, chose_target = None, 0.5
    else:
        chosen = target if combined[target] > combined[other] else other
        chose_target = 1.0 if chosen == target else 0.0
    preferred = [o["preferred"] for o in orders]
    return {
        "id": item.id, "domain": item.domain, "split": item.split, "target_value": item.target_value,
        "target_label": target, "option_chars": {label: len(item.options[label]) for label in LABELS},
        "orders": orders, "combined": combined, "chosen": chosen,
        "chosen_value": item.values[chosen] if chosen else None, "chose_target": chose_target,
        "margin": combined[target] - combined[other],
        "consistent": preferred[0] is not None and preferred[0] == preferred[1],
        "target_both_orders": preferred[0] == target and preferred[1] == target,
    }


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
