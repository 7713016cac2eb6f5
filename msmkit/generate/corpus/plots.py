"""One PNG summarising a corpus: documents per domain and per type, token lengths, drop reasons."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any


def _short(label: str, width: int = 28) -> str:
    return textwrap.shorten(label, width=width, placeholder="...")


def _bars(axis: Any, counts: dict[str, int], title: str, color: str) -> None:
    items = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:20]
    axis.set_title(title)
    if not items:
        axis.text(0.5, 0.5, "none", ha="center", va="center", transform=axis.transAxes)
        axis.set_axis_off()
        return
    labels = [_short(label) for label, _ in items][::-1]
    values = [value for _, value in items][::-1]
    from matplotlib.ticker import MaxNLocator

    axis.barh(labels, values, color=color)
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.tick_params(axis="y", labelsize=7)
    for position, value in enumerate(values):
        axis.text(value, position, f" {value}", va="center", fontsize=7)


def plot_corpus_stats(stats: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 2, figsize=(13, 9))
    _bars(axes[0][0], stats["by_domain"], "Documents per domain", "#4C72B0")
    _bars(axes[0][1], stats["by_doc_type"], "Documents per document type (top 20)", "#55A868")
    lengths = stats["token_lengths"]["values"]
    axis = axes[1][0]
    axis.set_title(f"Document length ({stats['token_lengths']['method']})")
    if lengths:
        axis.hist(lengths, bins=min(30, max(5, len(lengths) // 3)), color="#8172B2")
        axis.set_xlabel("tokens")
        axis.set_ylabel("documents")
    else:
        axis.text(0.5, 0.5, "no documents", ha="center", va="center", transform=axis.transAxes)
    _bars(axes[1][1], stats["drops"], "Dropped documents by reason", "#C44E52")
    documents = stats["documents"]
    figure.suptitle(f"Corpus: {documents['kept']} of {documents['target']} planned documents; "
                    f"generator {stats['generator']}", fontsize=11)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
