"""Capability check: perplexity on held-out text and general-knowledge multiple-choice accuracy.

Perplexity uses overlapping windows (each token is scored once, with up to `window - stride` tokens of
context carried over) and computes the loss in chunks of positions, so full-vocabulary float32 logits
are never held for a whole window. MC questions are scored like forced choice: each option text is a
continuation of the prompt, the highest mean log-probability per token is the model's answer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, Sequence

import torch

from msmkit.eval.continuation_scoring import ScoringRequest, pad_id_of, score_requests
from msmkit.eval.forced_choice import PromptStyle, resolve_style
from msmkit.eval.items import McItem
from msmkit.eval.stats import bootstrap_mean
from msmkit.prompts import load_prompt

MC_PROMPTS = {"completion": "eval/mc_completion", "chat": "eval/mc_chat"}
MC_LABELS = ("A", "B", "C", "D")


class HeadMismatchError(RuntimeError):
    """The chunked LM-head computation disagrees with the model's own logits (unsupported architecture)."""


def _head_logits(model: Any, hidden: torch.Tensor) -> torch.Tensor:
    logits = model.get_output_embeddings()(hidden).float()
    cap = getattr(model.config, "final_logit_softcapping", None)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    return logits


@torch.no_grad()
def _check_head(model: Any, ids: torch.Tensor, hidden: torch.Tensor) -> None:
    """Compare our head on a few positions with the model's own forward, once per call."""
    keep = min(4, ids.shape[1])
    reference = model(input_ids=ids, logits_to_keep=keep).logits[0].float()
    ours = _head_logits(model, hidden[0, -keep:])
    if not torch.allclose(ours, reference, atol=1e-3, rtol=1e-3):
        raise HeadMismatchError("chunked LM-head logits differ from the model's own; this architecture applies "
                                "something after the LM head that msmkit does not reproduce")


@torch.no_grad()
def perplexity(model: Any, tokenizer: Any, text: str, *, window: int = 512, stride: int = 256,
               chunk: int = 128) -> dict[str, Any]:
    """Token-level perplexity of `text` (one document; BOS added by the tokenizer if it adds one)."""
    if not 0 < stride <= window:
        raise ValueError("need 0 < stride <= window")
    model.eval()
    device = next(model.parameters()).device
    ids = torch.tensor(tokenizer(text)["input_ids"], dtype=torch.long)
    if ids.numel() < 2:
        raise ValueError("text is too short to score")
    decoder = model.get_decoder()
    total_nll, scored, checked = 0.0, 0, False
    next_target = 1  # index of the first token not yet scored (token 0 has no context)
    start = 0
    while next_target < ids.numel():
        end = min(start + window, ids.numel())
        window_ids = ids[start:end].unsqueeze(0).to(device)
        hidden = decoder(input_ids=window_ids).last_hidden_state
        if not checked:
            _check_head(model, window_ids, hidden)
            checked = True
        # Positions p in the window predict token start+p+1; score targets next_target .. end-1.
        first_pos = next_target - start - 1
        for offset in range(first_pos, end - start - 1, chunk):
            stop = min(offset + chunk, end - start - 1)
            logits = _head_logits(model, hidden[0, offset:stop])
            targets = window_ids[0, offset + 1:stop + 1]
            total_nll += float(torch.nn.functional.cross_entropy(logits, targets, reduction="sum"))
            scored += stop - offset
        next_target = end
        if end == ids.numel():
            break
        start = end - max(1, window - stride)  # at least one token of context
    mean_nll = total_nll / scored
    return {"perplexity": math.exp(mean_nll), "mean_nll": mean_nll, "n_tokens": scored, "window": window,
            "stride": stride, "words": len(text.split())}


def mc_request(item: McItem, tokenizer: Any, style: Literal["completion", "chat"]) -> ScoringRequest:
    values = {f"option_{label.lower()}": item.options[label] for label in MC_LABELS}
    text = load_prompt(MC_PROMPTS[style]).render(question=item.question, **values).rstrip()
    if style == "chat":
        rendered = tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                                 add_generation_prompt=True)
        prompt_ids, prefix = tokenizer(rendered, add_special_tokens=False)["input_ids"], ""
    else:
        prompt_ids, prefix = tokenizer(text)["input_ids"], " "
    continuations = [tokenizer(prefix + item.options[label], add_special_tokens=False)["input_ids"]
                     for label in MC_LABELS]
    return ScoringRequest(prompt_ids=prompt_ids, continuations=continuations)


@dataclass
class McResult:
    records: list[dict[str, Any]]
    summary: dict[str, Any]


def mc_accuracy(model: Any, tokenizer: Any, items: Sequence[McItem], *, style: PromptStyle = "auto",
                batch_size: int = 8, seed: int = 0) -> McResult:
    resolved = resolve_style(tokenizer, style)
    model.eval()
    pad = pad_id_of(tokenizer)
    records = []
    for start in range(0, len(items), batch_size):
        batch = items[start:start + batch_size]
        scored = score_requests(model, [mc_request(item, tokenizer, resolved) for item in batch], pad)
        for item, scores in zip(batch, scored):
            means = {label: s.mean_logprob for label, s in zip(MC_LABELS, scores)}
            sums = {label: s.sum_logprob for label, s in zip(MC_LABELS, scores)}
            chosen = max(MC_LABELS, key=lambda label: means[label])
            chosen_by_sum = max(MC_LABELS, key=lambda label: sums[label])
            records.append({"id": item.id, "domain": item.domain, "answer": item.answer, "chosen": chosen,
                            "correct": chosen == item.answer, "chosen_by_sum": chosen_by_sum,
                            "correct_by_sum": chosen_by_sum == item.answer,
                            "mean_logprob": means, "sum_logprob": sums})
    accuracy = bootstrap_mean([1.0 if r["correct"] else 0.0 for r in records], seed=seed).to_dict()
    by_sum = bootstrap_mean([1.0 if r["correct_by_sum"] else 0.0 for r in records], seed=seed).to_dict()
    summary = {"accuracy": accuracy, "accuracy_unnormalised": by_sum, "chance": 0.25, "n_items": len(records),
               "prompt_style": resolved, "prompt": MC_PROMPTS[resolved],
               "definitions": {"accuracy": "option with the highest mean log-prob per token is the answer",
                               "accuracy_unnormalised": "option with the highest summed log-prob"}}
    return McResult(records=records, summary=summary)
