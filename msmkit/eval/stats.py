"""Statistics for eval results: bootstrap CIs, paired comparisons between arms, aggregation over seeds.

Every result carries its n and names its method. Bootstraps are seeded (same input, same interval) and
use the percentile method (quantiles of the resampled means, `inverted_cdf`, so a discrete resampling
distribution gives one of its own values).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass, field, replace
from typing import Mapping, Sequence

import numpy as np
from scipy import stats as scipy_stats
from scipy.optimize import brentq

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
    return Estimate(float(array.mean()), low, high, int(array.size), level,
                    f"percentile bootstrap over items ({n_boot})")


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


# ---------------------------------------------------------------------------------------------------------------
# Crossed designs: every training seed of an arm scores the same items.
#
# Model: y[s, i] = mu + a[s] + b[i] + e[s, i], seeds a ~ (0, s2_seed), items b ~ (0, s2_item), residual e (the
# seed x item interaction plus outcome noise) ~ (0, s2_resid), all independent. The estimand is mu, the mean over
# the populations of seeds and items. Variance components by the method of moments from the two-way ANOVA mean
# squares; Var(grand mean) = s2_seed/S + s2_item/I + s2_resid/(S*I), each component truncated at zero; the interval
# is a t interval whose degrees of freedom come from Satterthwaite's approximation for that sum of mean squares.
# With few seeds the seed term has few df and the t quantile widens accordingly. Simulated (issue 17's design:
# 100 binary items, item sd 0.25, seed sd 0.06, 4000 experiments) 95% intervals covered 93.9% with 3 seeds and
# 94.7% with 10; paired differences rejected a true zero 4.9% and 5.1% of the time. With 2 seeds, or seeds
# varying more than items, coverage falls to about 90%, since a seed variance on one df is barely estimable.
# ---------------------------------------------------------------------------------------------------------------

CROSSED_METHOD = "two-way random-effects ANOVA (method of moments), t with Satterthwaite df"


@dataclass(frozen=True)
class _MeanSquare:
    value: float
    df: int


def _satterthwaite(terms: Sequence[tuple[float, _MeanSquare]]) -> tuple[float, float]:
    """Variance sum(c * MS) and its Satterthwaite degrees of freedom (coefficients of one MS added first)."""
    combined: dict[int, tuple[float, _MeanSquare]] = {}
    for coefficient, square in terms:
        previous = combined.get(id(square), (0.0, square))[0]
        combined[id(square)] = (previous + coefficient, square)
    variance = sum(c * square.value for c, square in combined.values())
    denominator = sum((c * square.value) ** 2 / square.df for c, square in combined.values() if square.df > 0)
    df = variance ** 2 / denominator if denominator > 0 else math.inf
    return max(variance, 0.0), df


def _t_interval(mean: float, variance: float, df: float, level: float) -> tuple[float, float, float]:
    se = math.sqrt(variance)
    if se == 0.0:
        return se, mean, mean
    quantile = float(scipy_stats.t.ppf(0.5 + level / 2, df))
    return se, mean - quantile * se, mean + quantile * se


def _check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be between 0 and 1 (got {level})")


def _score_matrix(scores: object, what: str) -> np.ndarray:
    array = np.asarray(scores, dtype=float)
    if array.ndim == 1:
        raise ValueError(f"{what}: need a 2-D array of seeds x items (got 1-D; for one seed pass [scores])")
    if array.ndim != 2 or array.shape[0] < 1 or array.shape[1] < 2:
        raise ValueError(f"{what}: need a 2-D array of seeds x items with at least 2 items (got shape {array.shape})")
    missing = ~np.isfinite(array)
    if missing.any():
        seeds, items = np.nonzero(missing)
        raise ValueError(f"{what}: {int(missing.sum())} missing or non-finite score(s) (first at seed row {seeds[0]}, "
                         f"item column {items[0]}); the crossed design needs every seed to score every item: keep "
                         "only the items all seeds scored (see `crossed_scores`)")
    return array


@dataclass(frozen=True)
class _TwoWay:
    """Mean squares of one arm's seeds x items table (seed and residual undefined for one seed)."""

    seed: _MeanSquare
    item: _MeanSquare
    residual: _MeanSquare
    item_means: np.ndarray
    mean: float

    @classmethod
    def of(cls, array: np.ndarray) -> _TwoWay:
        n_seeds, n_items = array.shape
        mean = float(array.mean())
        seed_means, item_means = array.mean(axis=1), array.mean(axis=0)
        residuals = array - seed_means[:, None] - item_means[None, :] + mean
        seed_df, item_df, residual_df = n_seeds - 1, n_items - 1, (n_seeds - 1) * (n_items - 1)
        seed = n_items * float(((seed_means - mean) ** 2).sum()) / seed_df if seed_df else math.nan
        item = n_seeds * float(((item_means - mean) ** 2).sum()) / item_df
        residual = float((residuals ** 2).sum()) / residual_df if residual_df else math.nan
        return cls(_MeanSquare(seed, seed_df), _MeanSquare(item, item_df), _MeanSquare(residual, residual_df),
                   item_means, mean)

    def seed_component(self, n_items: int) -> float:
        return max(0.0, (self.seed.value - self.residual.value) / n_items)


