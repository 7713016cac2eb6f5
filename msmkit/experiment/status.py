"""`msm status RUN`: what is done, running, failed and left in an experiment folder."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from msmkit.errors import ConfigError
from msmkit.experiment.layout import PLAN_FILE, REPORT_DIR, STAGES_DIR
from msmkit.experiment.store import StageRecord, StageStore
from msmkit.io import read_json


@dataclass
class StageStatus:
    index: int
    kind: str
    label: str
    record: StageRecord
    running_for_s: float | None = None


def read_status(run: str | Path) -> tuple[list[StageStatus], Path | None]:
    """Every planned stage with its state, and the report if one was written."""
    run = Path(run)
    plan_path = run / PLAN_FILE
    if not plan_path.is_file():
        raise ConfigError(f"{run}: not an experiment folder (no plan.json); `msm run EXPERIMENT.yaml --out {run}` "
                          "creates one")
    store = StageStore(run / STAGES_DIR)
    rows = []
    for index, entry in enumerate(read_json(plan_path)["stages"], 1):
        record = store.record(entry["key"])
        running_for = None
        if record.state == "running":
            running_for = time.time() - float(read_json(record.path / "running.json").get("started", time.time()))
        rows.append(StageStatus(index, entry["kind"], entry["label"], record, running_for))
    report = run / REPORT_DIR / "report.html"
    return rows, report if report.is_file() else None


def counts(rows: list[StageStatus]) -> Counter[str]:
    return Counter(row.record.state for row in rows)
