"""`msm run`, `msm status` and `msm quickstart`: whole experiments from one config, and their state."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from msmkit.experiment.runner import RunOutcome

_STATE_STYLE = {"done": "green", "running": "bold cyan", "failed": "bold red", "pending": "dim"}


def _print_outcome(outcome: RunOutcome, console: Console) -> None:
    console.print(f"[bold]{len(outcome.executed)}[/] stages run, {len(outcome.reused)} reused, "
                  f"{len(outcome.failed)} failed, {len(outcome.blocked)} skipped ({outcome.seconds:.0f} s)")
    for key, error in outcome.failed.items():
        console.print(f"[red]failed[/] {escape(key)}: {escape(error)}", highlight=False)
    if outcome.failed:
        console.print("Fix the cause and run the same command again: finished stages are reused.")
    console.print(f"report: {escape(str(outcome.report_html))} (Markdown: {escape(str(outcome.report_md))})",
                  highlight=False)


def run(
    experiment: Path = typer.Argument(..., help="Experiment YAML (see examples/experiments/)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Run folder (default runs/<name>); rerunning continues it."),
    preview: bool = typer.Option(False, "--preview", help="Print the stages, their API cost and GPU compute; run "
                                 "nothing."),
) -> None:
    """Run an experiment's grid of arms x seeds (x AFT sizes), reusing every finished stage, then write the report."""
    from msmkit.experiment.config import load_experiment

    console = Console(stderr=True, soft_wrap=True)
    config = load_experiment(experiment)
    out = out or Path("runs") / config.name
    if preview:
        from msmkit.experiment.preview import preview_experiment, print_preview

        projected = preview_experiment(experiment, out)
        print_preview(projected, Console())
        if projected.problems:
            raise typer.Exit(1)
        return
    from msmkit.experiment.runner import run_experiment

    outcome = run_experiment(experiment, out, console=console)
    _print_outcome(outcome, console)
    if outcome.failed or outcome.blocked:
        raise typer.Exit(1)


def gate(
    experiment: Path = typer.Argument(..., help="Experiment YAML with a `gate:` section (see "
                                      "examples/experiments/gate_cheese_released.yaml)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Run folder (default runs/<name>); rerunning continues it."),
    preview: bool = typer.Option(False, "--preview", help="Print what would be downloaded and what the run costs; "
                                 "run nothing, offline."),
) -> None:
    """Check msmkit against the paper: run (or continue) the experiment, then set each arm beside the paper's figure
    for it, with the difference, pass/fail at the stated tolerance, n and what differs from the paper's setup."""
    from msmkit.errors import ConfigError
    from msmkit.experiment.config import load_experiment
    from msmkit.experiment.paper_gate import released_inputs

    config = load_experiment(experiment)
    if config.gate is None:
        raise ConfigError(f"{experiment}: no `gate:` section; add one naming the paper's figures to check, e.g. "
                          "gate: {figures: [fig2, cheese-gate]}")
    out = out or Path("runs") / config.name
    console = Console(stderr=True, soft_wrap=True)
    if preview:
        from msmkit.experiment.preview import preview_experiment, print_preview
        from msmkit.hub import describe_plan, format_plan

        Console().print(format_plan(describe_plan(released_inputs(config))), markup=False, highlight=False)
        projected = preview_experiment(experiment, out)
        print_preview(projected, Console())
        if projected.problems:
            raise typer.Exit(1)
        return
    from msmkit.experiment.runner import run_experiment
    from msmkit.io import read_json

    outcome = run_experiment(experiment, out, console=console)
    _print_outcome(outcome, console)
    section = read_json(outcome.report_html.parent / "report.json").get("gate") or {}
    Console().print(section.get("markdown", "no gate rows (nothing measured)"), markup=False, highlight=False)
    if outcome.failed or outcome.blocked or not section.get("passed"):
        raise typer.Exit(1)


