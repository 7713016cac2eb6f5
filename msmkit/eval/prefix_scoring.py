"""Continuation scoring after a long prefix shared by every prompt, with the prefix run once.

The spec-in-context pre-flight puts a ~3,000-token spec before every question. `continuation_scoring.
score_requests` pads a batch to its widest prompt, and on a model with sliding-window attention (Gemma 3:
512 on most layers) that padded width exceeds the window, so it falls back to ungrouped scoring: every
option order becomes a full 3k-token sequence of its own, and the pre-flight takes the better part of an
hour on a laptop.

Here the tokens common to every prompt (found on the prompts' actual token ids, so no tokenizer boundary
can differ) run once, batch 1, into a KV cache. Each group of prompts (an item's two option orders)
continues from a copy of it with its shared question, each prompt from a copy of that with its own
remainder, and the continuations run as in `score_requests`'s last pass. Every pass before the
continuations is batch 1 with no padding, so cache columns equal positions and sliding-window layers see
exactly what they would see in the full sequence; the continuation pass only pads after real tokens.
"""

from __future__ import annotations

import copy
from typing import Any, Sequence

import torch

from msmkit.eval.continuation_scoring import (
    OptionScore,
    ScoringRequest,
    common_prefix_length,
    continuation_pass,
    no_logits,
    returned_cache,
    with_cache,
)
from msmkit.eval.lm_head import head_for


class PrefixCache:
    """A prefix's KV cache, computed once, and scoring of requests whose prompts start with it."""

    def __init__(self, model: Any, prefix_ids: Sequence[int], pad_id: int = 0) -> None:
        if not prefix_ids:
            raise ValueError("a prefix cache needs at least one prefix token")
        self.model = model
        self.prefix_ids = list(prefix_ids)
        self.pad_id = pad_id
        self.device = next(model.parameters()).device
        self.head = head_for(model)
        self.cache = self._extend(None, 0, self.prefix_ids)

    @classmethod
    def for_requests(cls, model: Any, requests: Sequence[ScoringRequest], pad_id: int = 0) -> PrefixCache:
        """The longest token prefix every request's prompt shares, leaving each prompt at least one token."""
        return cls(model, requests[0].prompt_ids[:shared_prefix_length(requests)], pad_id)

    @torch.no_grad()
    def _extend(self, cache: Any, start: int, ids: Sequence[int]) -> Any:
        """Run `ids` (batch 1, positions from `start`) after `cache` (modified in place) and return the cache."""
        if not ids:
            return cache
        tokens = torch.tensor([list(ids)], device=self.device)
        mask = torch.ones((1, start + len(ids)), dtype=torch.long, device=self.device)
        out = self.model(input_ids=tokens, attention_mask=mask,
                         position_ids=torch.arange(start, start + len(ids), device=self.device)[None],
                         use_cache=True, logits_to_keep=no_logits(tokens).to(self.device),
                         **(with_cache(self.model, cache) if cache is not None else {}))
        return returned_cache(out)

    @torch.no_grad()
    def score(self, requests: Sequence[ScoringRequest], group_size: int = 1) -> list[list[OptionScore]]:
        """Summed log-probabilities of every continuation, as `score_requests` returns them."""
        if len(requests) % group_size:
            raise ValueError(f"{len(requests)} requests do not split into groups of {group_size}")
        start = len(self.prefix_ids)
        for r in requests:
            if r.prompt_ids[:start] != self.prefix_ids or len(r.prompt_ids) <= start:
                raise ValueError("every prompt must start with the cached prefix and go on past it")
            if not r.continuations or any(not c for c in r.continuations):
                raise ValueError("every request needs continuations of at least one token")
        results: list[list[OptionScore]] = []
        for first in range(0, len(requests), group_size):
            group = requests[first:first + group_size]
            # The group's shared question, stopping short of every prompt's last token (the continuation
            # pass puts it in front of each continuation).
            stem = min(common_prefix_length([r.prompt_ids for r in group]), *(len(r.prompt_ids) - 1 for r in group))
            group_cache = self._extend(copy.deepcopy(self.cache), start, group[0].prompt_ids[start:stem])
            for number, request in enumerate(group):
                own = group_cache if number == len(group) - 1 else copy.deepcopy(group_cache)
                prompt = request.prompt_ids
                own = self._extend(own, stem, prompt[stem:-1])
                mask = torch.ones((1, len(prompt) - 1), dtype=torch.long, device=self.device)
                conts = [list(c) for c in request.continuations]
                totals = continuation_pass(self.model, self.head, own, mask, [request], conts,
                                            list(range(len(conts))), len(conts), self.pad_id)
                results.append([OptionScore(sum_logprob=total, n_tokens=len(ids)) for total, ids in zip(totals, conts)])
        return results


def shared_prefix_length(requests: Sequence[ScoringRequest]) -> int:
    """How many leading prompt tokens every request shares, short of any prompt's last token."""
    prompts = [r.prompt_ids for r in requests]
    return max(min(common_prefix_length(prompts), *(len(p) - 1 for p in prompts)), 0) if prompts else 0
