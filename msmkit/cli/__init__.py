"""The `msm` command. Thin: parses arguments and calls the stages.

Each command group lives in its own module under msmkit/cli/ and is registered here.
"""

from __future__ import annotations

from msmkit.cli.app import app

__all__ = ["app"]
