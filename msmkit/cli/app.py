"""Root typer app; command-group modules register themselves by import at the bottom."""

from __future__ import annotations

import importlib
import sys

import typer
from rich.console import Console

from msmkit.errors import MsmError

app = typer.Typer(
    name="msm",
    help="msmkit: Model Spec Midtraining end to end (spec -> corpus -> AFT data -> training -> evals -> report).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)

# Command-group modules under msmkit/cli/; each defines `register(app)`.
_GROUPS = ("root", "spec", "llm", "generate", "train", "eval", "experiment", "doctor")


def _register_groups() -> None:
    for name in _GROUPS:
        importlib.import_module(f"msmkit.cli.{name}").register(app)


def main() -> None:
    try:
        app()
    except MsmError as exc:
        console.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False)
        sys.exit(2)


_register_groups()
