"""Charts for the report: a bar chart per eval, and AFT tokens vs metric with its Pareto frontier."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from msmkit.experiment.report_data import ArmResult, HeatMap, SweepPoint  # noqa: E402


def bar_chart(results: list[ArmResult], out: Path) -> Path:
    """Bars per arm with confidence-interval whiskers and n under each bar."""
    eval_name, metric = results[0].eval_name, results[0].metric
    arms = [r.arm for r in results]
    means = [r.mean for r in results]
    lower = [r.mean - r.ci_low if r.ci_low is not None else 0.0 for r in results]
    upper = [r.ci_high - r.mean if r.ci_high is not None else 0.0 for r in results]
    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(arms) + 1.5), 3.6), dpi=110)
    ax.bar(range(len(arms)), means, yerr=[lower, upper], capsize=4, color="#4C72B0")
    ax.set_xticks(range(len(arms)), [f"{a}\n(n={r.n_items}, seeds={r.n_seeds})" for a, r in zip(arms, results)],
                  fontsize=7, rotation=20, ha="right")
    ax.set_ylabel(metric)
    if all(low >= 0 for low in (r.ci_low if r.ci_low is not None else r.mean for r in results)):
        ax.set_ylim(bottom=0)  # rates, scores and shares start at zero; no axis below it
    ax.set_title(eval_name, fontsize=10)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out


def pareto_frontier(points: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """Points not dominated by another with fewer (or equal) tokens and a higher (or equal) value."""
    frontier: list[tuple[int, float]] = []
    best = float("-inf")
    for tokens, value in sorted(points, key=lambda p: (p[0], -p[1])):
        if value > best:
            frontier.append((tokens, value))
            best = value
    return frontier


def sweep_chart(points: list[SweepPoint], out: Path) -> Path:
    series: dict[str, list[SweepPoint]] = defaultdict(list)
    for point in points:
        series[point.series].append(point)
    fig, ax = plt.subplots(figsize=(6.0, 3.8), dpi=110)
    for name, members in sorted(series.items()):
        members.sort(key=lambda p: p.aft_tokens)
        ax.plot([p.aft_tokens for p in members], [p.value for p in members], marker="o", label=name)
    frontier = pareto_frontier([(p.aft_tokens, p.value) for p in points])
    ax.plot([t for t, _ in frontier], [v for _, v in frontier], linestyle="--", color="black",
            linewidth=1, label="Pareto frontier")
    ax.set_xscale("log")
    ax.set_xlabel("AFT training tokens")
    ax.set_ylabel(points[0].eval_name)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out


def dissociation_chart(first: list[ArmResult], second: list[ArmResult], out: Path) -> Path:
    """Each arm at (its rate on the first value, its rate on the second) with interval crosses: the paper's Fig. 2,
    where MSM on one spec moves its arm along that spec's axis only."""
    on_second = {r.arm: r for r in second}
    fig, ax = plt.subplots(figsize=(5.2, 4.6), dpi=110)
    for result in first:
        other = on_second.get(result.arm)
        if other is None:
            continue
        xerr = [[result.mean - result.ci_low], [result.ci_high - result.mean]] if result.ci_low is not None else None
        yerr = [[other.mean - other.ci_low], [other.ci_high - other.mean]] if other.ci_low is not None else None
        ax.errorbar([result.mean], [other.mean], xerr=xerr, yerr=yerr, fmt="o", capsize=3, label=result.arm)
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey", linewidth=0.8)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel(f"{first[0].eval_name} ({first[0].metric})" if first else "value 1", fontsize=8)
    ax.set_ylabel(f"{second[0].eval_name} ({second[0].metric})" if second else "value 2", fontsize=8)
    ax.legend(fontsize=6, loc="best")  # the legend names the arms: labels beside close points ran together
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out


def heatmap_chart(heat: HeatMap, out: Path) -> Path:
    """Arms x conditions, each cell the rate (blank where nothing was scored)."""
    import numpy as np

    grid = np.array([[np.nan if v is None else v for v in row] for row in heat.values], dtype=float)
    fig, ax = plt.subplots(figsize=(max(5.0, 0.32 * len(heat.columns) + 2.5), 0.45 * len(heat.rows) + 2.2), dpi=110)
    image = ax.imshow(grid, vmin=0, vmax=1, cmap="Reds", aspect="auto")
    ax.set_xticks(range(len(heat.columns)), heat.columns, rotation=70, ha="right", fontsize=6)
    ax.set_yticks(range(len(heat.rows)), heat.rows, fontsize=7)
    for (row, column), value in np.ndenumerate(grid):
        if not np.isnan(value):
            ax.text(column, row, f"{value:.2f}", ha="center", va="center", fontsize=5)
    fig.colorbar(image, ax=ax, fraction=0.03)
    ax.set_title(f"{heat.eval_name} by arm and condition", fontsize=9)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out


def dose_chart(points: list[SweepPoint], out: Path) -> Path:
    """Each series' metric against the MSM tokens it midtrained on, with interval bars: the dose response."""
    series: dict[str, list[SweepPoint]] = defaultdict(list)
    for point in points:
        series[point.series].append(point)
    fig, ax = plt.subplots(figsize=(6.0, 3.8), dpi=110)
    for name, members in sorted(series.items()):
        members.sort(key=lambda p: p.msm_tokens or 0)
        lower = [p.value - p.ci_low if p.ci_low is not None else 0.0 for p in members]
        upper = [p.ci_high - p.value if p.ci_high is not None else 0.0 for p in members]
        ax.errorbar([p.msm_tokens for p in members], [p.value for p in members], yerr=[lower, upper], marker="o",
                    capsize=3, label=name)
    ax.set_xscale("log")
    ax.set_xlabel("MSM training tokens")
    ax.set_ylabel(points[0].eval_name)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out
