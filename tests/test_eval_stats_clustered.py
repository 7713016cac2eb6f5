"""Agentic designs: epochs nested in conditions (and seeds). The interval is clustered by condition, so many
epochs of one condition do not pass for many independent items.

Simulation: outcome of epoch e of condition c under seed s ~ Bernoulli(clip(p + condition_c + seed_s + cell_sc)),
condition effects sd 0.2, seed effects sd 0.05, seed x condition sd 0.05; the truth is E[clip(p + Z, 0, 1)].
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from msmkit.eval.stats import bootstrap_mean, clustered_difference, clustered_interval

CONDITION_SD, SEED_SD, CELL_SD = 0.2, 0.05, 0.05


def simulate(rng: np.random.Generator, experiments: int, n_seeds: int, n_conditions: int, epochs: int, rate: float,
             conditions: np.ndarray | None = None, seed_sd: float = SEED_SD) -> tuple[np.ndarray, np.ndarray]:
    """experiments x seeds x conditions x epochs binary outcomes, and the condition effects used."""
    if conditions is None:
        conditions = rng.normal(0.0, CONDITION_SD, (experiments, 1, n_conditions, 1))
    seeds = rng.normal(0.0, seed_sd, (experiments, n_seeds, 1, 1))
    cells = rng.normal(0.0, CELL_SD, (experiments, n_seeds, n_conditions, 1))
    chance = np.clip(rate + conditions + seeds + cells, 0.0, 1.0)
    chance = np.broadcast_to(chance, (experiments, n_seeds, n_conditions, epochs))
    return (rng.random(chance.shape) < chance).astype(float), conditions


def as_mapping(experiment: np.ndarray) -> dict[str, dict[str, list[float]]]:
    return {f"seed{s}": {f"cond{c:02d}": list(experiment[s, c]) for c in range(experiment.shape[1])}
            for s in range(experiment.shape[0])}


def truth(rate: float, seed_sd: float = SEED_SD) -> float:
    sd = math.sqrt(CONDITION_SD ** 2 + seed_sd ** 2 + CELL_SD ** 2)
    low, high = -rate / sd, (1 - rate) / sd
    inside = rate * (scipy_stats.norm.cdf(high) - scipy_stats.norm.cdf(low))
    return float(inside + sd * (scipy_stats.norm.pdf(low) - scipy_stats.norm.pdf(high)) + scipy_stats.norm.sf(high))


@pytest.mark.parametrize("n_seeds, seed_sd", [(1, 0.0), (3, SEED_SD)])
def test_clustered_interval_covers_and_epochs_as_items_does_not(n_seeds: int, seed_sd: float) -> None:
    """One seed: one fixed model, no seed noise to count (the target is that model's rate over conditions)."""
    rng = np.random.default_rng(1780 + n_seeds)
    outcomes, _ = simulate(rng, 1000, n_seeds, 12, 25, 0.35, seed_sd=seed_sd)
    target = truth(0.35, seed_sd)
    results = [clustered_interval(as_mapping(experiment)) for experiment in outcomes]
    coverage = np.mean([r.low <= target <= r.high for r in results])
    assert 0.93 <= coverage <= 0.975, coverage
    first = results[0]
    assert (first.unit, first.n_items, first.n_seeds, first.n_outcomes) == ("condition", 12, n_seeds, 12 * 25 * n_seeds)
    assert "25 per seed and condition" in first.method and "condition" in first.components
    naive = [bootstrap_mean(experiment.ravel(), n_boot=500) for experiment in outcomes[:200]]
    assert np.mean([n.low <= target <= n.high for n in naive]) < 0.8


def test_clustered_interval_takes_unequal_epoch_counts_and_refuses_gaps() -> None:
    outcomes = {"run": {"a": [1, 0, 1], "b": [0, 0], "c": [1]}}
    result = clustered_interval(outcomes)
    assert result.mean == pytest.approx((2 / 3 + 0 + 1) / 3)  # each condition counts once
    assert "1 to 3 per seed and condition" in result.method and result.n_outcomes == 6
    with pytest.raises(ValueError, match="s1/b"):
        clustered_interval({"s0": {"a": [1], "b": [0]}, "s1": {"a": [1], "b": []}})
    with pytest.raises(ValueError, match="one condition"):
        clustered_interval({"run": {"a": [1, 0, 1]}})


def test_clustered_difference_pairs_by_condition_and_is_calibrated_at_zero() -> None:
    rng = np.random.default_rng(1790)
    first, conditions = simulate(rng, 1000, 3, 12, 10, 0.3)
    second, _ = simulate(rng, 1000, 3, 12, 10, 0.3, conditions)
    results = [clustered_difference(as_mapping(a), as_mapping(b)) for a, b in zip(first, second)]
    assert np.mean([r.p_value < 0.05 for r in results]) <= 0.06
    assert results[0].unit == "condition" and results[0].n_items == 12
    with pytest.raises(ValueError, match="different conditions"):
        clustered_difference({"s": {"a": [1], "b": [0]}}, {"s": {"a": [1], "c": [0]}})