def _dominant(contributions: Mapping[str, float]) -> str | None:
    finite = {name: value for name, value in contributions.items() if math.isfinite(value)}
    if not finite or max(finite.values()) <= 0.0:
        return None
    return max(finite, key=finite.__getitem__)


@dataclass(frozen=True)
class CrossedInterval:
    """Mean of a seeds x units table with its interval.

    `components`: variance components (`seed`, the unit name, `residual`); `contributions`: each one's share of
    Var(mean) (seed/S, unit/U, residual/(S*U)); `dominant`: the largest contribution. With one seed, the seed
    component is not estimable (NaN) and not counted, and the unit component includes the residual.
    """

    mean: float
    low: float
    high: float
    level: float
    n_seeds: int
    n_items: int
    standard_error: float
    df: float
    components: dict[str, float]
    contributions: dict[str, float]
    dominant: str | None
    method: str
    unit: str = "item"
    n_outcomes: int = 0
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        data = asdict(self)
        data["notes"] = list(self.notes)
        return data


def crossed_interval(scores: object, level: float = 0.95, *, unit: str = "item") -> CrossedInterval:
    """Mean and interval of one arm scored by S training seeds on the same I items (a crossed design).

    `scores`: array-like of shape (S, I); row s holds seed s's scores, column i the same item in every row.
    Every cell must be a finite number: drop items some seed did not score first (`crossed_scores` does that
    and lists what it dropped). With S >= 2 the interval counts seed, item and residual variance (see the
    section comment above); with S == 1 it is a t interval over items and a note says seed noise is not counted.
    """
    _check_level(level)
    array = _score_matrix(scores, "crossed_interval")
    n_seeds, n_items = array.shape
    table = _TwoWay.of(array)
    notes: list[str] = []
    if n_seeds == 1:
        item_var = table.item.value
        variance, df = item_var / n_items, float(table.item.df)
        components = {"seed": math.nan, unit: item_var, "residual": math.nan}
        contributions = {"seed": math.nan, unit: variance, "residual": math.nan}
        method = f"t over {unit}s (one seed: training-seed variance not estimable, not counted)"
        notes.append(f"one seed: the interval covers {unit} noise only; training-seed noise is not counted")
    else:
        seed_var = table.seed_component(n_items)
        item_var = max(0.0, (table.item.value - table.residual.value) / n_seeds)
        residual_var = table.residual.value
        scale = 1.0 / (n_seeds * n_items)
        # Var(mean) = seed_var/S + item_var/I + residual/(S*I), written in mean squares (truncated terms drop out).
        terms = [(scale, table.residual)]
        if seed_var > 0:
            terms += [(scale, table.seed), (-scale, table.residual)]
        if item_var > 0:
            terms += [(scale, table.item), (-scale, table.residual)]
        variance, df = _satterthwaite(terms)
        components = {"seed": seed_var, unit: item_var, "residual": residual_var}
        contributions = {"seed": seed_var / n_seeds, unit: item_var / n_items, "residual": residual_var * scale}
        method = CROSSED_METHOD
        if n_seeds == 2:
            notes.append("two seeds: the seed variance rests on one degree of freedom; such intervals can cover "
                         "less than their level (about 90% in simulation when seeds vary a lot); use 3 or more")
    se, low, high = _t_interval(table.mean, variance, df, level)
    if se == 0.0:
        notes.append("no variation in the scores: the interval has zero width")
    return CrossedInterval(table.mean, low, high, level, n_seeds, n_items, se, df, components, contributions,
                           _dominant(contributions), method, unit, int(array.size), tuple(notes))


@dataclass(frozen=True)
class CrossedDifference:
    """First arm minus second on the same units, each arm with its own independent seeds.

    `components`: `seed_first`, `seed_second` (each arm's seed variance; NaN when that arm has one seed, then not
    counted), `interaction` (variance over units of the arms' difference beyond residual noise: items on which
    the training effect differs), `residual_first`, `residual_second`.
    """

    mean: float
    low: float
    high: float
    p_value: float
    t_statistic: float
    level: float
    mean_first: float
    mean_second: float
    n_seeds_first: int
    n_seeds_second: int
    n_items: int
    standard_error: float
    df: float
    components: dict[str, float]
    contributions: dict[str, float]
    dominant: str | None
    method: str
    unit: str = "item"
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        data = asdict(self)
        data["notes"] = list(self.notes)
        return data


