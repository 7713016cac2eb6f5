"""`msm run`: build the plan, run every stage not yet done (in order, reusing finished ones), then write
the report. A killed run is continued by running it again: finished stages are reused, a stage that was
cut off resumes its own partial work, and failed stages are retried."""

from __future__ import annotations

import fcntl
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from rich.console import Console
from rich.markup import escape

from msmkit.errors import ConfigError, MsmError
from msmkit.experiment.layout import PLAN_FILE, REPORT_DIR
from msmkit.experiment.plan import Plan, plan_for
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


def _run_stages(plan: Plan, store: StageStore, run: RunDir, console: Console) -> RunOutcome:
    outcome = RunOutcome(out=run.path, report_html=Path(), report_md=Path())
    models = ModelCache()
    stages = plan.ordered()
    width = len(str(len(stages)))
    for index, stage in enumerate(stages, 1):
        head = f"[{index:>{width}}/{len(stages)}] {stage.kind.name:<15} {escape(stage.label)}"
        if store.record(stage.key).state == "done":
            outcome.reused.append(stage.key)
            console.print(f"{head} [dim]done earlier, reused[/]", highlight=False)
            continue
        missing = [dep for dep in stage.deps if dep in outcome.failed or dep in outcome.blocked]
        if missing:
            outcome.blocked.append(stage.key)
            console.print(f"{head} [yellow]skipped: a stage it needs failed[/]", highlight=False)
            continue
        console.print(f"{head} [bold]running[/] ({store.path(stage.key)})", highlight=False)

        def say(message: str, label: str = stage.label) -> None:
            console.print(f"    {escape(message)}", highlight=False)
            run.log(f"{label}: {message}")

        env = StageEnv(say=say, load=lambda ref: store.outputs(ref.key), services={ModelCache: models})
        try:
            record = store.run(stage.key, stage.kind.name, stage.key_inputs(),
                               lambda folder, stage=stage, env=env: stage.kind.run(stage.job, folder, env).summary())
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # one failed stage never stops the stages that do not need it
            outcome.failed[stage.key] = f"{type(exc).__name__}: {exc}"
            run.log(f"{stage.label}: FAILED {exc}")
            console.print(f"    [bold red]failed:[/] {escape(str(exc))}", highlight=False)
            continue
        outcome.executed.append(stage.key)
        console.print(f"    [green]done[/] in {record.seconds:.1f} s", highlight=False)
    models.release()
    return outcome

