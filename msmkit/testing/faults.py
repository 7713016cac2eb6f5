"""Injected faults: a thread-safe queue of rules, each consumed by the next N requests it matches."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass

from msmkit.testing.types import Fault, ScriptedRequest

Matcher = Callable[[ScriptedRequest], bool]
TRANSPORT_FAULTS = frozenset({Fault.RATE_LIMIT, Fault.SERVER_ERROR, Fault.HANG, Fault.DROP})


@dataclass
class InjectedFault:
    kind: Fault
    remaining: int
    retry_after: float
    status: int | None
    matcher: Matcher | None

    def matches(self, request: ScriptedRequest) -> bool:
        return self.matcher is None or bool(self.matcher(request))


def make_matcher(match: str | re.Pattern[str] | Matcher | None) -> Matcher | None:
    """None matches every request; a regex is searched in system + messages; a callable gets the request."""
    if match is None or callable(match):
        return match
    pattern = re.compile(match, re.DOTALL) if isinstance(match, str) else match
    return lambda request: pattern.search(request.text) is not None


class FaultQueue:
    def __init__(self) -> None:
        self._rules: list[InjectedFault] = []
        self._lock = threading.Lock()

    def inject(self, kind: Fault | str, times: int = 1, retry_after: float = 1.0, match: object = None,
               status: int | None = None) -> None:
        kind = Fault(kind)
        if times < 1:
            raise ValueError("times must be at least 1")
        if status is not None and kind is not Fault.SERVER_ERROR:
            raise ValueError("status applies to Fault.SERVER_ERROR only (e.g. 503, or 529 for Anthropic overloaded)")
        rule = InjectedFault(kind, times, float(retry_after), status, make_matcher(match))  # type: ignore[arg-type]
        with self._lock:
            self._rules.append(rule)

    def take(self, request: ScriptedRequest, allowed: frozenset[Fault] | None = None) -> InjectedFault | None:
        """The first pending rule that matches (and is allowed here), consuming one of its uses."""
        if not self._rules:  # cheap path: nothing injected
            return None
        with self._lock:
            for rule in self._rules:
                if (allowed is None or rule.kind in allowed) and rule.matches(request):
                    rule.remaining -= 1
                    if rule.remaining == 0:
                        self._rules.remove(rule)
                    return rule
        return None

    def pending(self) -> list[tuple[Fault, int]]:
        with self._lock:
            return [(rule.kind, rule.remaining) for rule in self._rules]

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()
