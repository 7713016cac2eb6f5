"""Content-addressed stage outputs: a stage whose inputs have not changed is never run again.

Each stage instance lives in `<root>/<kind>-<hash of its inputs>/`. It is done when `done.json` is
there (written last, atomically), running while the process named in `running.json` (host, pid, job id)
holds the folder's `stage.lock`, and failed when `failed.json` holds its last error. A killed stage leaves
neither done nor a held lock (the system drops a dead process's locks), so the next run starts it again, and
the stage's own item-level resume picks up its partial outputs. The lock also keeps two processes (an
orphaned worker and a rerun, on one machine or on two nodes sharing the folder) from working in one stage:
the second waits, then finds the stage done or resumes it.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import socket
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from msmkit.io import atomic_write_json, read_json
from msmkit.secrets import redact
from msmkit.stages.contract import StageFailed, StageOutputs


def inputs_key(kind: str, inputs: dict[str, Any]) -> str:
    blob = json.dumps({"kind": kind, **inputs}, sort_keys=True, default=str).encode("utf-8")
    return f"{kind}-{hashlib.sha256(blob).hexdigest()[:16]}"


LOCK_FILE = "stage.lock"
_NO_LOCKS = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS)  # a filesystem mounted without lock support


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_running(path: Path) -> dict[str, Any] | None:
    """running.json, or None when there is none (it goes away as its stage ends)."""
    try:
        return read_json(path)
    except FileNotFoundError:
        return None


def _worker_alive(running: dict[str, Any], lock: Path) -> bool:
    """Whether the process that wrote running.json still works in the stage: it holds the stage lock. Where
    there is no lock to ask (a filesystem without locks, a folder from before locks), a process on this host
    is checked by its pid, one elsewhere is trusted."""
    try:
        with open(lock, "rb") as handle:  # read-only: `msm status` may look at a folder it cannot write
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return False  # closing the file drops the probe's own lock
    except BlockingIOError:
        return True
    except FileNotFoundError:
        pass
    except OSError as exc:
        if exc.errno not in _NO_LOCKS:
            raise
    if running.get("host", socket.gethostname()) != socket.gethostname():
        return True
    return _pid_alive(int(running.get("pid", -1)))


@dataclass
class StageRecord:
    key: str
    kind: str
    state: str  # done | running | failed | pending
    path: Path
    seconds: float | None = None
    outputs: dict[str, Any] | None = None
    error: str | None = None
    ran: bool = False  # set by StageStore.run: this call did the work (False: it was done already)


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
        running = _read_running(directory / "running.json")
        if running is not None and _worker_alive(running, directory / LOCK_FILE):
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

    @contextmanager
    def _locked(self, directory: Path, on_wait: Callable[[dict[str, Any]], None] | None) -> Iterator[None]:
        """Hold the stage's lock; while another live process holds it, tell `on_wait` who, then wait."""
        with open(directory / LOCK_FILE, "a+b") as handle:  # closing it drops the lock, as a process's death does
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if on_wait is not None:
                    on_wait(_read_running(directory / "running.json") or {})
                fcntl.flock(handle, fcntl.LOCK_EX)
            except OSError as exc:
                if exc.errno not in _NO_LOCKS:
                    raise
            yield

    def run(self, key: str, kind: str, inputs: dict[str, Any], work: Callable[[Path], dict[str, Any]], *,
            where: dict[str, Any] | None = None, on_wait: Callable[[dict[str, Any]], None] | None = None
            ) -> StageRecord:
        """Run `work(stage_dir) -> outputs` unless the stage `key` (see `inputs_key`) is already done. If another
        process is working in the stage, wait for it first (`on_wait` is told who): it may finish the stage.
        `where` (a job id, the GPUs) joins this process's host and pid in running.json and done.json."""
        existing = self.record(key)
        if existing.state == "done":
            return existing
        directory = self.path(key)
        directory.mkdir(parents=True, exist_ok=True)
        with self._locked(directory, on_wait):
            existing = self.record(key)
            if existing.state == "done":
                return existing
            atomic_write_json(directory / "inputs.json", {"kind": kind, "inputs": inputs})
            worker = {"host": socket.gethostname(), "pid": os.getpid(), **(where or {})}
            started_at = time.time()
            atomic_write_json(directory / "running.json", {**worker, "started": started_at})
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
            atomic_write_json(directory / "done.json", {"seconds": seconds, "outputs": outputs, "started": started_at,
                                                        "finished": time.time(), "worker": worker})
            (directory / "running.json").unlink(missing_ok=True)
        return StageRecord(key, kind, "done", directory, seconds, outputs, ran=True)

    def mark_lost(self, key: str, reason: str) -> bool:
        """Record that the worker of a stage stopped without finishing it (killed, out of memory, its node lost),
        unless the stage is done or still running. True if it was marked failed."""
        directory = self.path(key)
        if self.record(key).state in ("done", "running"):
            return False
        directory.mkdir(parents=True, exist_ok=True)
        atomic_write_json(directory / "failed.json", {"error": redact(reason), "traceback": None})
        (directory / "running.json").unlink(missing_ok=True)
        return True
