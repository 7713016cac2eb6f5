"""`python -m msmkit.train ...` = `msm train ...`; the form `accelerate launch -m msmkit.train ...` needs."""

import sys

from rich.console import Console

from msmkit.cli.train import train_app
from msmkit.errors import MsmError

if __name__ == "__main__":
    try:
        train_app(prog_name="msm train")
    except MsmError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(2)
