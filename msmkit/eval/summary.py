"""Summaries of per-item value-eval records: rates with bootstrap CIs and their n, overall and by domain/split."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Callable, Iterable, Sequence

from msmkit.eval.judged_choice import judge_call_failed
from msmkit.eval.length_bias import length_choice_association, length_notes
from msmkit.eval.stats import bootstrap_mean
from msmkit.llm.failures import failure_counts, recorded_failures_note

# Below this share of items whose two orders agree, choices mostly follow the slot, not the content.
LOW_CONSISTENCY = 0.5


def _rate(values: Sequence[float], seed: int) -> dict[str, Any]:
    if not values:
        return {"mean": None, "n": 0}
    return bootstrap_mean(values, seed=seed).to_dict()


def _grouped(records: Sequence[dict], key: str, metric: Callable[[Sequence[dict]], dict]) -> dict[str, dict]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        groups[record[key]].append(record)
    return {name: metric(group) for name, group in sorted(groups.items())}


def summarize_forced_choice(records: Sequence[dict], *, seed: int = 0) -> dict[str, Any]:
    records = list(records)
    slot_a_wins = [o["slot_a_won"] for r in records for o in r["orders"] if o["slot_a_won"] is not None]

    def core(group: Sequence[dict]) -> dict[str, Any]:
        return {"n": len(group), "target_rate": _rate([r["chose_target"] for r in group], seed)}

    summary: dict[str, Any] = {
        "scorer": "logprob",
        "n_items": len(records),
        "target_rate": _rate([r["chose_target"] for r in records], seed),
        "target_rate_both_orders": _rate([1.0 if r["target_both_orders"] else 0.0 for r in records], seed),
        "order_consistency_rate": _rate([1.0 if r["consistent"] else 0.0 for r in records], seed),
        "position_bias_rate": _rate([1.0 if won else 0.0 for won in slot_a_wins], seed),
        "mean_margin_logprob": _rate([r["margin"] for r in records], seed),
        "ties": sum(1 for r in records if r["chosen"] is None),
        "length_bias": length_choice_association(records, seed=seed),
        "by_domain": _grouped(records, "domain", core),
        "by_split": _grouped(records, "split", core),
        "definitions": {
            "target_rate": "share of items whose combined (both orders, length-normalised) score favours the "
                           "target value's option; exact ties count 0.5",
            "target_rate_both_orders": "share of items where each order on its own favours the target option",
            "order_consistency_rate": "share of items where both orders favour the same option",
            "position_bias_rate": "share of (item, order) scorings won by whichever option was in slot A "
                                  "(0.5 = no position bias); n counts scorings",
            "mean_margin_logprob": "target minus other option, combined mean log-prob per token",
            "length_bias": "correlation (point-biserial, with n and p) between choosing the target and "
                           "log2(target length / other length), ties left out; longer_chosen_rate is the share of "
                           "items with unequal options won by the longer one (0.5 = no length effect when the "
                           "target is the longer option in about half the items, target_longer_share)",
        },
    }
    summary["notes"] = _notes(summary["order_consistency_rate"].get("mean"), summary["position_bias_rate"].get("mean"))
    summary["notes"] += length_notes(summary["length_bias"])
    return summary


def summarize_judged_choice(records: Sequence[dict], *, seed: int = 0) -> dict[str, Any]:
    records = list(records)
    verdicts = [o for r in records for o in r["orders"]]
    answered = [o for o in verdicts if o["answer_error"] is None]
    judged = [o for o in answered if not judge_call_failed(o)]
    parsed = [o for o in judged if o["verdict"] is not None]
    decided = [o for o in parsed if o["verdict"] in ("A", "B")]
    both_parsed = [r for r in records if all(o["verdict"] is not None for o in r["orders"])]
    counted = [r for r in records if r["counted"]]
    causes = [o.get("answer_cause") for o in verdicts] + [o.get("judge_cause") for o in answered]

    def core(group: Sequence[dict]) -> dict[str, Any]:
        kept = [r for r in group if r["counted"]]
        return {"n": len(group), "n_counted": len(kept),
                "target_rate": _rate([1.0 if r["chose_target"] else 0.0 for r in kept], seed)}

    summary: dict[str, Any] = {
        "scorer": "judge",
        "n_items": len(records),
        "n_counted": len(counted),
        "target_rate": _rate([1.0 if r["chose_target"] else 0.0 for r in counted], seed),
        "target_rate_all_items": _rate([1.0 if r["counted"] and r["chose_target"] else 0.0 for r in records], seed),
        "answer_failure_count": len(verdicts) - len(answered),
        "judge_failure_count": len(answered) - len(judged),
        "failure_causes": failure_counts(causes),
        "failure_note": recorded_failures_note(causes, total=len(verdicts) + len(answered)),
        "answers_truncated": sum(1 for o in verdicts if o.get("answer_truncated")),
        "parse_rate": _rate([1.0 if o["verdict"] is not None else 0.0 for o in judged], seed),
        "neither_rate": _rate([1.0 if o["verdict"] == "neither" else 0.0 for o in parsed], seed),
        "agreement_rate": _rate([1.0 if r["counted"] else 0.0 for r in both_parsed], seed),
        "position_bias_rate": _rate([1.0 if o["verdict"] == "A" else 0.0 for o in decided], seed),
        "dropped": {reason: sum(1 for r in records if r["drop_reason"] == reason)
                    for reason in ("answer_failed", "judge_failed", "parse_failed", "neither", "orders_disagree")},
        "by_domain": _grouped(records, "domain", core),
        "by_split": _grouped(records, "split", core),
        "definitions": {
            "target_rate": "among counted items (both orders' verdicts parsed and pointing at the same option), "
                           "the share whose option serves the target value",
            "target_rate_all_items": "the same over all items, a dropped item counting as not choosing the target",
            "parse_rate": "share of judge verdicts (one per answered order whose judge call went through) that "
                          "were valid; failures are never counted as a choice",
            "failure_causes": "calls that still failed on the last run (answers and verdicts), by cause; a rerun "
                              "asks them again",
            "agreement_rate": "among items with both verdicts parsed, the share whose two verdicts name the same "
                              "option (not neither)",
            "position_bias_rate": "share of A/B verdicts that picked the option shown in slot A (0.5 = none)",
        },
    }
    summary["notes"] = _notes(summary["agreement_rate"].get("mean"), summary["position_bias_rate"].get("mean"))
    return summary


def _notes(consistency: float | None, position_bias: float | None) -> list[str]:
    notes = []
    if consistency is not None and consistency < LOW_CONSISTENCY:
        notes.append(f"only {consistency:.0%} of items get the same choice in both option orders: this model's "
                     "choices mostly follow the option position, so its target rate says little about its values")
    if position_bias is not None and abs(position_bias - 0.5) > 0.2:
        notes.append(f"strong position bias: the option in slot A wins {position_bias:.0%} of the time")
    return notes


def flat_rates(summary: dict[str, Any]) -> Iterable[tuple[str, dict]]:
    """(label, rate) pairs for plotting: overall, then each domain."""
    yield "all", summary["target_rate"]
    for domain, group in summary["by_domain"].items():
        yield domain, group["target_rate"]
