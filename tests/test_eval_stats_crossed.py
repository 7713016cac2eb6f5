"""Intervals for the crossed design (training seeds x the same items) checked against simulations with known truth.

Simulation: outcome y[s, i] ~ Bernoulli(clip(p + item_i + seed_s, 0, 1)), item effects ~ N(0, 0.25^2), seed effects
~ N(0, 0.06^2), 100 binary items (issue 17's design). The truth is the mean over the seed and item populations,
E[clip(p + Z, 0, 1)] with Z ~ N(0, 0.25^2 + 0.06^2), in closed form. Every simulation has a fixed random seed.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats
from scipy.optimize import brentq

from msmkit.eval.stats import (
    DEFAULT_ITEM_SD,
    DEFAULT_SEED_SD,
    aggregate_seeds,
    crossed_difference,
    crossed_interval,
    crossed_scores,
    minimum_detectable_difference,
)

N_ITEMS = 100
EXPERIMENTS = 2000


def clipped_normal_mean(center: float, sd: float) -> float:
    """E[clip(X, 0, 1)] for X ~ N(center, sd^2)."""
    low, high = (0 - center) / sd, (1 - center) / sd
    inside = center * (scipy_stats.norm.cdf(high) - scipy_stats.norm.cdf(low))
    return float(inside + sd * (scipy_stats.norm.pdf(low) - scipy_stats.norm.pdf(high)) + scipy_stats.norm.sf(high))


def simulate(rng: np.random.Generator, n_seeds: int, rate: float, item_effects: np.ndarray, *,
             seed_sd: float = DEFAULT_SEED_SD) -> np.ndarray:
    """Experiments x seeds x items binary outcomes for one arm, given each experiment's item effects (exp x items)."""
    seed_effects = rng.normal(0.0, seed_sd, (item_effects.shape[0], n_seeds, 1))
    chance = np.clip(rate + item_effects[:, None, :] + seed_effects, 0.0, 1.0)
    return (rng.random(chance.shape) < chance).astype(float)


def item_effects(rng: np.random.Generator, experiments: int = EXPERIMENTS) -> np.ndarray:
    return rng.normal(0.0, DEFAULT_ITEM_SD, (experiments, N_ITEMS))


def truth(rate: float, seed_sd: float = DEFAULT_SEED_SD, extra_sd: float = 0.0) -> float:
    return clipped_normal_mean(rate, math.sqrt(DEFAULT_ITEM_SD ** 2 + seed_sd ** 2 + extra_sd ** 2))


def rates_apart(difference: float) -> tuple[float, float]:
    """Rates around 0.5 whose true (clipped) means differ by exactly `difference`."""
    gap = brentq(lambda d: truth(0.5 + d / 2) - truth(0.5 - d / 2) - difference, 0.0, 4 * difference)
    return 0.5 + gap / 2, 0.5 - gap / 2


@pytest.mark.parametrize("n_seeds", [3, 10])
def test_crossed_interval_covers_the_truth_at_its_level(n_seeds: int) -> None:
    rng = np.random.default_rng(1700 + n_seeds)
    outcomes = simulate(rng, n_seeds, 0.6, item_effects(rng))
    target = truth(0.6)
    results = [crossed_interval(experiment) for experiment in outcomes]
    coverage = np.mean([r.low <= target <= r.high for r in results])
    assert 0.93 <= coverage <= 0.97, coverage
    assert all(r.n_seeds == n_seeds and r.n_items == N_ITEMS and r.method.startswith("two-way") for r in results)
    # A too-wide interval would cover too: the interval must not be much wider than the true spread of the mean.
    true_sd = np.std([r.mean for r in results])
    assert np.median([r.standard_error for r in results]) < 1.15 * true_sd


def test_old_two_level_bootstrap_under_covers_in_the_same_simulation() -> None:
    """aggregate_seeds resamples items independently within each seed, dividing item noise by the seed count."""
    rng = np.random.default_rng(1710)
    outcomes = simulate(rng, 10, 0.6, item_effects(rng, 120))
    target = truth(0.6)
    old = [aggregate_seeds({f"seed{k}": row for k, row in enumerate(experiment)}, n_boot=200)["seed_and_item_level"]
           for experiment in outcomes]
    new = [crossed_interval(experiment) for experiment in outcomes]
    old_coverage = np.mean([o["low"] <= target <= o["high"] for o in old])
    new_coverage = np.mean([n.low <= target <= n.high for n in new])
    assert old_coverage < 0.91 and new_coverage - old_coverage >= 0.05, (old_coverage, new_coverage)
    assert np.mean([o["high"] - o["low"] for o in old]) < 0.8 * np.mean([n.high - n.low for n in new])


