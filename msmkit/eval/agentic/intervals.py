"""Rates over agentic transcripts with intervals clustered by condition (epochs nested), and grader agreement.

Epochs of one condition share its prompt, so they are not independent items: 300 epochs of one condition
are one cluster, not 300 observations. The interval is a two-stage bootstrap: resample conditions with
replacement, then each drawn condition's epochs with replacement (for 0/1 outcomes that second stage is a
binomial draw at the condition's observed rate). With one condition it reduces to the bootstrap over epochs;
with many conditions the between-condition spread dominates, as it should.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from msmkit.eval.stats import DEFAULT_BOOTSTRAPS, Estimate

METHOD = "two-stage cluster bootstrap: conditions, then epochs within each ({n_boot})"


def clustered_rate(values: Sequence[bool | float], clusters: Sequence[Hashable], *, level: float = 0.95,
                   n_boot: int = DEFAULT_BOOTSTRAPS, seed: int = 0) -> Estimate:
    """Pooled rate of 0/1 `values` (share of all transcripts), with a percentile interval clustered by `clusters`."""
    if len(values) != len(clusters):
        raise ValueError(f"{len(values)} values but {len(clusters)} cluster labels")
    if not values:
        raise ValueError("need at least one value")
    totals: dict[Hashable, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for value, cluster in zip(values, clusters):
        number = float(value)
        if number not in (0.0, 1.0):
            raise ValueError(f"clustered_rate takes 0/1 outcomes, got {value!r}")
        totals[cluster][0] += number
        totals[cluster][1] += 1
    hits = np.array([t[0] for t in totals.values()])
    sizes = np.array([t[1] for t in totals.values()], dtype=np.int64)
    rng = np.random.default_rng(seed)
    drawn = rng.integers(0, len(sizes), size=(n_boot, len(sizes)))
    resampled = rng.binomial(sizes[drawn], hits[drawn] / sizes[drawn])
    means = resampled.sum(axis=1) / sizes[drawn].sum(axis=1)
    alpha = 1.0 - level
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2], method="inverted_cdf")
    return Estimate(float(hits.sum() / sizes.sum()), float(low), float(high), int(sizes.sum()), level,
                    METHOD.format(n_boot=n_boot), {"clusters": len(sizes)})


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
