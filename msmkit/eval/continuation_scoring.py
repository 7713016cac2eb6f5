"""Summed log-probabilities of continuations after prompts, computing each shared token once.

Requests come in consecutive groups (a value item's two option orders) whose prompts share a prefix.
Three passes share one KV cache:

1. the common prefix of each group (left-padded);
2. each prompt's own remainder except its last token (right-padded; the group's cache repeated per prompt);
3. each continuation, preceded by its prompt's last token (right-padded, in buckets of similar length; the
   prompt's cache copied per continuation), so every log-probability, the first token's included, comes
   from this pass.

Padding inside the cache is masked and positions count real tokens only, so each token sees exactly the
context it would see alone. Only positions that predict a continuation token reach the LM head, through
`lm_head.HeadProjection` when the model's head can be reproduced (screened in bfloat16, exact where the
probability mass is) and through the model's own logits otherwise. No full-vocabulary log-softmax is
written.
"""

from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass
from typing import Any, Sequence

import torch

from msmkit.eval.lm_head import HeadProjection, head_for, logprobs_of


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


def pad_id_of(tokenizer: Any) -> int:
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return int(pad if pad is not None else 0)


@torch.no_grad()
def score_requests(model: Any, requests: Sequence[ScoringRequest], pad_id: int, group_size: int = 1
                   ) -> list[list[OptionScore]]:
    """Score every continuation of every request; see the module docstring for the passes."""
    if len(requests) % group_size:
        raise ValueError(f"{len(requests)} requests do not split into groups of {group_size}")
    per_prompt = len(requests[0].continuations)
    if any(len(r.continuations) != per_prompt for r in requests):
        raise ValueError("every request must have the same number of continuations")
    if any(not r.prompt_ids for r in requests) or any(not c for r in requests for c in r.continuations):
        raise ValueError("every prompt and continuation needs at least one token")
    groups = [requests[start:start + group_size] for start in range(0, len(requests), group_size)]
    stems = [min(common_prefix_length([r.prompt_ids for r in group]), *(len(r.prompt_ids) - 1 for r in group))
             for group in groups]
    tails = [r.prompt_ids[stem:-1] for group, stem in zip(groups, stems) for r in group]
    conts = [c for r in requests for c in r.continuations]
    window = _sliding_window(model)
    if group_size > 1 and window is not None:
        # Sliding windows count cache columns, not positions, so padding between a prompt's shared part and
        # its remainder could push real tokens out of the window. Without groups every remainder is empty
        # and the real tokens of each row stay contiguous.
        width = max(stems) + max(len(t) for t in tails) + max(len(c) for c in conts)
        if width > window:
            return score_requests(model, requests, pad_id, group_size=1)
    device = next(model.parameters()).device

    stem_ids, stem_mask = _padded([group[0].prompt_ids[:stem] or [pad_id] for group, stem in zip(groups, stems)],
                                  pad_id, left=True)
    stem_mask[torch.tensor(stems) == 0] = 0  # nothing shared: a masked placeholder keeps the shapes regular
    mask = stem_mask.to(device)
    out = model(input_ids=stem_ids.to(device), attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0),
                use_cache=True, logits_to_keep=no_logits(stem_ids).to(device))
    cache = returned_cache(out)
    cache.batch_repeat_interleave(group_size)
    mask = mask.repeat_interleave(group_size, dim=0)
    if any(tails):
        tail_ids, tail_mask = _padded([t or [pad_id] for t in tails], pad_id, left=False)
        tail_mask[torch.tensor([not t for t in tails])] = 0
        start = mask.sum(-1, keepdim=True)
        mask = torch.cat([mask, tail_mask.to(device)], dim=1)
        out = model(input_ids=tail_ids.to(device), attention_mask=mask,
                    position_ids=start + torch.arange(tail_ids.shape[1], device=device), use_cache=True,
                    logits_to_keep=no_logits(tail_ids).to(device), **with_cache(model, cache))
        cache = returned_cache(out)

    # Pass 3 in buckets of similar continuation length: continuations run from 1 to 20+ tokens, and one
    # padded batch would spend a third of its rows on padding.
    totals = [0.0] * len(conts)
    head = head_for(model)
    buckets = _length_buckets([len(c) for c in conts])
    for number, bucket in enumerate(buckets):
        own_cache = cache if number == len(buckets) - 1 else copy.deepcopy(cache)  # each pass narrows its copy
        for index, total in zip(bucket, continuation_pass(model, head, own_cache, mask, requests, conts, bucket,
                                                           per_prompt, pad_id)):
            totals[index] = total
    scores = [OptionScore(sum_logprob=total, n_tokens=len(ids)) for total, ids in zip(totals, conts)]
    return [scores[p * per_prompt:(p + 1) * per_prompt] for p in range(len(requests))]


