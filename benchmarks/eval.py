"""Forced-choice scoring speed: msmkit's scorer vs a naive full-logits implementation.

    .venv/bin/python benchmarks/eval.py [--model embedded] [--items 300] [--naive-items 300] [--batch-items 8]
                                        [--naive-rows 8]

Both score the same items in both option orders (2 prompts and 4 continuations per item). msmkit runs
each prompt once with a KV cache and projects only continuation positions through the LM head; the naive
version runs every prompt+continuation sequence in full and takes full-vocabulary logits at every
position. Reports both wall times, the speed-up (issue 6 target: >= 5x) and the largest difference
between the two sets of log-probabilities. On a busy machine the naive run over all items can take hours:
`--naive-items N` times it on the first N items only, and the speed-up compares both on those N items
(msmkit's time for them is taken from the same run, batch by batch).
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
    parser.add_argument("--naive-items", type=int, default=None, help="time the naive version on the first N items")
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

    naive_items = min(args.naive_items or len(items), len(items))
    if naive_items < len(items) and naive_items % args.batch_items:
        raise SystemExit("--naive-items must be a multiple of --batch-items so both are timed on the same items")
    t0 = time.perf_counter()
    fast = []
    fast_subset_s = None
    per_batch = 2 * args.batch_items
    for start in range(0, len(requests), per_batch):
        fast.extend(score_requests(model, requests[start:start + per_batch], pad))
        if fast_subset_s is None and len(fast) >= 2 * naive_items:
            fast_subset_s = time.perf_counter() - t0
    fast_s = time.perf_counter() - t0
    print(f"msmkit scorer: {fast_s:.1f} s for {len(items)} items", file=sys.stderr, flush=True)

    subset = requests[:2 * naive_items]
    t0 = time.perf_counter()
    naive = full_logits_scores(model, subset, pad, rows_per_batch=args.naive_rows)
    naive_s = time.perf_counter() - t0

    max_diff = max(abs(a.sum_logprob - b.sum_logprob) for fr, nr in zip(fast, naive) for a, b in zip(fr, nr))
    report = {
        "model": args.model, "items": len(items), "orders": 2, "prompts": len(requests),
        "continuations": 2 * len(requests), "prompt_tokens": prompt_tokens, "continuation_tokens": cont_tokens,
        "vocab": int(model.config.vocab_size), "threads": torch.get_num_threads(), "load_s": round(load_s, 1),
        "msmkit_s_all_items": round(fast_s, 2), "msmkit_items_per_s": round(len(items) / fast_s, 3),
        "naive_items": naive_items, "msmkit_s_on_naive_items": round(fast_subset_s, 2),
        "naive_full_logits_s": round(naive_s, 2), "naive_items_per_s": round(naive_items / naive_s, 3),
        "speedup": round(naive_s / fast_subset_s, 2), "max_abs_diff_sum_logprob": max_diff,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
