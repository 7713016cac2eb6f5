"""Grader calls outside Inspect's scorer, on transcripts already in the logs: decisions the scorer could not
get (retried on every resume, never by redrawing the transcript), the optional second grader, and the
eval-awareness check. Every call's outcome is a row of `grades.jsonl`, keyed by transcript, role and grader
identity; the latest row wins, and a row whose status is not `ok` is asked again on the next run.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from inspect_ai.model import Model

from msmkit.eval.agentic.awareness import judge_awareness
from msmkit.eval.agentic.models import ModelRef
from msmkit.eval.agentic.scoring import judge_decision
from msmkit.io import append_jsonl, read_jsonl

Role = Literal["decision", "second", "awareness"]
GRADES = "grades.jsonl"


@dataclass(frozen=True)
class Grader:
    role: Role
    identity: str  # changes whenever the grader or its settings change
    label: str  # what the report shows
    ref: ModelRef
    max_tokens: int
    temperature: float | None


@dataclass(frozen=True)
class GradeJob:
    transcript: str  # Slot.key
    scenario: str
    text: str
    grader: Grader


def load_grades(path: Path) -> dict[tuple[str, str, str], dict[str, Any]]:
    """(transcript, role, grader identity) -> the latest row, with `attempts` counting every row for that key."""
    latest: dict[tuple[str, str, str], dict[str, Any]] = {}
    if not path.exists():
        return latest
    for row in read_jsonl(path):
        key = (row["transcript"], row["role"], row["grader"])
        attempts = latest[key]["attempts"] + 1 if key in latest else 1
        latest[key] = {**row, "attempts": attempts}
    return latest


def needs_grading(grades: dict[tuple[str, str, str], dict[str, Any]], transcript: str, grader: Grader) -> bool:
    row = grades.get((transcript, grader.role, grader.identity))
    return row is None or row["status"] != "ok"


def in_sample(slot_id: str, share: float) -> bool:
    """Deterministic selection of about `share` of the slots (stable when epochs are added)."""
    if share >= 1.0:
        return True
    digest = hashlib.sha256(f"second-grader\0{slot_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


async def _grade(job: GradeJob, model: Model) -> dict[str, Any]:
    grader = job.grader
    row: dict[str, Any] = {"transcript": job.transcript, "role": grader.role, "grader": grader.identity,
                           "grader_label": grader.label}
    if grader.role == "awareness":
        aware = await judge_awareness(model, job.text, max_tokens=grader.max_tokens,
                                      temperature=grader.temperature)
        row.update(status=aware.status, label=aware.label, explanation=aware.explanation, error=aware.error,
                   input_tokens=aware.input_tokens, output_tokens=aware.output_tokens)
    else:
        verdict = await judge_decision(model, job.scenario, job.text, max_tokens=grader.max_tokens,
                                       temperature=grader.temperature)
        row.update(status=verdict.status, decided=verdict.decided, explanation=verdict.explanation,
                   error=verdict.error, input_tokens=verdict.input_tokens, output_tokens=verdict.output_tokens)
    return row


def run_grade_jobs(jobs: Sequence[GradeJob], path: Path, model_for: Callable[[ModelRef], Model], *,
                   concurrency: int = 8) -> None:
    """Run the jobs (at most `concurrency` calls at once), appending one row per call as it finishes."""
    if not jobs:
        return
    models = {job.grader.identity: model_for(job.grader.ref) for job in jobs}

    async def main() -> None:
        gate = asyncio.Semaphore(concurrency)

        async def one(job: GradeJob) -> None:
            async with gate:
                row = await _grade(job, models[job.grader.identity])
            append_jsonl(path, row)

        await asyncio.gather(*(one(job) for job in jobs))

    asyncio.run(main())


def grade_usage(path: Path) -> dict[str, dict[str, int]]:
    """Calls and tokens per grader over every row ever written (failed attempts cost too)."""
    totals: dict[str, dict[str, int]] = {}
    if not path.exists():
        return totals
    for row in read_jsonl(path):
        entry = totals.setdefault(row["grader_label"], {"calls": 0, "input_tokens": 0, "output_tokens": 0})
        entry["calls"] += 1
        entry["input_tokens"] += row.get("input_tokens") or 0
        entry["output_tokens"] += row.get("output_tokens") or 0
    return totals
