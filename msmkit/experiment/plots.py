"""Charts for the report: a bar chart per eval, and AFT tokens vs metric with its Pareto frontier."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from msmkit.experiment.report_data import ArmResult, SweepPoint  # noqa: E402


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
