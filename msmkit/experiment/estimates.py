"""Per-arm estimates and arm differences for the report, from each seed's outcomes grouped by unit (an item, or a
condition whose epochs are repeated draws of it): intervals for the crossed design (seeds x units), which count
both training-seed and unit noise (msmkit.eval.stats.crossed_interval / crossed_difference)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from msmkit.eval.stats import CrossedDifference, CrossedInterval, crossed_difference, crossed_interval

Grouped = dict[str, list[float]]  # unit id -> outcomes (one per item; one per epoch of a condition)


@dataclass(frozen=True)
class Aligned:
    matrix: np.ndarray  # seeds x units of cell means
    units: tuple[str, ...]
    dropped: int  # units some seed did not score, left out
    outcomes: int  # individual outcomes behind the matrix


def align(per_seed: list[Grouped], units: set[str] | None = None) -> Aligned:
    """Cell means over the units every seed scored (and that are in `units`, when given)."""
    scored = [{unit for unit, values in seed.items() if values} for seed in per_seed]
    everywhere = set.intersection(*scored) if scored else set()
    shared = sorted(everywhere & units if units is not None else everywhere)
    matrix = np.array([[float(np.mean(seed[unit])) for unit in shared] for seed in per_seed])
    return Aligned(matrix.reshape(len(per_seed), len(shared)), tuple(shared), len(set.union(*scored)) - len(shared)
                   if scored else 0, sum(len(seed[unit]) for seed in per_seed for unit in shared))


def arm_estimate(per_seed: list[Grouped], unit: str) -> tuple[CrossedInterval, Aligned] | None:
    """None when fewer than 2 units were scored by every seed. One unit seen once per seed cannot carry an interval;
    one condition of one seed falls back to its epochs as the units."""
    aligned = align(per_seed)
    if len(aligned.units) >= 2:
        return crossed_interval(aligned.matrix, unit=unit), aligned
    if len(per_seed) == 1 and aligned.units and len(per_seed[0][aligned.units[0]]) >= 2:
        epochs = per_seed[0][aligned.units[0]]
        return crossed_interval(np.array([epochs]), unit="epoch"), aligned
    return None


def arm_difference(first: list[Grouped], second: list[Grouped], unit: str) -> CrossedDifference | None:
    """First arm minus second, paired by the units both arms' seeds all scored."""
    a, b = align(first), align(second)
    shared = set(a.units) & set(b.units)
    if len(shared) < 2:
        return None
    return crossed_difference(align(first, shared).matrix, align(second, shared).matrix, unit=unit)
