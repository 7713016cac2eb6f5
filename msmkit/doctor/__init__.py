"""`msm doctor`: check that this machine and a config's endpoints can run msmkit, and say what to fix."""

from __future__ import annotations

from pathlib import Path

from msmkit.doctor.check import Check, exit_code
from msmkit.doctor.endpoints import key_checks, probe_endpoints, scan_config
from msmkit.doctor.environment import environment_checks

__all__ = ["Check", "exit_code", "run_doctor"]


def run_doctor(configs: list[Path] | None = None, *, timeout_s: float = 10.0) -> list[Check]:
    """The machine's checks, then for each config its LLM sections, key variables and endpoints."""
    scans = [scan_config(path) for path in configs or []]
    endpoints = [endpoint for scan in scans for endpoint in scan.endpoints]
    checks = environment_checks(inspect_required=any(scan.agentic for scan in scans))
    checks += key_checks(endpoints)
    for scan in scans:
        checks += scan.problems
    checks += probe_endpoints(endpoints, timeout_s)
    return checks
