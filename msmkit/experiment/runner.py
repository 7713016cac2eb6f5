"""`msm run`: build the plan, run every stage not yet done (reusing finished ones), then write the report.
A stage starts once every stage it needs is done: in this process one after another in plan order (the
default), or side by side as worker processes or Slurm jobs (`executor:`, see msmkit.experiment.distributed).
A killed run is continued by running it again: finished stages are reused, a stage that was cut off resumes
its own partial work, and failed stages are retried."""

from __future__ import annotations

import fcntl
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Protocol

from rich.console import Console
from rich.markup import escape

from msmkit.errors import ConfigError, MsmError
from msmkit.experiment.layout import PLAN_FILE, REPORT_DIR
from msmkit.experiment.plan import Plan, Stage, plan_for
from msmkit.experiment.preview import plan_problems
from msmkit.experiment.report import write_report
from msmkit.experiment.results import collect_report_data
from msmkit.experiment.store import StageStore
from msmkit.experiment.usage import merge_stage_records
from msmkit.models.model_cache import ModelCache
from msmkit.runs import RunDir
from msmkit.stages.contract import StageEnv


@dataclass
class RunOutcome:
    out: Path
    report_html: Path
    report_md: Path
    executed: list[str] = field(default_factory=list)  # stage keys run (not reused) by this invocation
    reused: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # key -> error
    blocked: list[str] = field(default_factory=list)  # not run because a stage they need failed
    seconds: float = 0.0


class RunLocked(MsmError):
    pass


@dataclass
class Finished:
    """A started stage that ended: done (ran, or found done), or failed with its error."""

    key: str
    error: str | None = None
    ran: bool = True
    seconds: float | None = None
    log: Path | None = None  # a worker's output, for a failure


