"""`msm doctor`: what this machine and a config's endpoints are missing for a run, and how to fix it."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape

_STYLE = {"ok": "green", "info": "cyan", "warn": "yellow", "fail": "bold red"}


def doctor(
    config: Optional[list[Path]] = typer.Option(None, "--config", help="A YAML msmkit reads (experiment, corpus, "
                                                "AFT, agentic, judge ...): check every LLM endpoint it names. "
                                                "Repeatable."),
    timeout: float = typer.Option(10.0, "--timeout", min=0.1, help="Seconds to wait for each endpoint."),
) -> None:
    """Check Python, torch, CPU/GPU, the embedded model's cache, inspect, API key variables (by name) and each
    configured endpoint (reachable, model served); exit 1 when something a run needs is broken."""
    from msmkit.doctor import exit_code, run_doctor

    checks = run_doctor(config, timeout_s=timeout)
    out = Console(soft_wrap=True)
    width = max(len(check.name) for check in checks)
    for check in checks:
        out.print(f"[{_STYLE[check.status]}]{check.status:<4}[/] {escape(check.name):<{width}}  {escape(check.detail)}",
                  highlight=False)
        if check.fix and check.status in ("warn", "fail"):
            out.print(f"     {'':<{width}}  [dim]fix:[/] {escape(check.fix)}", highlight=False)
    failed = [check.name for check in checks if check.failed]
    if failed:
        out.print(f"[bold red]{len(failed)} problem(s) to fix:[/] {escape(', '.join(failed))}", highlight=False)
    else:
        out.print("[green]nothing broken[/]", highlight=False)
    raise typer.Exit(exit_code(checks))


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)
