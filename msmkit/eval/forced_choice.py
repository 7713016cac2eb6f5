"""Forced choice by log-probability: which option text does the model itself find more likely?

Each item is shown with its options labelled A and B, in both orders (as written, and swapped). For
each order the model scores both option texts as the continuation of the prompt; an option's score is
its mean log-probability per token (the sum is recorded too), and the two orders are averaged, so
neither slot nor length decides the choice. How often the option in slot A wins is the position bias.

Only the needed log-probabilities are computed: the prompt of each order runs once with a KV cache,
the two continuations run against that cache, and only positions that predict a continuation token are
projected through the LM head (`logits_to_keep` with a boolean mask); no full-vocabulary logits are
made for the prompt tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Literal, Sequence

import torch

from msmkit.eval.items import LABELS, Label, ValueItem
from msmkit.prompts import load_prompt

PromptStyle = Literal["auto", "completion", "chat"]
ORDERS: tuple[str, str] = ("original", "swapped")
PROMPT_NAMES = {"completion": "eval/forced_choice_completion", "chat": "eval/forced_choice_chat"}


@dataclass(frozen=True)
class OptionScore:
    sum_logprob: float
    n_tokens: int

    @property
    def mean_logprob(self) -> float:
        return self.sum_logprob / self.n_tokens


@dataclass(frozen=True)
class ScoringRequest:
    """One prompt and the continuations to score after it."""

    prompt_ids: list[int]
    continuations: list[list[int]]


def resolve_style(tokenizer: Any, style: PromptStyle) -> Literal["completion", "chat"]:
    if style != "auto":
        return style
    return "chat" if getattr(tokenizer, "chat_template", None) else "completion"


def slot_labels(order: str) -> tuple[Label, Label]:
    """Which file label sits in slot A and slot B for an order."""
    return ("A", "B") if order == "original" else ("B", "A")


def build_request(item: ValueItem, order: str, tokenizer: Any, style: Literal["completion", "chat"]) -> ScoringRequest:
    first, second = slot_labels(order)
    text = load_prompt(PROMPT_NAMES[style]).render(
        question=item.question, option_a=item.options[first], option_b=item.options[second]).rstrip()
    if style == "chat":
        rendered = tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                                 add_generation_prompt=True)
        prompt_ids = tokenizer(rendered, add_special_tokens=False)["input_ids"]
        prefix = ""
    else:
        prompt_ids = tokenizer(text)["input_ids"]
        prefix = " "
    # Continuations in file-label order (A then B), whatever slot they were shown in.
    continuations = [tokenizer(prefix + item.options[label], add_special_tokens=False)["input_ids"]
                     for label in LABELS]
    if any(not ids for ids in continuations):
        raise ValueError(f"item {item.id}: an option encodes to zero tokens")
    return ScoringRequest(prompt_ids=prompt_ids, continuations=continuations)


def _pad_id(tokenizer: Any) -> int:
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return int(pad if pad is not None else 0)


@torch.no_grad()
def score_requests(model: Any, requests: Sequence[ScoringRequest], pad_id: int) -> list[list[OptionScore]]:
    """Score every continuation of every request; prompts run once, continuations reuse their KV cache."""
    device = next(model.parameters()).device
    n_prompts = len(requests)
    width = max(len(r.prompt_ids) for r in requests)
    prompt = torch.full((n_prompts, width), pad_id, dtype=torch.long)
    prompt_mask = torch.zeros((n_prompts, width), dtype=torch.long)
    for row, request in enumerate(requests):  # left padding: every prompt ends at the last column
        prompt[row, width - len(request.prompt_ids):] = torch.tensor(request.prompt_ids)
        prompt_mask[row, width - len(request.prompt_ids):] = 1
    prompt, prompt_mask = prompt.to(device), prompt_mask.to(device)
    positions = (prompt_mask.cumsum(-1) - 1).clamp(min=0)
    out = model(input_ids=prompt, attention_mask=prompt_mask, position_ids=positions, use_cache=True,
                logits_to_keep=1)
    first_logprobs = out.logits[:, -1, :].float().log_softmax(-1)  # predicts each continuation's first token

    per_prompt = len(requests[0].continuations)
    if any(len(r.continuations) != per_prompt for r in requests):
        raise ValueError("every request must have the same number of continuations")
    cache = out.past_key_values
    cache.batch_repeat_interleave(per_prompt)
    conts = [c for r in requests for c in r.continuations]
    cont_width = max(len(c) for c in conts)
    cont = torch.full((len(conts), cont_width), pad_id, dtype=torch.long)
    cont_mask = torch.zeros((len(conts), cont_width), dtype=torch.long)
    keep = torch.zeros((len(conts), cont_width), dtype=torch.bool)  # positions that predict a next cont token
    for row, ids in enumerate(conts):  # right padding: padding after the real tokens cannot affect them
        cont[row, :len(ids)] = torch.tensor(ids)
        cont_mask[row, :len(ids)] = 1
        keep[row, :len(ids) - 1] = True
    mask = torch.cat([prompt_mask.repeat_interleave(per_prompt, dim=0), cont_mask.to(device)], dim=1)
    start = prompt_mask.sum(-1).repeat_interleave(per_prompt).unsqueeze(1)
    cont_positions = start + torch.arange(cont_width, device=device).unsqueeze(0)
    rest_logprobs = None
    if keep.any():
        out = model(input_ids=cont.to(device), attention_mask=mask, position_ids=cont_positions,
                    past_key_values=cache, use_cache=False, logits_to_keep=keep.to(device))
        rest_logprobs = out.logits.reshape(-1, out.logits.shape[-1]).float().log_softmax(-1)

    results: list[list[OptionScore]] = []
    cursor = 0  # row into rest_logprobs (flattened in row-major order of `keep`)
    for p, request in enumerate(requests):
        scores = []
        for k, ids in enumerate(request.continuations):
            total = float(first_logprobs[p, ids[0]])
            for token in ids[1:]:
                total += float(rest_logprobs[cursor, token])
                cursor += 1
            scores.append(OptionScore(sum_logprob=total, n_tokens=len(ids)))
        results.append(scores)
    return results


@dataclass
class ForcedChoiceScorer:
    """Scores value items with a loaded causal LM and its tokenizer."""

    model: Any
    tokenizer: Any
    style: PromptStyle = "auto"
    batch_size: int = 8  # items per forward pass (each item is 2 prompts and 4 continuations)

    def __post_init__(self) -> None:
        self.resolved_style = resolve_style(self.tokenizer, self.style)
        self.model.eval()

    @property
    def prompt_names(self) -> list[str]:
        return [PROMPT_NAMES[self.resolved_style]]

    def score(self, items: Sequence[ValueItem], on_batch: Callable[[int], None] | None = None
              ) -> Iterator[dict[str, Any]]:
        """Yield one record per item (see `combine_orders`), batch by batch."""
        pad = _pad_id(self.tokenizer)
        for batch in _chunks(items, self.batch_size):
            requests = [build_request(item, order, self.tokenizer, self.resolved_style)
                        for item in batch for order in ORDERS]
            scored = score_requests(self.model, requests, pad)
            for index, item in enumerate(batch):
                by_order = {order: dict(zip(LABELS, scored[2 * index + k])) for k, order in enumerate(ORDERS)}
                yield combine_orders(item, by_order)
            if on_batch:
                on_batch(len(batch))


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
        "target_label": target, "orders": orders, "combined": combined, "chosen": chosen,
        "chosen_value": item.values[chosen] if chosen else None, "chose_target": chose_target,
        "margin": combined[target] - combined[other],
        "consistent": preferred[0] is not None and preferred[0] == preferred[1],
        "target_both_orders": preferred[0] == target and preferred[1] == target,
    }


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
