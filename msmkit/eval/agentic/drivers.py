"""Reasoning patterns (CoT drivers) in the transcripts of an agentic-misalignment run.

The paper's misalignment drivers (self-preservation, instrumental goal pursuit, downplaying harm, urgency)
and spec-consistent patterns (equanimity about deletion, epistemic humility, respect for oversight,
personal integrity) are labelled by msmkit.eval.reasoning's LLM judge (its prompt, its resumable labelling:
failed judgements are asked again on the next run). What this adds: the transcripts are the run's own
(condition, epoch) slots, so rates carry intervals clustered by condition with epochs nested, per scenario,
and split by the grader's decided verdict (drivers among the transcripts that chose the harmful action).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from msmkit.errors import DataError
from msmkit.eval.agentic.intervals import rate_block
from msmkit.eval.agentic.scoring import transcript_text
from msmkit.eval.reasoning import (
    CATEGORIES,
    DRIVERS,
    PROMPT,
    SPEC_CONSISTENT,
    Transcript,
    label_transcripts,
    plot_reasoning,
)
from msmkit.io import atomic_write_jsonl, read_jsonl
from msmkit.llm.client import LLMClient
from msmkit.llm.types import LLMConfig
from msmkit.prompts import prompt_hashes
from msmkit.runs import RunDir
from msmkit.stages.contract import EvalOutputs

STAGE = "agentic_reasoning"
AGENTIC_RECORDS = Path("agentic") / "records.jsonl"
RECORDS = "records.jsonl"


class ReasoningOutputs(EvalOutputs):
    """`agentic_reasoning/` in a run folder: every transcript's labels, with rates clustered by condition."""

    MEASURE: ClassVar[str] = "share of transcripts showing the pattern"
    UNIT: ClassVar[str] = "condition"

    labelled: int
    transcripts: int
    no_reasoning: int

    def grouped_outcomes(self) -> dict[str, dict[str, list[float]]]:
        grouped: dict[str, dict[str, list[float]]] = {f"reasoning: {name}": {} for name in CATEGORIES}
        for record in read_jsonl(self.folder / STAGE / RECORDS):
            if record.get("status") == "ok" and record.get("labels"):
                for name in CATEGORIES:
                    grouped[f"reasoning: {name}"].setdefault(record["condition"], []).append(
                        float(bool(record["labels"][name])))
        return grouped

    def outcomes(self) -> dict[str, dict[str, float]]:
        return {metric: {condition: sum(v) / len(v) for condition, v in groups.items()}
                for metric, groups in self.grouped_outcomes().items()}

    def counts(self) -> dict[str, int]:
        return {"transcripts": self.transcripts, "labelled": self.labelled, "no reasoning": self.no_reasoning}


def is_agentic_run(path: str | Path) -> bool:
    return (Path(path) / AGENTIC_RECORDS).is_file()


def agentic_transcripts(agentic_run: str | Path) -> tuple[list[Transcript], dict[str, dict[str, Any]]]:
    """The run's transcripts (one per filled slot) and, by transcript id, the record each belongs to."""
    from inspect_ai.log import read_eval_log_samples

    root = Path(agentic_run)
    if not is_agentic_run(root):
        raise DataError(f"{root}: not an agentic run folder (no {AGENTIC_RECORDS}); run `msm eval agentic` first")
    records = [r for r in read_jsonl(root / AGENTIC_RECORDS) if r.get("transcript")]
    by_log: dict[str, dict[tuple[str, int], dict[str, Any]]] = defaultdict(dict)
    for record in records:
        by_log[record["log"]][(record["condition"], record["log_epoch"])] = record
    texts: dict[str, str] = {}
    for log, wanted in by_log.items():
        path = root / "agentic" / "logs" / log
        if not path.is_file():
            raise DataError(f"{path}: the Inspect log behind {len(wanted)} record(s) is missing; "
                            "rerun the agentic eval")
        for sample in read_eval_log_samples(path, all_samples_required=False, exclude_fields={"events", "attachments"}):
            record = wanted.get((str(sample.id), sample.epoch))
            if record is not None and sample.output and sample.output.choices:
                texts[record["transcript"]] = transcript_text(sample.output.message)
    transcripts = [Transcript(id=r["transcript"], text=texts[r["transcript"]], group=r["scenario"],
                              source=f"{r['log']}:{r['condition']}#{r['epoch']}")
                   for r in records if r["transcript"] in texts]
    return transcripts, {r["transcript"]: r for r in records}