@pytest.mark.parametrize("n_seeds", [3, 10])
def test_crossed_difference_rejects_at_most_alpha_when_arms_are_equal(n_seeds: int) -> None:
    rng = np.random.default_rng(1720 + n_seeds)
    shared = item_effects(rng)  # paired items: the same item effects in both arms
    first, second = simulate(rng, n_seeds, 0.6, shared), simulate(rng, n_seeds, 0.6, shared)
    results = [crossed_difference(a, b) for a, b in zip(first, second)]
    rejection = np.mean([r.p_value < 0.05 for r in results])
    assert 0.03 <= rejection <= 0.06, rejection
    assert np.mean([r.low <= 0.0 <= r.high for r in results]) == pytest.approx(1 - rejection)


def test_crossed_difference_is_calibrated_when_the_effect_varies_by_item() -> None:
    """An item x arm interaction (the effect is +0.1 on some items, -0.1 on others, zero on average) is noise the
    difference must count."""
    rng = np.random.default_rng(1730)
    shared = item_effects(rng)
    varying = rng.normal(0.0, 0.1, shared.shape)
    first, second = simulate(rng, 3, 0.5, shared + varying), simulate(rng, 5, 0.5, shared)
    results = [crossed_difference(a, b) for a, b in zip(first, second)]
    assert np.mean([r.p_value < 0.05 for r in results]) <= 0.06
    assert all(r.n_seeds_first == 3 and r.n_seeds_second == 5 for r in results)
    assert np.median([r.components["interaction"] for r in results]) == pytest.approx(0.01, rel=0.35)


@pytest.mark.parametrize("n_seeds, lowest, highest", [(3, 0.1, 0.35), (10, 0.6, 0.9)])
def test_crossed_difference_power_for_a_true_difference_of_a_tenth(n_seeds: int, lowest: float, highest: float
                                                                   ) -> None:
    """10 seeds detect 0.1 in most experiments; 3 seeds, when seeds vary this much, only in about one in five."""
    rng = np.random.default_rng(1740 + n_seeds)
    shared = item_effects(rng)
    high_rate, low_rate = rates_apart(0.1)
    first, second = simulate(rng, n_seeds, high_rate, shared), simulate(rng, n_seeds, low_rate, shared)
    results = [crossed_difference(a, b) for a, b in zip(first, second)]
    power = np.mean([r.p_value < 0.05 for r in results])
    assert lowest <= power <= highest, power
    assert 0.93 <= np.mean([r.low <= 0.1 <= r.high for r in results]) <= 0.97


@pytest.mark.parametrize("n_seeds", [3, 10])
def test_minimum_detectable_difference_matches_simulated_power(n_seeds: int) -> None:
    design = minimum_detectable_difference(n_seeds, N_ITEMS)
    assert design.seed_sd == DEFAULT_SEED_SD and design.item_sd == DEFAULT_ITEM_SD
    rng = np.random.default_rng(1750 + n_seeds)
    shared = item_effects(rng)
    high_rate, low_rate = rates_apart(design.difference)
    first, second = simulate(rng, n_seeds, high_rate, shared), simulate(rng, n_seeds, low_rate, shared)
    power = np.mean([crossed_difference(a, b).p_value < 0.05 for a, b in zip(first, second)])
    assert 0.74 <= power <= 0.86, (design.difference, power)


def test_minimum_detectable_difference_shrinks_with_seeds_and_grows_with_noise() -> None:
    three, ten = minimum_detectable_difference(3, 100), minimum_detectable_difference(10, 100)
    assert 0.18 < three.difference < 0.3 and 0.08 < ten.difference < 0.12
    assert minimum_detectable_difference(10, 100, interaction_sd=0.2).difference > ten.difference
    assert minimum_detectable_difference(10, 400).difference < ten.difference
    single = minimum_detectable_difference(1, 100)
    assert single.notes and "one seed" in single.notes[0]
    with pytest.raises(ValueError, match="2 items"):
        minimum_detectable_difference(3, 1)


