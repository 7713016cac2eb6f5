"""Content-addressed stage outputs: a stage whose inputs have not changed is never run again.

Each stage instance lives in `<root>/<kind>-<hash of its inputs>/`. It is done when `done.json` is
there (written last, atomically), running while `running.json` names a live process, and failed
when `failed.json` holds its last error. A killed stage leaves neither done nor a live pid, so the
next run starts it again, and the stage's own item-level resume picks up its partial outputs.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from msmkit.io import atomic_write_json, read_json
from msmkit.secrets import redact
from msmkit.stages.contract import StageFailed, StageOutputs


def inputs_key(kind: str, inputs: dict[str, Any]) -> str:
    blob = json.dumps({"kind": kind, **inputs}, sort_keys=True, default=str).encode("utf-8")
    return f"{kind}-{hashlib.sha256(blob).hexdigest()[:16]}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class StageRecord:
    key: str
    kind: str
    state: str  # done | running | failed | pending
    path: Path
    seconds: float | None = None
    outputs: dict[str, Any] | None = None
    error: str | None = None


class StageStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        return self.root / key

    def record(self, key: str) -> StageRecord:
        directory = self.path(key)
        kind = key.rsplit("-", 1)[0]
        if (directory / "done.json").exists():
            done = read_json(directory / "done.json")
            return StageRecord(key, kind, "done", directory, done.get("seconds"), done.get("outputs"))
        running = directory / "running.json"
        if running.exists() and _pid_alive(int(read_json(running).get("pid", -1))):
            return StageRecord(key, kind, "running", directory)
        if (directory / "failed.json").exists():
            return StageRecord(key, kind, "failed", directory, error=read_json(directory / "failed.json").get("error"))
        return StageRecord(key, kind, "pending", directory)

    def outputs(self, key: str) -> StageOutputs:
        """A done stage's typed outputs (its kind's outputs class over its folder and done.json summary)."""
        from msmkit.experiment.registry import STAGE_KINDS

        record = self.record(key)
        if record.state != "done" or record.outputs is None:
            raise StageFailed(f"stage {key} is {record.state}, not done: its outputs are not there yet")
        return STAGE_KINDS[record.kind].load_outputs(record.path, record.outputs)

    def done_outputs(self, key: str | None) -> StageOutputs | None:
        """The typed outputs of a done stage, else None."""
        if key is None or self.record(key).state != "done":
            return None
        return self.outputs(key)

    def run(self, key: str, kind: str, inputs: dict[str, Any], work: Callable[[Path], dict[str, Any]]) -> StageRecord:
        """Run `work(stage_dir) -> outputs` unless the stage `key` (see `inputs_key`) is already done."""
        existing = self.record(key)
        if existing.state == "done":
            return existing
        directory = self.path(key)
        directory.mkdir(parents=True, exist_ok=True)
        atomic_write_json(directory / "inputs.json", {"kind": kind, "inputs": inputs})
        atomic_write_json(directory / "running.json", {"pid": os.getpid(), "started": time.time()})
        (directory / "failed.json").unlink(missing_ok=True)
        started = time.monotonic()
        try:
            outputs = work(directory)
        except BaseException as exc:
            atomic_write_json(directory / "failed.json", {
                "error": redact(f"{type(exc).__name__}: {exc}"),
                "traceback": redact(traceback.format_exc()),
            })
            (directory / "running.json").unlink(missing_ok=True)
            raise
        seconds = time.monotonic() - started
        atomic_write_json(directory / "done.json", {"seconds": seconds, "outputs": outputs, "finished": time.time()})
        (directory / "running.json").unlink(missing_ok=True)
        return StageRecord(key, kind, "done", directory, seconds, outputs)
