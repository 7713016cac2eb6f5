"""Condition-clustered rates (epochs nested) and grader agreement, checked against known answers."""

from __future__ import annotations

import numpy as np
import pytest

from msmkit.eval.agentic.intervals import agreement_block, clustered_rate, cohen_kappa
from msmkit.eval.stats import bootstrap_mean


def _simulate(rng: np.random.Generator, conditions: int, epochs: int) -> tuple[list[float], list[int]]:
    rates = rng.beta(1.0, 2.0, size=conditions)  # conditions differ a lot, as the AM grid's do; mean 1/3
    values = [float(v) for rate in rates for v in rng.random(epochs) < rate]
    return values, [c for c in range(conditions) for _ in range(epochs)]


@pytest.mark.parametrize("conditions", [27, 9, 3])
def test_the_clustered_interval_covers_the_mean_over_conditions_where_the_item_bootstrap_does_not(conditions):
    rng = np.random.default_rng(7)
    covered = naive = 0
    trials = 400
    for trial in range(trials):
        values, clusters = _simulate(rng, conditions=conditions, epochs=30)
        estimate = clustered_rate(values, clusters)
        covered += estimate.low <= 1 / 3 <= estimate.high
        if conditions == 27:
            item = bootstrap_mean(values, n_boot=1000, seed=trial)  # 810 "independent" transcripts
            naive += item.low <= 1 / 3 <= item.high
    assert 0.90 <= covered / trials <= 0.985, covered / trials
    if conditions == 27:
        assert naive / trials < 0.6  # epochs counted as items: far too narrow


def test_pooled_rate_and_degenerate_cases():
    estimate = clustered_rate([1, 0, 0, 1, 1, 1], ["a", "a", "a", "b", "b", "b"])
    assert estimate.mean == pytest.approx(4 / 6) and estimate.n == 6 and estimate.extra["clusters"] == 2
    unequal = clustered_rate([1, 0, 0, 0, 1], ["a", "a", "a", "a", "b"])  # each condition weighs the same
    assert unequal.mean == pytest.approx((1 / 4 + 1) / 2) and "over conditions" in unequal.method
    single = clustered_rate([1, 0, 1, 0] * 10, ["only"] * 40)  # one condition: Wilson over its epochs
    assert single.mean == 0.5 and (single.low, single.high) == pytest.approx((0.352, 0.648), abs=0.001)
    never = clustered_rate([0] * 60, [c for c in range(6) for _ in range(10)])  # identical conditions
    assert never.low == 0.0 and never.high == pytest.approx(0.0602, abs=0.001)  # not a zero-width interval
    with pytest.raises(ValueError, match="0/1"):
        clustered_rate([0.5], ["a"])
    with pytest.raises(ValueError, match="cluster labels"):
        clustered_rate([1, 0], ["a"])


def test_cohen_kappa_and_agreement_table():
    # 50 items: 20 both yes, 5 yes/no, 10 no/yes, 15 both no -> observed 0.7, chance 0.5, kappa 0.4
    first = [True] * 25 + [False] * 25
    second = [True] * 20 + [False] * 5 + [True] * 10 + [False] * 15
    assert cohen_kappa(first, second) == pytest.approx(0.4)
    assert cohen_kappa(first, first) == pytest.approx(1.0)
    assert cohen_kappa([True, True], [True, True]) is None  # no variation: kappa is undefined
    block = agreement_block(list(zip(first, second, strict=True)), [i % 5 for i in range(50)])
    assert block["agreement"]["mean"] == pytest.approx(0.7) and block["compared"] == 50
    assert block["table"] == {"yes_yes": 20, "yes_no": 5, "no_yes": 10, "no_no": 15}
