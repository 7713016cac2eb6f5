"""Statistics for eval results: bootstrap CIs, paired comparisons between arms, aggregation over seeds.

Every result carries its n and names its method. Bootstraps are seeded (same input, same interval) and
use the percentile method (quantiles of the resampled means, `inverted_cdf`, so a discrete resampling
distribution gives one of its own values).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass, field
from typing import Mapping, Sequence

import numpy as np
from scipy import stats as scipy_stats

DEFAULT_BOOTSTRAPS = 10_000
EXACT_PERMUTATION_MAX_N = 16  # up to 2**16 sign patterns are enumerated; beyond, a seeded Monte Carlo


@dataclass(frozen=True)
class Estimate:
    mean: float
    low: float
    high: float
    n: int
    level: float
    method: str
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        data = asdict(self)
        data.update(data.pop("extra"))
        return data


def _as_array(values: Sequence[float]) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1 or array.size == 0:
        raise ValueError("need a non-empty 1-D list of numbers")
    if not np.all(np.isfinite(array)):
        raise ValueError("values must be finite numbers")
    return array


def _percentile_interval(samples: np.ndarray, level: float) -> tuple[float, float]:
    alpha = 1.0 - level
    low, high = np.quantile(samples, [alpha / 2, 1 - alpha / 2], method="inverted_cdf")
    return float(low), float(high)


def bootstrap_mean(values: Sequence[float], *, level: float = 0.95, n_boot: int = DEFAULT_BOOTSTRAPS,
                   seed: int = 0) -> Estimate:
    """Mean with a percentile bootstrap CI (resampling items with replacement)."""
    array = _as_array(values)
    rng = np.random.default_rng(seed)
    means = array[rng.integers(0, array.size, size=(n_boot, array.size))].mean(axis=1)
    low, high = _percentile_interval(means, level)
    return Estimate(float(array.mean()), low, high, int(array.size), level, f"percentile bootstrap over items ({n_boot})")


def sign_test(differences: Sequence[float]) -> dict:
    """Exact two-sided sign test: zero differences are dropped; p from Binomial(n_nonzero, 1/2)."""
    array = _as_array(differences)
    positive, negative = int((array > 0).sum()), int((array < 0).sum())
    n = positive + negative
    p = 1.0 if n == 0 else float(scipy_stats.binomtest(positive, n, 0.5, alternative="two-sided").pvalue)
    return {"positive": positive, "negative": negative, "ties": int(array.size - n), "p_value": p}


def permutation_test(differences: Sequence[float], *, n_perm: int = DEFAULT_BOOTSTRAPS, seed: int = 0) -> dict:
    """Paired sign-flip permutation test of mean difference = 0 (two-sided).

    Exact (all 2^n sign patterns) for n <= 16, else a seeded Monte Carlo whose p counts the observed pattern.
    """
    array = _as_array(differences)
    observed = abs(array.mean())
    tolerance = 1e-12 * max(1.0, observed)
    if array.size <= EXACT_PERMUTATION_MAX_N:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=array.size)))
        flipped = np.abs((signs * array).mean(axis=1))
        return {"p_value": float((flipped >= observed - tolerance).mean()), "method": "exact sign-flip permutation"}
    rng = np.random.default_rng(seed)
    signs = rng.choice((1.0, -1.0), size=(n_perm, array.size))
    flipped = np.abs((signs * array).mean(axis=1))
    extreme = int((flipped >= observed - tolerance).sum())
    return {"p_value": (extreme + 1) / (n_perm + 1), "method": f"Monte Carlo sign-flip permutation ({n_perm})"}


def mcnemar(first: Sequence[float], second: Sequence[float]) -> dict:
    """McNemar's test for paired binary outcomes: exact binomial p on the discordant pairs."""
    a, b = _as_array(first), _as_array(second)
    if a.shape != b.shape:
        raise ValueError("McNemar needs the same items in both arms")
    if not (np.isin(a, (0, 1)).all() and np.isin(b, (0, 1)).all()):
        raise ValueError("McNemar needs binary (0/1) outcomes")
    only_first = int(((a == 1) & (b == 0)).sum())
    only_second = int(((a == 0) & (b == 1)).sum())
    n = only_first + only_second
    p = 1.0 if n == 0 else float(scipy_stats.binomtest(only_first, n, 0.5).pvalue)
    return {"only_first": only_first, "only_second": only_second, "discordant": n, "p_value": p,
            "method": "exact McNemar (binomial on discordant pairs)"}


def paired_comparison(first: Sequence[float], second: Sequence[float], *, level: float = 0.95,
                      n_boot: int = DEFAULT_BOOTSTRAPS, seed: int = 0) -> dict:
    """Arm 1 minus arm 2 on the same items: bootstrap CI of the mean difference, sign and permutation
    tests, and McNemar when both arms are binary."""
    a, b = _as_array(first), _as_array(second)
    if a.shape != b.shape:
        raise ValueError(f"paired comparison needs the same items in both arms (got {a.size} and {b.size})")
    differences = a - b
    estimate = bootstrap_mean(differences, level=level, n_boot=n_boot, seed=seed)
    result = {
        "n": int(a.size), "mean_first": float(a.mean()), "mean_second": float(b.mean()),
        "difference": estimate.to_dict(), "sign_test": sign_test(differences),
        "permutation_test": permutation_test(differences, n_perm=n_boot, seed=seed),
    }
    if np.isin(a, (0, 1)).all() and np.isin(b, (0, 1)).all():
        result["mcnemar"] = mcnemar(a, b)
    return result


def aggregate_seeds(per_seed: Mapping[str, Sequence[float]], *, level: float = 0.95,
                    n_boot: int = DEFAULT_BOOTSTRAPS, seed: int = 0) -> dict:
    """Combine one arm's per-item scores from several training seeds.

    The point estimate is the mean of the seed means. Two intervals:
    - `seed_level`: resample seeds (their means) with replacement: between-seed variation only;
    - `seed_and_item_level`: resample seeds, then items within each chosen seed (two-level bootstrap):
      seed and item variation together. With one seed it reduces to the item bootstrap.
    """
    if not per_seed:
        raise ValueError("no seeds to aggregate")
    arrays = {name: _as_array(values) for name, values in per_seed.items()}
    names = list(arrays)
    seed_means = np.array([arrays[name].mean() for name in names])
    rng = np.random.default_rng(seed)
    seed_level = seed_means[rng.integers(0, len(names), size=(n_boot, len(names)))].mean(axis=1)
    two_level = np.empty(n_boot)
    for b in range(n_boot):
        chosen = rng.integers(0, len(names), size=len(names))
        two_level[b] = np.mean([arrays[names[c]][rng.integers(0, arrays[names[c]].size, arrays[names[c]].size)].mean()
                                for c in chosen])
    n_items = {name: int(array.size) for name, array in arrays.items()}
    low_s, high_s = _percentile_interval(seed_level, level)
    low_t, high_t = _percentile_interval(two_level, level)
    mean = float(seed_means.mean())
    return {
        "mean": mean, "n_seeds": len(names), "n_items_per_seed": n_items,
        "seed_means": {name: float(value) for name, value in zip(names, seed_means)},
        "seed_sd": float(seed_means.std(ddof=1)) if len(names) > 1 else math.nan,
        "seed_level": Estimate(mean, low_s, high_s, len(names), level,
                               f"percentile bootstrap over seeds ({n_boot})").to_dict(),
        "seed_and_item_level": Estimate(mean, low_t, high_t, sum(n_items.values()), level,
                                        f"two-level percentile bootstrap: seeds, then items ({n_boot})").to_dict(),
    }
