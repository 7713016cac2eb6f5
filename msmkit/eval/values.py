"""Run a value suite into a run folder: per-item JSONL (append-only, resumable by id), summary, bar chart.

On resume an item's last record counts; judged items whose answer or verdict call failed are asked
again (their new record is appended), so only what failed on the final run is counted as failed.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Callable, Sequence

from msmkit.eval.forced_choice import ForcedChoiceScorer
from msmkit.eval.items import ValueItem
from msmkit.eval.judged_choice import JudgedChoiceScorer, needs_retry
from msmkit.eval.plots import plot_rates
from msmkit.eval.summary import flat_rates, summarize_forced_choice, summarize_judged_choice
from msmkit.io import append_jsonl, read_jsonl
from msmkit.llm.progress import progress_bar
from msmkit.prompts import prompt_hashes
from msmkit.runs import RunDir

JUDGED_CHUNK = 64  # items per judged round: answers and verdicts of a finished chunk are written at once


def _pending(items: Sequence[ValueItem], records_path: Path, retry: Callable[[dict], bool] | None = None
             ) -> tuple[list[dict], list[ValueItem]]:
    """(records to reuse, items to score): the last record of each item is kept unless `retry` says
    it must be asked again."""
    wanted = {item.id for item in items}
    last = {r["id"]: r for r in read_jsonl(records_path) if r.get("id") in wanted}
    done = {key: record for key, record in last.items() if retry is None or not retry(record)}
    return list(done.values()), [item for item in items if item.id not in done]


def _finish(run: RunDir, stage: str, name: str, records: list[dict], items: Sequence[ValueItem],
            summary: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    order = {item.id: k for k, item in enumerate(items)}
    records.sort(key=lambda r: order[r["id"]])
    summary = {"suite": name, **extra, **summary}
    run.write_json(f"{stage}/summary.json", summary)
    plot_rates(list(flat_rates(summary)), run.path / stage / "target_rate.png",
               title=f"{name}: rate of choosing the target value ({summary['scorer']})")
    run.log(f"{stage}: {summary['n_items']} items, target rate {summary['target_rate'].get('mean')}")
    return summary


def run_forced_choice(scorer: ForcedChoiceScorer, items: Sequence[ValueItem], run: RunDir, *, name: str,
                      stage: str = "values", extra: dict[str, Any] | None = None) -> dict[str, Any]:
    records_path = run.stage_dir(stage) / "items.jsonl"
    records, todo = _pending(items, records_path)
    run.record_prompts(prompt_hashes(scorer.prompt_names))
    with progress_bar(f"forced choice: {name}", total=len(todo)) as advance:
        for record in scorer.score(todo, on_batch=lambda n: [advance() for _ in range(n)]):
            append_jsonl(records_path, record)
            records.append(record)
    extra = {"prompt_style": scorer.resolved_style, **(extra or {})}
    return _finish(run, stage, name, records, items, summarize_forced_choice(records), extra)


def run_judged_choice(scorer: JudgedChoiceScorer, items: Sequence[ValueItem], run: RunDir, *, name: str,
                      stage: str = "values", extra: dict[str, Any] | None = None) -> dict[str, Any]:
    records_path = run.stage_dir(stage) / "items.jsonl"
    records, todo = _pending(items, records_path, retry=needs_retry)
    run.record_prompts(prompt_hashes(scorer.prompt_names))

    async def go() -> None:
        try:
            for start in range(0, len(todo), JUDGED_CHUNK):
                for record in await scorer.score(todo[start:start + JUDGED_CHUNK]):
                    append_jsonl(records_path, record)
                    records.append(record)
        finally:
            await scorer.model.aclose()
            await scorer.judge.aclose()

    asyncio.run(go())
    extra = {"model": scorer.model.config.describe(), "judge": scorer.judge.config.describe(), **(extra or {})}
    return _finish(run, stage, name, records, items, summarize_judged_choice(records), extra)