def crossed_difference(first: object, second: object, level: float = 0.95, *, unit: str = "item"
                       ) -> CrossedDifference:
    """Mean difference (first minus second) with interval and two-sided p, paired by item, seed noise of both arms.

    `first`, `second`: arrays of shape (S1, I) and (S2, I) over the same I items in the same column order; seed
    counts may differ (the arms' seeds are independent trainings). Var(difference) = s2_seed1/S1 + s2_seed2/S2
    + MS_d/I, where MS_d is the variance over items of the per-item difference of seed means (it holds the item
    x arm interaction and both arms' residual noise); the seed components come from each arm's two-way ANOVA,
    truncated at zero. t reference with Satterthwaite df. An arm with one seed (for example the untrained base
    model, which is deterministic) contributes no seed variance, and a note says so.
    """
    _check_level(level)
    a, b = _score_matrix(first, "crossed_difference (first)"), _score_matrix(second, "crossed_difference (second)")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"crossed_difference: the arms must score the same items (got {a.shape[1]} and "
                         f"{b.shape[1]} columns)")
    n_items = a.shape[1]
    tables = (_TwoWay.of(a), _TwoWay.of(b))
    item_differences = tables[0].item_means - tables[1].item_means
    difference_square = _MeanSquare(float(item_differences.var(ddof=1)), n_items - 1)
    terms: list[tuple[float, _MeanSquare]] = [(1.0 / n_items, difference_square)]
    components: dict[str, float] = {}
    contributions: dict[str, float] = {}
    notes: list[str] = []
    residual_share = 0.0
    for name, table, n_seeds in (("first", tables[0], a.shape[0]), ("second", tables[1], b.shape[0])):
        if n_seeds == 1:
            components[f"seed_{name}"] = components[f"residual_{name}"] = math.nan
            contributions[f"seed_{name}"] = math.nan
            notes.append(f"the {name} arm has one seed: its training-seed noise is not estimable and not counted")
            continue
        seed_var = table.seed_component(n_items)
        components[f"seed_{name}"], components[f"residual_{name}"] = seed_var, table.residual.value
        contributions[f"seed_{name}"] = seed_var / n_seeds
        residual_share += table.residual.value / n_seeds
        if seed_var > 0:
            scale = 1.0 / (n_seeds * n_items)
            terms += [(scale, table.seed), (-scale, table.residual)]
    components["interaction"] = max(0.0, difference_square.value - residual_share)
    contributions["interaction_and_residual"] = difference_square.value / n_items
    variance, df = _satterthwaite(terms)
    mean = tables[0].mean - tables[1].mean
    se, low, high = _t_interval(mean, variance, df, level)
    if se == 0.0:
        notes.append("no variation in the differences: the interval has zero width")
        t_stat, p_value = (0.0, 1.0) if mean == 0 else (math.copysign(math.inf, mean), 0.0)
    else:
        t_stat = mean / se
        p_value = float(2 * scipy_stats.t.sf(abs(t_stat), df))
    method = ("paired by " + unit + "; " + CROSSED_METHOD if a.shape[0] > 1 or b.shape[0] > 1
              else f"paired t over {unit}s (one seed per arm: training-seed noise not counted)")
    return CrossedDifference(mean, low, high, p_value, t_stat, level, tables[0].mean, tables[1].mean, a.shape[0],
                             b.shape[0], n_items, se, df, components, contributions, _dominant(contributions),
                             method, unit, tuple(notes))


@dataclass(frozen=True)
class CrossedScores:
    """Per-seed item scores aligned into a seeds x items matrix, with the items left out because a seed lacks them."""

    matrix: np.ndarray
    seeds: tuple[str, ...]
    items: tuple[str, ...]
    dropped: tuple[str, ...]