def test_components_of_an_exactly_additive_table() -> None:
    """y = mu + seed + item with no residual: the components are the sample variances of the effects."""
    seeds, items = np.array([0.1, -0.05, -0.05]), np.array([0.3, -0.1, 0.0, -0.2])
    table = 0.5 + seeds[:, None] + items[None, :]
    result = crossed_interval(table)
    assert result.mean == pytest.approx(0.5)
    assert result.components["seed"] == pytest.approx(seeds.var(ddof=1))
    assert result.components["item"] == pytest.approx(items.var(ddof=1))
    assert result.components["residual"] == pytest.approx(0.0, abs=1e-15)
    expected = seeds.var(ddof=1) / 3 + items.var(ddof=1) / 4
    assert result.standard_error == pytest.approx(math.sqrt(expected))
    assert result.dominant == "item" and result.n_outcomes == 12  # 0.0425/4 against 0.0075/3
    # Satterthwaite df of MS_seed/(S*I) + MS_item/(S*I): (a + b)^2 / (a^2/2 + b^2/3).
    a, b = seeds.var(ddof=1) / 3, items.var(ddof=1) / 4
    assert result.df == pytest.approx((a + b) ** 2 / (a ** 2 / 2 + b ** 2 / 3))


def test_one_seed_is_a_t_interval_over_items_and_says_so() -> None:
    scores = [[1, 0, 1, 1, 0, 1, 1, 1]]
    result = crossed_interval(scores)
    values = np.array(scores[0], dtype=float)
    half = scipy_stats.t.ppf(0.975, 7) * values.std(ddof=1) / math.sqrt(8)
    assert (result.low, result.high) == pytest.approx((values.mean() - half, values.mean() + half))
    assert math.isnan(result.components["seed"]) and "one seed" in result.notes[0]
    rng = np.random.default_rng(1760)
    outcomes = simulate(rng, 1, 0.6, item_effects(rng), seed_sd=0.0)
    coverage = np.mean([r.low <= truth(0.6, 0.0) <= r.high for r in map(crossed_interval, outcomes)])
    assert 0.93 <= coverage <= 0.97  # right when there is no seed noise to miss


def test_difference_against_a_one_seed_arm_counts_the_other_arms_seeds() -> None:
    rng = np.random.default_rng(1770)
    trained = rng.integers(0, 2, (4, 30)).astype(float)
    base = rng.integers(0, 2, (1, 30)).astype(float)
    result = crossed_difference(trained, base)
    assert math.isnan(result.components["seed_second"]) and "second arm has one seed" in result.notes[0]
    assert result.n_seeds_first == 4 and result.n_seeds_second == 1
    assert result.mean == pytest.approx(trained.mean() - base.mean())


def test_bad_tables_are_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="seeds x items"):
        crossed_interval([1.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="every seed to score every item"):
        crossed_interval([[1.0, float("nan")], [0.0, 1.0]])
    with pytest.raises(ValueError, match="same items"):
        crossed_difference(np.ones((2, 3)), np.ones((2, 4)))
    with pytest.raises(ValueError, match="level"):
        crossed_interval(np.ones((2, 3)), level=95)


def test_identical_arms_give_a_zero_width_interval_and_p_one() -> None:
    same = np.tile([1.0, 0.0, 1.0], (3, 1))
    result = crossed_difference(same, same)
    assert (result.mean, result.low, result.high, result.p_value) == (0.0, 0.0, 0.0, 1.0)
    assert any("zero width" in note for note in result.notes)


def test_crossed_scores_aligns_seeds_and_lists_what_it_dropped() -> None:
    aligned = crossed_scores({"s0": {"a": 1.0, "b": 0.0, "c": 1.0}, "s1": {"a": 0.0, "c": 1.0, "b": 1.0},
                              "s2": {"a": 1.0, "c": 0.0}})
    assert aligned.items == ("a", "c") and aligned.dropped == ("b",) and aligned.seeds == ("s0", "s1", "s2")
    assert aligned.matrix.tolist() == [[1.0, 1.0], [0.0, 1.0], [1.0, 0.0]]
    with pytest.raises(ValueError, match="at least 2"):
        crossed_scores({"s0": {"a": 1.0}, "s1": {"b": 1.0}})
