"""Forced-choice scoring speed: msmkit's scorer vs a naive full-logits implementation.

    .venv/bin/python benchmarks/eval.py [--model embedded] [--items 300] [--naive-items 300] [--batch-items 16]
                                        [--naive-rows 1,8] [--repeats 3]

Both score the same items in both option orders (2 prompts and 4 continuations per item). msmkit's
`ForcedChoiceScorer` runs each item's shared question once, each order's remainder and continuations
against that KV cache, and projects only continuation positions through the LM head (screened in
bfloat16 where that is exact enough, see `msmkit.eval.lm_head`). The naive version runs every
prompt+continuation sequence in full and takes full-vocabulary logits at every position; `--naive-rows`
says how many sequences per forward pass, and by default both the literal one-at-a-time script (1) and
a batched one (8) are timed.

Both are warmed up on one item first. The naive run over all items takes minutes, so `--naive-items N`
scores the first N items with both and compares the medians of `--repeats` interleaved timings; the
scorer's time on all `--items` is reported as throughput. Reports the
speed-up (issue 6 target: >= 5x), the largest difference in summed log-probability and how many prompts'
preferred option differs between the two.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch

from msmkit.eval.continuation_scoring import OptionScore, pad_id_of
from msmkit.eval.forced_choice import ORDERS, ForcedChoiceScorer, build_request
from msmkit.eval.items import LABELS, ValueItem, load_value_items
from msmkit.eval.lm_head import head_for
from msmkit.eval.logprob_reference import full_logits_scores
from msmkit.models.loading import load_causal_lm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--items", type=int, default=300)
    parser.add_argument("--batch-items", type=int, default=16, help="items per forward pass (msmkit scorer)")
    parser.add_argument("--naive-rows", type=lambda text: [int(n) for n in text.split(",")], default=[1, 8],
                        help="naive versions to time, as sequences per forward pass (comma-separated)")
    parser.add_argument("--naive-items", type=int, default=None,
                        help="compare with the naive version on the first N items")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each on the N items; medians compared")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    items = (load_value_items("pro_america") + load_value_items("pro_affordability"))[:args.items]
    subset = items[:min(args.naive_items or len(items), len(items))]
    t0 = time.perf_counter()
    model, tokenizer = load_causal_lm(args.model)
    model.eval()
    load_s = time.perf_counter() - t0
    scorer = ForcedChoiceScorer(model, tokenizer, batch_size=args.batch_items)
    requests = [build_request(item, order, tokenizer, scorer.resolved_style) for item in items for order in ORDERS]

    pad = pad_id_of(tokenizer)
    # Untimed warm-up of all: one-time costs (the head check and its bfloat16 copy, kernel set-up) are
    # not what the comparison is about.
    _timed_scorer(scorer, items[:1])
    for rows in args.naive_rows:
        full_logits_scores(model, requests[:1], pad, rows_per_batch=rows)
    naive_requests = requests[:len(ORDERS) * len(subset)]
    fast_times: list[float] = []
    naive_times: dict[int, list[float]] = {rows: [] for rows in args.naive_rows}
    for _ in range(args.repeats):  # interleaved, so a slow spell on a shared machine hits all of them
        seconds, fast_records = _timed_scorer(scorer, subset)
        fast_times.append(seconds)
        for rows in args.naive_rows:
            t0 = time.perf_counter()
            naive = full_logits_scores(model, naive_requests, pad, rows_per_batch=rows)
            naive_times[rows].append(time.perf_counter() - t0)
    fast_subset_s = statistics.median(fast_times)
    fast_s, _ = _timed_scorer(scorer, items) if len(subset) < len(items) else (fast_subset_s, fast_records)
    print(f"msmkit scorer: {fast_s:.1f} s for {len(items)} items", file=sys.stderr, flush=True)

    fast = _option_scores(fast_records, subset)
    head = head_for(model)
    report = {
        "model": args.model, "items": len(items), "orders": len(ORDERS), "prompts": len(requests),
        "continuations": 2 * len(requests), "prompt_tokens": sum(len(r.prompt_ids) for r in requests),
        "continuation_tokens": sum(len(c) for r in requests for c in r.continuations),
        "vocab": int(model.config.vocab_size), "threads": torch.get_num_threads(), "load_s": round(load_s, 1),
        "batch_items": args.batch_items, "msmkit_s_all_items": round(fast_s, 2),
        "msmkit_items_per_s": round(len(items) / fast_s, 3),
        "compared_on_items": len(subset), "repeats": args.repeats,
        "msmkit_s": {"median": round(fast_subset_s, 2), "each": [round(t, 2) for t in fast_times]},
        "naive_full_logits": {
            f"{rows}_rows_per_pass": {"median_s": round(statistics.median(times), 2),
                                      "each_s": [round(t, 2) for t in times],
                                      "speedup": round(statistics.median(times) / fast_subset_s, 2)}
            for rows, times in naive_times.items()},
        "max_abs_diff_sum_logprob": max(abs(a.sum_logprob - b.sum_logprob)
                                        for f, n in zip(fast, naive) for a, b in zip(f, n)),
        "prompts_preferring_another_option": sum(_preferred(f) != _preferred(n) for f, n in zip(fast, naive)),
        "head": "model logits" if head is None else ("bf16-screened" if head.screen is not None else "fp32"),
        "head_rows_recomputed_in_full": head.rows_recomputed if head else None,
    }
    print(json.dumps(report, indent=2))


def _timed_scorer(scorer: ForcedChoiceScorer, items: list[ValueItem]) -> tuple[float, dict[str, dict]]:
    t0 = time.perf_counter()
    records = {record["id"]: record for record in scorer.score(items)}
    return time.perf_counter() - t0, records


def _option_scores(records: dict[str, dict], items: list[ValueItem]) -> list[list[OptionScore]]:
    """The scorer's per-prompt option scores, in the naive version's order (item, order, then label)."""
    return [[OptionScore(sum_logprob=order["scores"][label]["sum_logprob"], n_tokens=order["scores"][label]["n_tokens"])
             for label in LABELS]
            for item in items for order in records[item.id]["orders"]]


def _preferred(scores: list[OptionScore]) -> int:
    return max(range(len(scores)), key=lambda k: scores[k].mean_logprob)


if __name__ == "__main__":
    main()