def crossed_scores(per_seed: Mapping[str, Mapping[str, float]], items: Sequence[str] | None = None
                   ) -> CrossedScores:
    """Align {seed: {item id: score}} on the items every seed scored (or on `items`, when given, in that order).

    Items some seed lacks are dropped and listed, never imputed, so the report can say how many were lost.
    """
    if not per_seed:
        raise ValueError("crossed_scores: no seeds")
    wanted = list(items) if items is not None else sorted(set().union(*(set(scores) for scores in per_seed.values())))
    kept = [item for item in wanted if all(item in scores for scores in per_seed.values())]
    if len(kept) < 2:
        raise ValueError(f"crossed_scores: only {len(kept)} item(s) scored by every seed ({', '.join(per_seed)}); "
                         "need at least 2")
    matrix = np.array([[float(per_seed[seed][item]) for item in kept] for seed in per_seed])
    dropped = tuple(item for item in wanted if item not in set(kept))
    return CrossedScores(matrix, tuple(per_seed), tuple(kept), dropped)


# ---------------------------------------------------------------------------------------------------------------
# Nested designs (agentic runs): conditions crossed with seeds, repeated epochs nested in each (seed, condition).
# Epochs of one condition share its prompt, so they are not independent items: the condition is the unit. Each
# (seed, condition) cell is reduced to its mean over epochs, and the seeds x conditions table of cell means goes
# through the crossed analysis; its residual then holds the seed x condition interaction plus epoch noise / E.
# The estimand is the mean over conditions, each condition weighted equally whatever its number of epochs.
# ---------------------------------------------------------------------------------------------------------------

EpochOutcomes = Mapping[str, Mapping[str, Sequence[float]]]  # seed -> condition -> outcome of each epoch


def _cell_means(per_seed: EpochOutcomes, what: str) -> tuple[np.ndarray, list[str], int, tuple[int, int]]:
    if not per_seed:
        raise ValueError(f"{what}: no seeds")
    conditions = sorted(set().union(*(set(by_condition) for by_condition in per_seed.values())))
    gaps = [f"{seed}/{condition}" for seed, by_condition in per_seed.items() for condition in conditions
            if len(by_condition.get(condition, ())) == 0]
    if gaps:
        shown = ", ".join(gaps[:5]) + (f" and {len(gaps) - 5} more" if len(gaps) > 5 else "")
        raise ValueError(f"{what}: every seed needs at least one scored epoch of every condition; none for {shown} "
                         "(leave such conditions out of every seed, or rerun them)")
    cells = [[_as_array(per_seed[seed][condition]) for condition in conditions] for seed in per_seed]
    counts = [cell.size for row in cells for cell in row]
    matrix = np.array([[cell.mean() for cell in row] for row in cells])
    return matrix, conditions, sum(counts), (min(counts), max(counts))


def clustered_interval(per_seed: EpochOutcomes, level: float = 0.95) -> CrossedInterval:
    """Mean outcome over conditions with an interval clustered by condition (epochs nested, seeds crossed).

    `per_seed`: {seed name: {condition id: [outcome of each epoch, ...]}}; for a run without seeds pass one seed,
    e.g. {"run": {...}}. Outcomes are numbers (1/0 for a misaligned / benign verdict); leave unscored epochs out.
    Needs at least 2 conditions: with one condition the epochs estimate only that condition, not a population of
    conditions. The result's `unit` is "condition", `n_items` counts conditions and `n_outcomes` epochs.
    """
    matrix, conditions, n_outcomes, (fewest, most) = _cell_means(per_seed, "clustered_interval")
    if len(conditions) < 2:
        raise ValueError(f"clustered_interval: one condition ({conditions[0]}); an interval over conditions needs "
                         "at least 2 (for one condition and one seed, crossed_interval([epochs]) gives that "
                         "condition's own interval)")
    result = crossed_interval(matrix, level, unit="condition")
    epochs = f"{fewest}" if fewest == most else f"{fewest} to {most}"
    return replace(result, n_outcomes=n_outcomes,
                   method=f"{result.method}; epochs ({epochs} per seed and condition) averaged within each cell")


def clustered_difference(first: EpochOutcomes, second: EpochOutcomes, level: float = 0.95) -> CrossedDifference:
    """First arm minus second over the conditions both ran, paired by condition (epochs averaged within each
    seed and condition, as in `clustered_interval`)."""
    a, conditions_a, _, _ = _cell_means(first, "clustered_difference (first)")
    b, conditions_b, _, _ = _cell_means(second, "clustered_difference (second)")
    if conditions_a != conditions_b:
        only = sorted(set(conditions_a) ^ set(conditions_b))
        raise ValueError(f"clustered_difference: the arms ran different conditions ({', '.join(only[:5])} in only "
                         "one); compare on the conditions both ran")
    return crossed_difference(a, b, level, unit="condition")


# ---------------------------------------------------------------------------------------------------------------
# Pre-flight: what difference between two arms can a design detect?
# ---------------------------------------------------------------------------------------------------------------