@contextmanager
def _exclusive(out: Path) -> Iterator[None]:
    """One `msm run` per run folder at a time (two would train into the same checkpoints)."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / ".lock", "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            raise RunLocked(f"{out}: another `msm run` (pid {handle.read().strip() or '?'}) is working in this "
                            "folder; wait for it, or stop it and rerun to continue") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_experiment(config_path: str | Path, out: str | Path, *, console: Console | None = None) -> RunOutcome:
    console = console or Console(stderr=True)
    config_path, out = Path(config_path), Path(out)
    plan = plan_for(config_path, out)
    problems = plan_problems(plan)
    if problems:
        raise ConfigError(f"{config_path}: {len(problems)} stage(s) cannot run as planned, so nothing was run:\n  - "
                          + "\n  - ".join(problems))
    started = time.monotonic()
    with _exclusive(out):
        run = RunDir(out)
        run.write_config(plan.config, "experiment.yaml")
        run.write_json(PLAN_FILE, {"config": str(config_path.resolve()), **plan.as_json()})
        store = StageStore(plan.root)
        outcome = _run_stages(plan, store, run, console)
        outcome.seconds = time.monotonic() - started
        run.log(f"stages finished in {outcome.seconds:.0f} s: {len(outcome.executed)} run, "
                f"{len(outcome.reused)} reused, {len(outcome.failed)} failed, {len(outcome.blocked)} blocked")
        run.close()  # before the merge below: closing writes the folder's own (empty) usage ledger
        merge_stage_records(out, [store.path(key) for key in plan.stages])
        data = collect_report_data(plan, store)
        outcome.report_html, outcome.report_md = write_report(data, out / REPORT_DIR)
    return outcome


class Launcher(Protocol):
    """Where started stages run: `start` a stage the runner found ready when `can_start` says there is room,
    then `wait` for the next ones to end."""

    concurrent: bool  # stages run side by side (their messages go to their own logs)

    def can_start(self, stage: Stage) -> bool: ...

    def start(self, stage: Stage) -> str: ...  # returns where it runs

    def wait(self) -> list[Finished]: ...

    def close(self) -> None: ...  # stops whatever still runs


class InProcessLauncher:
    """Runs each stage in this process as it is started (one at a time), sharing one model cache between them."""

    concurrent = False

    def __init__(self, store: StageStore, run: RunDir, console: Console) -> None:
        self.store, self.run, self.console = store, run, console
        self.models = ModelCache()
        self.finished: list[Finished] = []

    def can_start(self, stage: Stage) -> bool:
        return not self.finished

    def start(self, stage: Stage) -> str:
        def say(message: str, label: str = stage.label) -> None:
            self.console.print(f"    {escape(message)}", highlight=False)
            self.run.log(f"{label}: {message}")

        def waiting(worker: dict[str, Any]) -> None:
            say(f"another process works in this stage ({worker.get('host', '?')}, pid {worker.get('pid', '?')}): "
                "waiting for it")

        env = StageEnv(say=say, load=lambda ref: self.store.outputs(ref.key), services={ModelCache: self.models})
        try:
            record = self.store.run(stage.key, stage.kind.name, stage.key_inputs(),
                                    lambda folder: stage.kind.run(stage.job, folder, env).summary(), on_wait=waiting)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # one failed stage never stops the stages that do not need it
            self.finished.append(Finished(stage.key, error=f"{type(exc).__name__}: {exc}"))
        else:
            self.finished.append(Finished(stage.key, ran=record.ran, seconds=record.seconds))
        return str(self.store.path(stage.key))

    def wait(self) -> list[Finished]:
        finished, self.finished = self.finished, []
        return finished

    def close(self) -> None:
        self.models.release()


def _launcher(plan: Plan, store: StageStore, run: RunDir, console: Console) -> Launcher:
    executor = plan.config.executor
    if executor.kind == "inprocess":
        return InProcessLauncher(store, run, console)
    from msmkit.experiment.distributed import SubmititLauncher

    return SubmititLauncher(executor, run.path, store, plan.ordered())


def _run_stages(plan: Plan, store: StageStore, run: RunDir, console: Console) -> RunOutcome:
    """Start every stage whose dependencies are done, in plan order, as the launcher has room; a stage whose
    dependency failed is skipped. In process that is the plan's order, one stage at a time."""
    outcome = RunOutcome(out=run.path, report_html=Path(), report_md=Path())
    stages = plan.ordered()
    width = len(str(len(stages)))
    heads = {stage.key: f"[{index:>{width}}/{len(stages)}] {stage.kind.name:<15} {escape(stage.label)}"
             for index, stage in enumerate(stages, 1)}
    waiting: list[Stage] = []
    for stage in stages:
        if store.record(stage.key).state == "done":
            outcome.reused.append(stage.key)
            console.print(f"{heads[stage.key]} [dim]done earlier, reused[/]", highlight=False)
        else:
            waiting.append(stage)
    done, stopped = set(outcome.reused), set()  # stopped: failed or blocked
    launcher = _launcher(plan, store, run, console)
    running: set[str] = set()
    try:
        while waiting or running:
            for stage in list(waiting):
                if any(dep in stopped for dep in stage.deps):
                    waiting.remove(stage)
                    outcome.blocked.append(stage.key)
                    stopped.add(stage.key)
                    console.print(f"{heads[stage.key]} [yellow]skipped: a stage it needs failed[/]", highlight=False)
                elif all(dep in done for dep in stage.deps) and launcher.can_start(stage):
                    waiting.remove(stage)
                    running.add(stage.key)
                    if not launcher.concurrent:  # it runs now, its messages under this line
                        console.print(f"{heads[stage.key]} [bold]running[/] ({store.path(stage.key)})",
                                      highlight=False)
                    where = launcher.start(stage)
                    if launcher.concurrent:
                        console.print(f"{heads[stage.key]} [bold]started[/] ({escape(where)})", highlight=False)
                        run.log(f"{stage.label}: started ({where})")
            if not running:
                break
            for finished in launcher.wait():
                running.discard(finished.key)
                head = f"{heads[finished.key]} " if launcher.concurrent else "   "
                _record(finished, plan.stages[finished.key], head, outcome, run, console)
                (stopped if finished.error else done).add(finished.key)
    finally:
        launcher.close()
    return outcome


def _record(finished: Finished, stage: Stage, head: str, outcome: RunOutcome, run: RunDir, console: Console) -> None:
    if finished.error is not None:
        outcome.failed[stage.key] = finished.error
        run.log(f"{stage.label}: FAILED {finished.error}")
        where = f" (its log: {finished.log})" if finished.log and str(finished.log) not in finished.error else ""
        console.print(f"{head} [bold red]failed:[/] {escape(finished.error)}{escape(where)}", highlight=False)
    elif finished.ran:
        outcome.executed.append(stage.key)
        console.print(f"{head} [green]done[/] in {finished.seconds or 0:.1f} s", highlight=False)
    else:  # another process (a worker left from a killed run) finished it meanwhile
        outcome.reused.append(stage.key)
        console.print(f"{head} [dim]finished by another process, reused[/]", highlight=False)
