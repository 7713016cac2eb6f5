"""Bar charts of eval rates with their confidence intervals and n (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from msmkit.io import atomic_write_bytes  # noqa: E402


def plot_rates(rates: Sequence[tuple[str, dict]], path: Path, *, title: str, chance: float | None = 0.5) -> Path:
    """One bar per (label, estimate dict with mean/low/high/n); bars without data are skipped."""
    shown = [(label, rate) for label, rate in rates if rate.get("mean") is not None]
    fig, ax = plt.subplots(figsize=(max(4.0, 0.7 * len(shown) + 2), 3.6))
    if shown:
        means = [rate["mean"] for _, rate in shown]
        below = [rate["mean"] - rate.get("low", rate["mean"]) for _, rate in shown]
        above = [rate.get("high", rate["mean"]) - rate["mean"] for _, rate in shown]
        positions = range(len(shown))
        colors = ["#2b6cb0" if label == "all" else "#90cdf4" for label, _ in shown]
        ax.bar(positions, means, yerr=[below, above], capsize=3, color=colors)
        ax.set_xticks(list(positions), [f"{label}\nn={rate['n']}" for label, rate in shown], rotation=45,
                      ha="right", fontsize=8)
    if chance is not None:
        ax.axhline(chance, color="grey", linestyle="--", linewidth=1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("rate (95% CI)")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp.png")
    fig.savefig(temporary, dpi=120)
    plt.close(fig)
    atomic_write_bytes(path, temporary.read_bytes())
    temporary.unlink()
    return path