def continuation_pass(model: Any, head: HeadProjection | None, cache: Any, mask: torch.Tensor,
                       requests: Sequence[ScoringRequest], conts: list[list[int]], bucket: list[int],
                       per_prompt: int, pad_id: int) -> list[float]:
    """Summed log-probabilities of the continuations `bucket` (indices into `conts`), each run after the
    cached prompt it belongs to with that prompt's last token in front. Narrows `cache` to those rows."""
    device = mask.device
    owners = torch.tensor([index // per_prompt for index in bucket], device=device)
    cache.batch_select_indices(owners)
    inputs = [[requests[index // per_prompt].prompt_ids[-1]] + conts[index][:-1] for index in bucket]
    ids, cont_mask = _padded(inputs, pad_id, left=False)
    targets, _ = _padded([conts[index] for index in bucket], pad_id, left=False)
    keep = cont_mask.bool()
    mask = mask[owners]
    start = mask.sum(-1, keepdim=True)
    out = model(input_ids=ids.to(device), attention_mask=torch.cat([mask, cont_mask.to(device)], dim=1),
                position_ids=start + torch.arange(ids.shape[1], device=device), use_cache=False,
                logits_to_keep=(no_logits(ids) if head else keep).to(device), output_hidden_states=head is not None,
                **with_cache(model, cache))
    wanted = targets[keep].to(device)
    if head is not None:
        logprobs = head.token_logprobs(out.hidden_states[-1][keep.to(device)], wanted)
    else:
        logprobs = logprobs_of(out.logits.reshape(len(wanted), -1), wanted)
    row_of = keep.nonzero()[:, 0].to(device)
    return torch.zeros(len(bucket), device=device, dtype=logprobs.dtype).index_add_(0, row_of, logprobs).tolist()


BUCKET_COST_ROWS = 24  # a forward pass's fixed cost, in padded rows, when deciding how to split a batch


def _length_buckets(lengths: Sequence[int], max_buckets: int = 3) -> list[list[int]]:
    """Indices grouped into at most `max_buckets` runs of sorted length, minimising padded rows plus a
    fixed cost per pass (exact dynamic programme; batches are small)."""
    order = sorted(range(len(lengths)), key=lambda index: lengths[index])
    n = len(order)
    # best[k][j]: cost of splitting the first j sorted indices into k buckets; cut[k][j]: where the last starts.
    best = [[0.0] + [float("inf")] * n for _ in range(max_buckets + 1)]
    cut = [[0] * (n + 1) for _ in range(max_buckets + 1)]
    for k in range(1, max_buckets + 1):
        for j in range(1, n + 1):
            for i in range(k - 1, j):
                cost = best[k - 1][i] + (j - i) * lengths[order[j - 1]] + BUCKET_COST_ROWS
                if cost < best[k][j]:
                    best[k][j], cut[k][j] = cost, i
    k = min(range(1, max_buckets + 1), key=lambda count: best[count][n])
    buckets, j = [], n
    while k:
        i = cut[k][j]
        buckets.append(order[i:j])
        j, k = i, k - 1
    return buckets[::-1]


def _padded(rows: Sequence[list[int]], pad_id: int, *, left: bool) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(ids) for ids in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for row, tokens in enumerate(rows):
        columns = slice(width - len(tokens), width) if left else slice(0, len(tokens))
        ids[row, columns] = torch.tensor(tokens)
        mask[row, columns] = 1
    return ids, mask


def no_logits(ids: torch.Tensor) -> torch.Tensor:
    """A `logits_to_keep` mask selecting nothing: the pass only fills the cache (or yields hidden states)."""
    return torch.zeros(ids.shape, dtype=torch.bool)


def with_cache(model: Any, cache: Any) -> dict[str, Any]:
    """The KV-cache argument under the name this transformers version takes (`cache` from 5.x on)."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model  # a PEFT wrapper takes **kwargs
    name = "cache" if "cache" in inspect.signature(inner.forward).parameters else "past_key_values"
    return {name: cache}


def returned_cache(out: Any) -> Any:
    return out.cache if getattr(out, "cache", None) is not None else out.past_key_values


def _sliding_window(model: Any) -> int | None:
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    if getattr(config, "use_sliding_window", True) is False:
        return None
    window = getattr(config, "sliding_window", None)
    return int(window) if window else None


def common_prefix_length(rows: Sequence[list[int]]) -> int:
    length = 0
    for column in zip(*rows):
        if any(token != column[0] for token in column):
            break
        length += 1
    return length
