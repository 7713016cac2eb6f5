"""Options of `msm` itself, applied before any command runs: --verbose and --allow-download."""

from __future__ import annotations

import typer

from msmkit.offline import ALLOW_DOWNLOAD_VARIABLE, apply_offline_defaults
from msmkit.quiet import configure_warnings


def root_options(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show every warning, including the known library "
                                 "noise msmkit filters (msmkit/quiet.py), and msmkit's info log."),
    allow_download: bool = typer.Option(False, "--allow-download", envvar=ALLOW_DOWNLOAD_VARIABLE,
                                        help="Let the Hugging Face libraries reach the hub. Without it they run "
                                        "offline (HF_HUB_OFFLINE=1 unless you set it yourself)."),
) -> None:
    apply_offline_defaults(allow_download=allow_download)
    configure_warnings(verbose=verbose)


def register(app: typer.Typer) -> None:
    app.callback()(root_options)
