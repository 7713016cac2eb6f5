"""Eval statistics against hand computations on small fixed numbers."""

from __future__ import annotations

import math

import pytest

from msmkit.eval.stats import aggregate_seeds, bootstrap_mean, mcnemar, paired_comparison, permutation_test, sign_test


def test_bootstrap_interval_matches_the_exact_resampling_distribution() -> None:
    # Resampling [0, 0, 1] gives means k/3 with k ~ Binomial(3, 1/3): P = 8/27, 12/27, 6/27, 1/27.
    # Cumulative: 0.296, 0.741, 0.963, 1.0. At level 0.90 the 5% quantile is 0 and the 95% quantile 2/3.
    estimate = bootstrap_mean([0, 0, 1], level=0.90, n_boot=40_000, seed=1)
    assert estimate.mean == pytest.approx(1 / 3)
    assert (estimate.low, estimate.high) == (0.0, pytest.approx(2 / 3))
    assert estimate.n == 3
    # At 0.95 the 97.5% quantile passes 0.963 and reaches 1.
    assert bootstrap_mean([0, 0, 1], level=0.95, n_boot=40_000, seed=1).high == 1.0


def test_bootstrap_is_seeded_and_constant_data_has_a_point_interval() -> None:
    values = [0.2, 0.9, 0.4, 0.7, 0.1]
    assert bootstrap_mean(values, seed=3) == bootstrap_mean(values, seed=3)
    constant = bootstrap_mean([0.5] * 7)
    assert (constant.low, constant.mean, constant.high, constant.n) == (0.5, 0.5, 0.5, 7)


def test_sign_test_by_hand() -> None:
    # 5 positive, 1 negative, 1 tie: p = 2 * P(X <= 1 | n=6) = 2 * (1 + 6) / 64
    result = sign_test([1, 2, 0.5, 3, 1, -1, 0])
    assert (result["positive"], result["negative"], result["ties"]) == (5, 1, 1)
    assert result["p_value"] == pytest.approx(14 / 64)


def test_exact_permutation_test_by_hand() -> None:
    # Differences 1, 2, 3: of the 8 sign patterns only +++ and --- reach |mean| >= 2.
    assert permutation_test([1, 2, 3])["p_value"] == pytest.approx(2 / 8)
    # 1, -1, 2, 2: |mean| = 1; patterns reaching it: those with the two 2s the same sign and
    # (1, -1) not both against them: (+2,+2): 3 of 4 (1,-1) patterns give mean >= 1, same for (-2,-2) -> 6/16.
    assert permutation_test([1, -1, 2, 2])["p_value"] == pytest.approx(6 / 16)


def test_mcnemar_by_hand() -> None:
    first = [1, 1, 1, 1, 1, 0, 1, 0]
    second = [0, 0, 0, 0, 0, 1, 1, 0]
    result = mcnemar(first, second)
    assert (result["only_first"], result["only_second"], result["discordant"]) == (5, 1, 6)
    assert result["p_value"] == pytest.approx(14 / 64)
    with pytest.raises(ValueError, match="binary"):
        mcnemar([0.5, 1], [0, 1])


def test_paired_comparison_reports_n_difference_and_binary_tests() -> None:
    first = [1, 1, 1, 0]
    second = [0, 1, 0, 0]
    result = paired_comparison(first, second, n_boot=2000)
    assert result["n"] == 4
    assert result["mean_first"] == 0.75 and result["mean_second"] == 0.25
    assert result["difference"]["mean"] == pytest.approx(0.5)
    assert result["difference"]["n"] == 4
    assert result["mcnemar"]["discordant"] == 2 and result["mcnemar"]["p_value"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="same items"):
        paired_comparison([1, 0], [1, 0, 1])


def test_seed_aggregation_mean_of_seed_means_and_both_intervals() -> None:
    per_seed = {"s0": [1, 1, 0, 0], "s1": [1, 1, 1, 0], "s2": [1, 0, 0, 0, 0, 0, 1, 1]}
    result = aggregate_seeds(per_seed, n_boot=4000)
    # seed means 0.5, 0.75, 0.375 -> mean 0.541666...; sample sd by hand:
    assert result["mean"] == pytest.approx((0.5 + 0.75 + 0.375) / 3)
    deviations = [0.5 - 0.5416667, 0.75 - 0.5416667, 0.375 - 0.5416667]
    assert result["seed_sd"] == pytest.approx(math.sqrt(sum(d * d for d in deviations) / 2), rel=1e-5)
    assert result["n_seeds"] == 3 and result["n_items_per_seed"] == {"s0": 4, "s1": 4, "s2": 8}
    seed_level, two_level = result["seed_level"], result["seed_and_item_level"]
    assert 0.375 <= seed_level["low"] <= seed_level["high"] <= 0.75  # only seed means can be resampled
    assert two_level["high"] - two_level["low"] > seed_level["high"] - seed_level["low"]  # item noise added
    assert "seeds" in seed_level["method"] and "items" in two_level["method"]