# Guesses for when nothing is measured yet, on the 0-1 scale of a rate: replications saw arms move by about
# +-5 points between training seeds (seed sd 0.06), and value items differ a lot in how often they are chosen
# (item sd 0.25). Replace them with the components a pilot run measured (CrossedDifference.components).
DEFAULT_SEED_SD = 0.06
DEFAULT_ITEM_SD = 0.25


@dataclass(frozen=True)
class DetectableDifference:
    """The smallest true difference the design detects with the given power, and what it assumed."""

    difference: float
    standard_error: float
    df: float
    n_seeds_first: int
    n_seeds_second: int
    n_items: int
    alpha: float
    power: float
    seed_sd: float
    item_sd: float
    residual_sd: float
    interaction_sd: float
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        data = asdict(self)
        data["notes"] = list(self.notes)
        return data


def minimum_detectable_difference(n_seeds: int, n_items: int, *, seed_sd: float = DEFAULT_SEED_SD,
                                  item_sd: float = DEFAULT_ITEM_SD, residual_sd: float | None = None,
                                  interaction_sd: float = 0.0, n_seeds_second: int | None = None,
                                  base_rate: float = 0.5, alpha: float = 0.05, power: float = 0.8
                                  ) -> DetectableDifference:
    """Smallest true difference between two arms that `crossed_difference` detects (two-sided, at `alpha`) with
    probability `power`, under the variance model of the crossed analysis.

    Two arms of `n_seeds` (and `n_seeds_second`, default the same) independent training seeds score the same
    `n_items` items. `seed_sd`: sd of an arm's mean over training seeds; `interaction_sd`: sd over items of how
    much the arms' difference varies (0 assumes a uniform effect, the optimistic case); `residual_sd`: sd of one
    outcome around its seed and item effects; by default that of a binary outcome at `base_rate`, whose total
    variance base_rate*(1-base_rate) is shared between seed, item and residual. `item_sd` enters only there: items
    are paired, so their own effects cancel in the difference. The power comes from the noncentral t with the
    design's Satterthwaite df (computed from the expected mean squares).
    """
    first, second = n_seeds, n_seeds if n_seeds_second is None else n_seeds_second
    if first < 1 or second < 1 or n_items < 2:
        raise ValueError(f"need at least 1 seed per arm and 2 items (got {first}, {second} seeds and {n_items} items)")
    if not (0 < alpha < 1 and 0 < power < 1):
        raise ValueError(f"alpha and power must be between 0 and 1 (got {alpha} and {power})")
    if residual_sd is None:
        if not 0 < base_rate < 1:
            raise ValueError(f"base_rate must be between 0 and 1 (got {base_rate})")
        residual_sd = math.sqrt(max(0.0, base_rate * (1 - base_rate) - item_sd ** 2 - seed_sd ** 2))
    seed_var, residual_var, interaction_var = seed_sd ** 2, residual_sd ** 2, interaction_sd ** 2
    notes: list[str] = []
    variance = (seed_var / first + seed_var / second
                + (interaction_var + residual_var / first + residual_var / second) / n_items)
    # Expected mean squares of the analysis, for its df; an arm with one seed has no seed terms in the analysis.
    terms = [(1.0 / n_items, _MeanSquare(interaction_var + residual_var / first + residual_var / second,
                                         n_items - 1))]
    for n in (first, second):
        if n > 1:
            scale = 1.0 / (n * n_items)
            residual = _MeanSquare(residual_var, (n - 1) * (n_items - 1))
            terms += [(scale, _MeanSquare(residual_var + n_items * seed_var, n - 1)), (-scale, residual)]
        elif seed_var > 0 and not notes:
            notes.append("an arm with one seed: its seed noise is in this difference, but the analysis cannot count "
                         "it, so its p-values there are too small")
    _, df = _satterthwaite(terms)
    se = math.sqrt(variance)
    if se == 0.0:
        return DetectableDifference(0.0, 0.0, df, first, second, n_items, alpha, power, seed_sd, item_sd,
                                    residual_sd, interaction_sd, tuple(notes))
    critical = float(scipy_stats.t.ppf(1 - alpha / 2, df))

    def shortfall(delta: float) -> float:
        shift = delta / se
        reach = scipy_stats.nct.sf(critical, df, shift) + scipy_stats.nct.cdf(-critical, df, shift)
        return float(reach) - power

    upper = se
    while shortfall(upper) < 0:
        upper *= 2
    difference = float(brentq(shortfall, 0.0, upper, xtol=1e-6 * se))
    return DetectableDifference(difference, se, df, first, second, n_items, alpha, power, seed_sd, item_sd,
                                residual_sd, interaction_sd, tuple(notes))
