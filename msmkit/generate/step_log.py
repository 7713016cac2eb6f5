"""Append-only JSONL logs, one per generation step, keyed by task id: what a rerun must not ask for again.

A line is written and flushed as soon as an answer arrives, so a killed process keeps every answer
that reached the kernel; fsync runs every few seconds and on close (group commit) instead of per
line, which keeps the event loop free at high concurrency. A torn last line is skipped on load.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import IO, Any

from msmkit.io import read_jsonl, repair_torn_tail

_FSYNC_INTERVAL_S = 2.0


class StepLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.records: dict[str, dict[str, Any]] = {}
        for record in read_jsonl(path):
            self.records[record["task"]] = record
        self._handle: IO[str] | None = None
        self._last_sync = time.monotonic()

    def get(self, task: str) -> dict[str, Any] | None:
        return self.records.get(task)

    def __contains__(self, task: str) -> bool:
        return task in self.records

    def append(self, record: dict[str, Any]) -> None:
        if "task" not in record:
            raise ValueError("a step record needs a 'task' id")
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            repair_torn_tail(self.path)  # a kill mid-line leaves a partial last line
            self._handle = open(self.path, "a", encoding="utf-8")
        self._handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._handle.flush()
        self.records[record["task"]] = record
        now = time.monotonic()
        if now - self._last_sync > _FSYNC_INTERVAL_S:
            os.fsync(self._handle.fileno())
            self._last_sync = now

    def close(self) -> None:
        if self._handle is not None:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
            self._handle = None