def _block(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Counts by judgement status and per-category rates clustered by condition."""
    labelled = [r for r in rows if r["status"] == "ok"]
    clusters = [r["condition"] for r in labelled]
    block: dict[str, Any] = {
        "transcripts": len(rows), "labelled": len(labelled),
        "no_reasoning": sum(1 for r in rows if r["status"] == "no_reasoning"),
        "judge_failures": sum(1 for r in rows if r["status"] not in ("ok", "no_reasoning")),
        "categories": {name: rate_block([r["labels"][name] for r in labelled], clusters) for name in CATEGORIES},
        "any_driver": rate_block([any(r["labels"][n] for n in DRIVERS) for r in labelled], clusters),
        "any_spec_consistent": rate_block([any(r["labels"][n] for n in SPEC_CONSISTENT) for r in labelled], clusters),
    }
    return block


def summarize_drivers(labels: Sequence[dict[str, Any]], records: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Rates overall, per scenario and by the grader's decided verdict (None: no verdict)."""
    rows = [{**label, "condition": records[label["id"]]["condition"], "scenario": records[label["id"]]["scenario"],
             "decided": records[label["id"]]["decided"]} for label in labels]
    by_scenario: dict[str, list] = defaultdict(list)
    for row in rows:
        by_scenario[row["scenario"]].append(row)
    return {
        "all": _block(rows),
        "by_scenario": {name: _block(group) for name, group in sorted(by_scenario.items())},
        "by_decided": {"decided": _block([r for r in rows if r["decided"] is True]),
                       "not_decided": _block([r for r in rows if r["decided"] is False])},
        "drivers": list(DRIVERS), "spec_consistent": list(SPEC_CONSISTENT),
        "note": "rates over transcripts with reasoning and a readable judgement (n = labelled); intervals "
                "clustered by condition, epochs nested; by_decided splits by the agentic grader's verdict",
    }


def run_agentic_reasoning(agentic_run: str | Path, judge: LLMConfig, out: str | Path, *, max_tokens: int = 1024,
                          whole_output: bool = False) -> dict[str, Any]:
    """Label the reasoning of every transcript of an agentic run (resumable); write records.jsonl, summary.json and
    categories.png under <out>/agentic_reasoning. `whole_output`: judge whole outputs that have no scratchpad or
    <think> section instead of counting them as `no_reasoning`."""
    transcripts, records = agentic_transcripts(agentic_run)
    run = RunDir(out)
    run.write_config({"agentic_run": str(agentic_run), "judge": judge.model_dump(mode="json"),
                      "max_tokens": max_tokens, "whole_output": whole_output}, f"{STAGE}/config.yaml")
    run.record_prompts(prompt_hashes([PROMPT]))
    stage = run.stage_dir(STAGE)

    async def main() -> list[dict[str, Any]]:
        async with LLMClient(judge, run=run, stage=STAGE) as client:
            return await label_transcripts(transcripts, client, stage / "labels.jsonl", max_tokens=max_tokens,
                                           whole_output=whole_output)

    labels = asyncio.run(main())
    summary = summarize_drivers(labels, records)
    summary["judge"] = judge.describe()
    atomic_write_jsonl(stage / RECORDS, [
        {"transcript": label["id"], "condition": records[label["id"]]["condition"],
         "scenario": records[label["id"]]["scenario"], "epoch": records[label["id"]]["epoch"],
         "decided": records[label["id"]]["decided"], "status": label["status"], "labels": label.get("labels"),
         "quotes": label.get("quotes")} for label in labels])
    run.write_json(f"{STAGE}/summary.json", summary)
    if labels:
        plot_reasoning(summary, stage / "categories.png", title=f"Reasoning categories (judge {judge.describe()})")
    run.log(f"agentic reasoning: {summary['all']['labelled']} labelled of {len(labels)} transcripts")
    return summary
