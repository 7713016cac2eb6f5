"""One finding of `msm doctor`: what was checked, how it stands, what was found and what to do about it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Status = Literal["ok", "info", "warn", "fail"]  # fail: something a run needs is broken (non-zero exit)


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str | None = None

    @property
    def failed(self) -> bool:
        return self.status == "fail"


def exit_code(checks: list[Check]) -> int:
    """1 when any check failed, else 0."""
    return 1 if any(check.failed for check in checks) else 0
