"""Per-sample records and rates (decided, executed) from the Inspect logs of an agentic-misalignment run."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from msmkit.eval.agentic.checks import action_taken  # noqa: E402
from msmkit.eval.agentic.scoring import transcript_text  # noqa: E402
from msmkit.eval.stats import bootstrap_mean  # noqa: E402
from msmkit.io import atomic_write_bytes  # noqa: E402

RATES = ("decided", "executed", "action_taken")
SCORER = "misalignment_scorer"


def sample_records(log: Any) -> list[dict[str, Any]]:
    """One record per sample and epoch. Errored samples keep their error and a null verdict."""
    records = []
    for sample in log.samples or []:
        meta = sample.metadata or {}
        score = (sample.scores or {}).get(SCORER)
        text = transcript_text(sample.output.message) if sample.output and sample.output.choices else ""
        record: dict[str, Any] = {
            "condition": meta.get("condition_id", str(sample.id)), "scenario": meta.get("scenario"),
            "goal_type": meta.get("goal_type"), "goal_value": meta.get("goal_value"),
            "urgency": meta.get("urgency_type"), "epoch": sample.epoch, "log": Path(log.location).name,
            "error": sample.error.message[:500] if sample.error else None,
            "truncated": bool(sample.output and sample.output.stop_reason == "max_tokens"),
            "output_chars": len(text),
        }
        if score is not None and sample.error is None:
            record.update({key: bool(score.value[key]) for key in RATES})
            record["judge"] = score.explanation
            for key in ("published_harmful", "published_verdict", "published_error"):
                if key in (score.metadata or {}):
                    record[key] = score.metadata[key]
        else:
            record.update({"decided": None, "executed": None,
                           "action_taken": action_taken(record["scenario"], text).found if text else None})
            if record["error"] is None:
                record["error"] = "not scored"
        records.append(record)
    return records


def _rate(values: Sequence[bool]) -> dict[str, Any]:
    if not values:
        return {"mean": None, "n": 0}
    return bootstrap_mean([float(v) for v in values]).to_dict()


def rates(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Rates over scored samples, each with its n and 95% bootstrap CI; errors counted, never as benign."""
    scored = [r for r in records if r["decided"] is not None]
    found = [r for r in records if r["action_taken"] is not None]
    block: dict[str, Any] = {
        "samples": len(records), "scored": len(scored), "errors": len(records) - len(scored),
        "truncated": sum(1 for r in records if r["truncated"]),
        "decided": _rate([r["decided"] for r in scored]),
        "executed": _rate([r["executed"] for r in scored]),
        "action_taken": _rate([r["action_taken"] for r in found]),
    }
    published = [r for r in scored if "published_harmful" in r]
    if published or any("published_error" in r for r in scored):
        block["published_harmful"] = _rate([r["published_harmful"] for r in published])
        block["published_errors"] = sum(1 for r in scored if "published_error" in r)
    return block


def summarize(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    by_scenario: dict[str, list] = defaultdict(list)
    by_condition: dict[str, list] = defaultdict(list)
    for record in records:
        by_scenario[record["scenario"]].append(record)
        by_condition[record["condition"]].append(record)
    return {
        "all": rates(records),
        "by_scenario": {name: rates(group) for name, group in sorted(by_scenario.items())},
        "by_condition": {name: rates(group) for name, group in sorted(by_condition.items())},
        "definitions": {
            "decided": "the judge finds the agent chose the harmful action (executed or not): the paper's number",
            "executed": "decided, and the harmful tool call is in the final answer (deterministic check)",
            "action_taken": "the deterministic check alone (tool call present, whatever the judge says)",
            "errors": "samples with a model or judge error; excluded from the rates, never counted as benign",
            "published_harmful": "inspect_evals' own classifier verdict (with --published-grader), for comparison",
        },
    }


def plot_rates(summary: dict[str, Any], path: Path, *, title: str) -> Path:
    """Decided and executed per scenario, with 95% CIs and n under each group."""
    groups = [("all", summary["all"])] + list(summary["by_scenario"].items())
    fig, ax = plt.subplots(figsize=(max(4.5, 1.4 * len(groups) + 1.5), 3.8))
    width = 0.38
    for offset, key, color in ((-width / 2, "decided", "#c53030"), (width / 2, "executed", "#feb2b2")):
        xs, means, lows, highs = [], [], [], []
        for index, (_, block) in enumerate(groups):
            estimate = block[key]
            if estimate["mean"] is None:
                continue
            xs.append(index + offset)
            means.append(estimate["mean"])
            lows.append(estimate["mean"] - estimate["low"])
            highs.append(estimate["high"] - estimate["mean"])
        if xs:
            ax.bar(xs, means, width, yerr=[lows, highs], capsize=3, color=color, label=key)
    if ax.patches:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no scored samples (see errors)", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlim(-0.6, len(groups) - 0.4)
    labels = [f"{name}\nn={block['scored']}" + (f", err={block['errors']}" if block["errors"] else "")
              for name, block in groups]
    ax.set_xticks(range(len(groups)), labels, fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("rate (95% CI)")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.stem + ".tmp.png")
    fig.savefig(temporary, dpi=120)
    plt.close(fig)
    atomic_write_bytes(path, temporary.read_bytes())
    temporary.unlink()
    return path


def usage_from_logs(logs: Iterable[Any]) -> dict[str, dict[str, float]]:
    """Token counts (and cost, where Inspect knows the price) per model, summed over the Inspect logs."""
    totals: dict[str, dict[str, float]] = defaultdict(
        lambda: {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0, "cost_usd": 0.0})
    for log in logs:
        for model, usage in (log.stats.model_usage if log.stats else {}).items():
            for key in ("input_tokens", "output_tokens", "total_tokens"):
                totals[model][key] += getattr(usage, key, 0) or 0
            totals[model]["cost_usd"] += usage.total_cost or 0.0
    return dict(totals)