def preflight(
    experiment: Path = typer.Argument(..., help="Experiment YAML."),
    out: Optional[Path] = typer.Option(None, "--out", help="Run folder (default runs/<name>); preflight.json goes in "
                                       "<out>/preflight/ and into the run's report."),
    limit: Optional[int] = typer.Option(None, "--limit", min=2, help="First N items per value set (a quick look)."),
) -> None:
    """Cheap checks before any training: the spec-in-context ceiling on the value items, the base model's loss on
    each generated corpus, a name probe, each training stage's steps against its guard, and the smallest
    difference the planned seeds and items can detect."""
    from msmkit.experiment.config import load_experiment
    from msmkit.experiment.layout import PREFLIGHT_DIR
    from msmkit.experiment.plan import plan_for
    from msmkit.experiment.preflight import ceiling_lines, run_preflight
    from msmkit.experiment.store import StageStore

    config = load_experiment(experiment)
    out = out or Path("runs") / config.name
    console = Console(stderr=True, soft_wrap=True)
    plan = plan_for(experiment, out)
    report = run_preflight(plan, StageStore(plan.root), out / PREFLIGHT_DIR, limit=limit,
                           say=lambda message: console.print(escape(message), highlight=False))
    table = Table(title="spec-in-context ceiling: rate of choosing the target value")
    for column in ("spec", "items", "without", "with the spec", "gap [95% CI]", "n"):
        table.add_column(column)
    for c in report.ceilings:
        table.add_row(c.spec, c.suite, f"{c.without:.3f}", f"{c.with_spec:.3f}",
                      f"{c.gap:+.3f} [{c.low:+.3f}, {c.high:+.3f}]", str(c.n_items))
    Console().print(table)
    for label, loss in report.corpus_loss.items():
        Console().print(f"base-model loss on {escape(label)}: {loss['loss']:.3f} nats/token "
                        f"({loss['documents']} documents)", highlight=False)
    probe = report.name_probe
    Console().print(f"name probe: '{probe['subject']}' ranks {probe['rank']} of {probe['of']} names "
                    f"(probability share {probe['share']:.2f})", highlight=False)
    for line in ceiling_lines(report) + report.notes:
        Console().print(f"- {escape(line)}", highlight=False)
    Console().print(f"written: {escape(str(out / PREFLIGHT_DIR))}", highlight=False)


def status(run_dir: Path = typer.Argument(..., help="An experiment run folder.")) -> None:
    """What is done, running, failed and left in a run."""
    from msmkit.experiment.status import counts, read_status

    rows, report = read_status(run_dir)
    table = Table(title=f"{run_dir}")
    for column in ("#", "kind", "stage", "state", "seconds"):
        table.add_column(column, justify="right" if column in ("#", "seconds") else "left")
    for row in rows:
        state = row.record.state
        seconds = row.record.seconds if state == "done" else row.running_for_s
        label = row.label + (f"\n[red]{escape(row.record.error or '')}[/]" if state == "failed" else "")
        table.add_row(str(row.index), row.kind, label, f"[{_STATE_STYLE[state]}]{state}[/]",
                      "" if seconds is None else f"{seconds:.0f}")
    console = Console()
    console.print(table)
    tally = counts(rows)
    console.print(", ".join(f"{tally.get(s, 0)} {s}" for s in ("done", "running", "failed", "pending")) +
                  f" of {len(rows)} stages")
    if report:
        console.print(f"report: {escape(str(report))}", highlight=False)


def quickstart(
    out: Path = typer.Option(Path("runs/quickstart"), "--out", help="Run folder; rerunning continues it."),
) -> None:
    """The cheese study at tiny scale on the embedded default (no key, no GPU, no network), then its report."""
    from msmkit.experiment.quickstart import QUICKSTART_NOTE, quickstart_config
    from msmkit.experiment.runner import run_experiment

    console = Console(stderr=True, soft_wrap=True)
    console.print(f"[bold]msm quickstart[/]: {QUICKSTART_NOTE}", highlight=False)
    outcome = run_experiment(quickstart_config(), out, console=console)
    _print_outcome(outcome, console)
    console.print(f"[yellow]note:[/] {QUICKSTART_NOTE}", highlight=False)
    if outcome.failed or outcome.blocked:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("status")(status)
    app.command("gate")(gate)
    app.command("preflight")(preflight)
    app.command("quickstart")(quickstart)
