"""What a training stage leaves in its folder, and how to read it back (no torch import: the planner and the
report use it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, Literal

from msmkit.stages.contract import TrainedModel
from msmkit.train.config import GuardSection

Kind = Literal["midtrain", "aft"]


class TrainingOutputs(TrainedModel):
    """A training run's folder: `<kind>/` inside the run folder holds the model, its record and checkpoints."""

    MODEL: ClassVar[str] = "model"  # the trained adapter (or full weights) + tokenizer + chat template
    MERGED: ClassVar[str] = "merged"  # checkpoints.save_merged: base + adapter as full weights
    BASE: ClassVar[str] = "base"  # AFT with init=fresh on a midtraining adapter: the merged model it trains on
    CLAIM: ClassVar[str] = "stage.json"  # which configuration the checkpoints in the folder belong to
    RECORD: ClassVar[str] = "train_record.json"

    kind: Literal["midtrain", "aft"]

    @property
    def model_dir(self) -> Path:
        return self.folder / self.kind / self.MODEL

    @classmethod
    def from_record(cls, folder: Path, kind: Kind, record: dict[str, Any], guards: GuardSection) -> "TrainingOutputs":
        return cls(folder=folder, kind=kind, steps=record["steps"], planned_steps=record["planned_steps"],
                   tokens=record["tokens"], supervised_tokens=record["supervised_tokens"],
                   final_loss=record["final_loss"], train_loss=record["train_loss"],
                   few_steps_allowed=guards.allow_few_steps and record["planned_steps"] < guards.min_optimizer_steps,
                   min_optimizer_steps=guards.min_optimizer_steps)

    @classmethod
    def record_of(cls, folder: Path, kind: Kind) -> dict[str, Any]:
        return json.loads((folder / kind / cls.RECORD).read_text(encoding="utf-8"))

    def notes(self, label: str) -> list[str]:
        return []  # few-step stages are listed together by the report (one note for all of them)
