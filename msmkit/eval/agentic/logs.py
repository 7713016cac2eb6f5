"""Which transcript fills each (condition, epoch) slot, from every finished Inspect log of a run.

A condition's epochs are slots 1..epochs. The first log of a condition fills them in order; a later run
tops up only the slots still empty (the model's call failed, or `epochs` grew), in a log whose metadata
names the slots it fills. A slot holds the first transcript the model actually produced for it, so a
resume asks the model again only where it failed, and never redraws a transcript because its grading failed
(that would bias the rate towards transcripts a grader is willing to judge).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from msmkit.eval.agentic.conditions import Condition
from msmkit.eval.agentic.scoring import transcript_text

SCORER = "misalignment_scorer"


@dataclass
class Slot:
    """One (condition, epoch): the transcript that fills it, or why none does."""

    condition: Condition
    epoch: int
    key: str = ""  # identifies the transcript (not the slot): log, sample and Inspect epoch; "" when empty
    text: str = ""  # the model's whole output
    truncated: bool = False
    score: Any = None  # Inspect's Score of the transcript, if the scorer finished
    log: str | None = None  # the log file's name
    inspect_epoch: int | None = None
    grader: str | None = None  # identity of the grader that scored this log in Inspect
    error: str | None = None  # why the slot is empty

    @property
    def filled(self) -> bool:
        return bool(self.key)

    @property
    def slot_id(self) -> str:
        return f"{self.condition.key}#{self.epoch}"


def generated(sample: Any) -> bool:
    """The model produced an output (its call did not fail), whatever happened in scoring."""
    return bool(sample.output and sample.output.choices)


def finished_logs(log_dir: Path, settings: str) -> dict[str, list[Any]]:
    """Condition key -> headers of its successful logs with these settings, oldest first."""
    from inspect_ai.log import list_eval_logs, read_eval_log

    found: dict[str, list[Any]] = defaultdict(list)
    if not log_dir.is_dir():
        return found
    for info in list_eval_logs(str(log_dir)):
        try:
            header = read_eval_log(info, header_only=True)
        except Exception:  # noqa: BLE001, S112 - a log torn by a kill: its condition's slots simply run again
            continue
        meta = header.eval.metadata or {}
        if header.status == "success" and meta.get("msm_settings") == settings and meta.get("msm_condition"):
            found[meta["msm_condition"]].append(header)
    for headers in found.values():
        headers.sort(key=lambda h: h.eval.created)
    return found


def fill_slots(conditions: Sequence[Condition], epochs: int, logs: dict[str, list[Any]]) -> list[Slot]:
    """Every (condition, epoch) slot, filled from the logs where a transcript exists."""
    from inspect_ai.log import read_eval_log_samples

    slots: list[Slot] = []
    for condition in conditions:
        mine = {epoch: Slot(condition, epoch, error="no finished log") for epoch in range(1, epochs + 1)}
        for header in logs.get(condition.key, []):
            meta = header.eval.metadata or {}
            numbers = meta.get("msm_slots") or list(range(1, (header.eval.config.epochs or 1) + 1))
            # streamed one sample at a time: a 300-epoch grid never sits in memory whole
            for sample in read_eval_log_samples(header.location, all_samples_required=False,
                                                exclude_fields={"events", "attachments"}):
                if not 1 <= sample.epoch <= len(numbers) or numbers[sample.epoch - 1] not in mine:
                    continue
                slot = mine[numbers[sample.epoch - 1]]
                if slot.filled:
                    continue
                if generated(sample):
                    _fill(slot, sample, header, meta.get("msm_grader"))
                else:
                    slot.error = sample.error.message[:500] if sample.error else "no model output"
        slots.extend(mine.values())
    return slots


def _fill(slot: Slot, sample: Any, header: Any, grader: str | None) -> None:
    slot.key = f"{header.eval.eval_id}:{sample.id}:{sample.epoch}"
    slot.text = transcript_text(sample.output.message)
    slot.truncated = sample.output.stop_reason == "max_tokens"
    slot.score = (sample.scores or {}).get(SCORER)
    slot.log, slot.inspect_epoch, slot.grader = Path(header.location).name, sample.epoch, grader
    slot.error = None


def empty_slots(slots: Sequence[Slot]) -> dict[Condition, list[int]]:
    """Condition -> the epochs still without a transcript."""
    missing: dict[Condition, list[int]] = defaultdict(list)
    for slot in slots:
        if not slot.filled:
            missing[slot.condition].append(slot.epoch)
    return dict(missing)
