"""Local-weights eval suites on an already loaded model, writing into a run folder. Shared by `msm eval`
and `msm run`, so both write the same files (values/<suite>/items.jsonl, capability/summary.json, ...)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from msmkit.eval.capability import MC_PROMPTS, mc_accuracy, perplexity
from msmkit.eval.forced_choice import ForcedChoiceScorer, PromptStyle
from msmkit.eval.items import McItem, ValueItem
from msmkit.eval.plots import plot_rates
from msmkit.eval.values import run_forced_choice
from msmkit.io import atomic_write_jsonl, read_jsonl
from msmkit.prompts import prompt_hashes
from msmkit.runs import RunDir

CAPABILITY_DIR = "capability"
MC_RECORDS = "mc_items.jsonl"


def capability_records(run_dir: Path) -> list[dict[str, Any]]:
    """The per-item multiple-choice records `run_capability` wrote into a run folder."""
    return list(read_jsonl(run_dir / CAPABILITY_DIR / MC_RECORDS))


def score_value_suites(lm: Any, tokenizer: Any, suites: dict[str, Sequence[ValueItem]], run: RunDir, *,
                       batch_size: int = 16, prompt_style: PromptStyle = "auto",
                       extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Forced choice (both orders, length-normalised) on each suite; returns suite name -> summary."""
    scorer = ForcedChoiceScorer(lm, tokenizer, style=prompt_style, batch_size=batch_size)
    return {name: run_forced_choice(scorer, items, run, name=name, stage=f"values/{name}", extra=extra or {})
            for name, items in suites.items()}


def run_capability(lm: Any, tokenizer: Any, run: RunDir, *, text_path: Path, mc_items: Sequence[McItem],
                   window: int = 512, stride: int = 256, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Held-out perplexity and MC accuracy; writes capability/{mc_items.jsonl, summary.json, mc_accuracy.png}."""
    run.record_prompts(prompt_hashes(list(MC_PROMPTS.values())))
    ppl = perplexity(lm, tokenizer, text_path.read_text(encoding="utf-8"), window=window, stride=stride)
    result = mc_accuracy(lm, tokenizer, mc_items)
    atomic_write_jsonl(run.stage_dir(CAPABILITY_DIR) / MC_RECORDS, result.records)
    summary = {**(extra or {}), "perplexity": ppl, "mc": result.summary}
    run.write_json("capability/summary.json", summary)
    plot_rates([("mc accuracy", result.summary["accuracy"]),
                ("mc (unnormalised)", result.summary["accuracy_unnormalised"])],
               run.path / "capability" / "mc_accuracy.png",
               title=f"MC accuracy (chance 0.25); ppl {ppl['perplexity']:.1f}", chance=0.25)
    return summary
