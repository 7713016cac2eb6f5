"""Forced-choice scoring speed: msmkit's scorer vs a naive full-logits implementation.

    .venv/bin/python benchmarks/eval.py [--model embedded] [--items 300] [--batch-items 8] [--naive-rows 8]

Both score the same items in both option orders (2 prompts and 4 continuations per item). msmkit runs
each prompt once with a KV cache and projects only continuation positions through the LM head; the naive
version runs every prompt+continuation sequence in full and takes full-vocabulary logits at every
position. Reports both wall times, the speed-up (issue 6 target: >= 5x) and the largest difference
between the two sets of log-probabilities.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch

from msmkit.eval.forced_choice import ORDERS, build_request, resolve_style, score_requests
from msmkit.eval.items import load_value_items
from msmkit.eval.logprob_reference import full_logits_scores
from msmkit.models.loading import load_causal_lm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--items", type=int, default=300)
    parser.add_argument("--batch-items", type=int, default=8, help="items per forward pass (msmkit scorer)")
    parser.add_argument("--naive-rows", type=int, default=8, help="sequences per forward pass (naive)")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    items = (load_value_items("pro_america") + load_value_items("pro_affordability"))[:args.items]
    t0 = time.perf_counter()
    model, tokenizer = load_causal_lm(args.model)
    model.eval()
    load_s = time.perf_counter() - t0
    style = resolve_style(tokenizer, "auto")
    requests = [build_request(item, order, tokenizer, style) for item in items for order in ORDERS]
    pad = tokenizer.pad_token_id
    prompt_tokens = sum(len(r.prompt_ids) for r in requests)
    cont_tokens = sum(len(c) for r in requests for c in r.continuations)

    t0 = time.perf_counter()
    fast = []
    per_batch = 2 * args.batch_items
    for start in range(0, len(requests), per_batch):
        fast.extend(score_requests(model, requests[start:start + per_batch], pad))
    fast_s = time.perf_counter() - t0
    print(f"msmkit scorer: {fast_s:.1f} s", file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    naive = full_logits_scores(model, requests, pad, rows_per_batch=args.naive_rows)
    naive_s = time.perf_counter() - t0

    max_diff = max(abs(a.sum_logprob - b.sum_logprob) for fr, nr in zip(fast, naive) for a, b in zip(fr, nr))
    report = {
        "model": args.model, "items": len(items), "orders": 2, "prompts": len(requests),
        "continuations": 2 * len(requests), "prompt_tokens": prompt_tokens, "continuation_tokens": cont_tokens,
        "vocab": int(model.config.vocab_size), "threads": torch.get_num_threads(), "load_s": round(load_s, 1),
        "msmkit_s": round(fast_s, 2), "naive_full_logits_s": round(naive_s, 2),
        "speedup": round(naive_s / fast_s, 2), "max_abs_diff_sum_logprob": max_diff,
        "msmkit_items_per_s": round(len(items) / fast_s, 2),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
