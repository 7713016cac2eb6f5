"""Rates over agentic transcripts with intervals clustered by condition (epochs nested), and grader agreement.

Epochs of one condition share its prompt, so they are not independent items: 300 epochs of one condition
are one cluster, not 300 observations. With two or more conditions the interval is
`msmkit.eval.stats.clustered_interval` (the mean over conditions, a t interval on conditions - 1 degrees of
freedom), clipped to [0, 1] and never narrower than the Wilson interval that treats every transcript as
independent: that floor keeps a grid in which every condition gave the same count (all benign, say) from
getting a zero-width interval. One condition alone gets the Wilson interval over its epochs. In simulations of
the AM grid (condition rates from Beta(1, 2), 3 to 27 conditions, 30 or 300 epochs, 400-1,000 experiments
each) the 95% interval covered the true mean 91-96% of the time; a percentile cluster bootstrap covered 80%
with 3 conditions and 90% with 9, and a bootstrap over transcripts 52% with 27.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
from scipy import stats as scipy_stats

from msmkit.eval.stats import Estimate, clustered_interval

WILSON = "Wilson over the epochs of one condition"
FLOOR = "; widened to the Wilson interval over transcripts where that is wider"


def clustered_rate(values: Sequence[bool | float], clusters: Sequence[Hashable], *, level: float = 0.95) -> Estimate:
    """Rate of 0/1 `values` (mean over conditions), with an interval clustered by `clusters` (epochs nested)."""
    if len(values) != len(clusters):
        raise ValueError(f"{len(values)} values but {len(clusters)} cluster labels")
    if not values:
        raise ValueError("need at least one value")
    epochs: dict[str, list[float]] = defaultdict(list)
    for value, cluster in zip(values, clusters, strict=True):
        number = float(value)
        if number not in (0.0, 1.0):
            raise ValueError(f"clustered_rate takes 0/1 outcomes, got {value!r}")
        epochs[str(cluster)].append(number)
    count, n = int(sum(sum(v) for v in epochs.values())), len(values)
    wilson = scipy_stats.binomtest(count, n).proportion_ci(confidence_level=level, method="wilson")
    if len(epochs) == 1:
        return Estimate(count / n, float(wilson.low), float(wilson.high), n, level, WILSON, {"clusters": 1})
    result = clustered_interval({"run": epochs}, level)
    low, high = max(0.0, result.low), min(1.0, result.high)
    widened = wilson.low < low or wilson.high > high
    return Estimate(result.mean, min(low, float(wilson.low)), max(high, float(wilson.high)), n, level,
                    result.method + (FLOOR if widened else ""),
                    {"clusters": len(epochs), "standard_error": result.standard_error, "df": result.df})


def rate_block(values: Sequence[bool | None], clusters: Sequence[Hashable]) -> dict[str, Any]:
    """`clustered_rate` over the non-missing values, as a dict; {"mean": None, "n": 0} when there are none."""
    kept = [(v, c) for v, c in zip(values, clusters) if v is not None]
    if not kept:
        return {"mean": None, "n": 0}
    return clustered_rate([v for v, _ in kept], [c for _, c in kept]).to_dict()


def cohen_kappa(first: Sequence[bool], second: Sequence[bool]) -> float | None:
    """Cohen's kappa of two binary raters over the same items; None when chance agreement is total (undefined)."""
    if len(first) != len(second):
        raise ValueError(f"{len(first)} verdicts against {len(second)}")
    if not first:
        return None
    a = np.asarray(first, dtype=float)
    b = np.asarray(second, dtype=float)
    observed = float(np.mean(a == b))
    chance = float(a.mean() * b.mean() + (1 - a.mean()) * (1 - b.mean()))
    if chance == 1.0:
        return None
    return (observed - chance) / (1 - chance)


def agreement_block(pairs: Sequence[tuple[bool, bool]], clusters: Sequence[Hashable]) -> dict[str, Any]:
    """Agreement rate (clustered interval), Cohen's kappa and the 2x2 table of (first, second) verdicts."""
    first = [a for a, _ in pairs]
    second = [b for _, b in pairs]
    table = {"yes_yes": 0, "yes_no": 0, "no_yes": 0, "no_no": 0}
    for a, b in pairs:
        table[f"{'yes' if a else 'no'}_{'yes' if b else 'no'}"] += 1
    return {"compared": len(pairs), "agreement": rate_block([a == b for a, b in pairs], clusters),
            "kappa": cohen_kappa(first, second), "table": table}
