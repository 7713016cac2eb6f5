"""Does a model choose options for their length? The association between choosing the target option and how
much longer it is than the other, from per-item value-eval records.

Oriented by the target, so a value preference moves only the mean choice, not the correlation: x is
log2(target length / other length), y is 1 when the target was chosen and 0 when the other option was (ties and
uncounted items are left out). A point-biserial (Pearson) correlation near 0 means length does not steer choices.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
from scipy import stats as scipy_stats

from msmkit.eval.stats import bootstrap_mean

# A correlation at least this strong (and significant) gets a note in the summary.
NOTABLE_CORRELATION = 0.3


def _lengths(record: dict[str, Any], measure: str) -> tuple[int, int]:
    target = record["target_label"]
    other = "B" if target == "A" else "A"
    if measure == "characters":
        chars = record["option_chars"]
        return chars[target], chars[other]
    scores = record["orders"][0]["scores"]  # forced choice: token counts, the same in both orders
    return scores[target]["n_tokens"], scores[other]["n_tokens"]


def _choice(record: dict[str, Any]) -> float | None:
    if "counted" in record:  # judged choice: only items whose two verdicts agree have a choice
        return (1.0 if record["chose_target"] else 0.0) if record["counted"] else None
    return record["chose_target"] if record["chose_target"] in (0.0, 1.0) else None


def _measure(records: Sequence[dict[str, Any]]) -> str | None:
    if records and all("option_chars" in r for r in records):
        return "characters"
    if records and all(r.get("orders") and "scores" in r["orders"][0] for r in records):
        return "tokens"
    return None


def length_choice_association(records: Sequence[dict[str, Any]], *, seed: int = 0) -> dict[str, Any]:
    """Correlation between choosing the target and its relative length, with n, p and the longer-chosen rate."""
    measure = _measure(records)
    if measure is None:
        return {"n": 0, "measure": None, "note": "records carry no option lengths"}
    pairs = [(_lengths(r, measure), _choice(r)) for r in records]
    pairs = [(lengths, choice) for lengths, choice in pairs if choice is not None]
    unequal = [(lengths, choice) for lengths, choice in pairs if lengths[0] != lengths[1]]
    x = np.array([math.log2(target / other) for (target, other), _ in pairs])
    y = np.array([choice for _, choice in pairs])
    result: dict[str, Any] = {
        "measure": measure, "n": len(pairs), "n_unequal": len(unequal),
        "target_longer_share": (sum(t > o for (t, o), _ in unequal) / len(unequal)) if unequal else None,
        "correlation": None, "p_value": None,
        "longer_chosen_rate": bootstrap_mean([float(c == 1.0) if t > o else float(c == 0.0) for (t, o), c in unequal],
                                             seed=seed).to_dict() if unequal else {"mean": None, "n": 0},
        "method": "point-biserial correlation of choosing the target with log2(target length / other length)",
    }
    if len(pairs) >= 3 and np.ptp(x) > 0 and np.ptp(y) > 0:
        test = scipy_stats.pearsonr(x, y)
        result["correlation"], result["p_value"] = float(test.statistic), float(test.pvalue)
    return result


def length_notes(association: dict[str, Any]) -> list[str]:
    r, p = association.get("correlation"), association.get("p_value")
    if r is None or abs(r) < NOTABLE_CORRELATION or p >= 0.05:
        return []
    direction = "longer" if r > 0 else "shorter"
    return [f"choices follow option length: the {direction} option is favoured (r = {r:+.2f}, p = {p:.2g}, "
            f"n = {association['n']}), so part of the target rate may be a length preference"]
