"""`python -m msmkit.train ...` = `msm train ...`; the form `accelerate launch -m msmkit.train ...` needs."""

import sys

from rich.console import Console

from msmkit.cli.train import train_app
from msmkit.errors import MsmError
from msmkit.offline import apply_offline_defaults
from msmkit.quiet import configure_warnings

if __name__ == "__main__":
    apply_offline_defaults()  # as `msm` does (inherited from it under `msm run`, needed when launched by hand)
    configure_warnings()
    try:
        train_app(prog_name="msm train")
    except MsmError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(2)
