"""Why a call failed, in plain words: the kind of failure, a message a user can act on, and the endpoint.

`summarize_failures` turns the failures of many calls into one sentence for a command's error, e.g.
"all 12 calls to openai_compatible:m @ http://127.0.0.1:9/v1 failed; first error: connection refused:
nothing is listening at that address (is the server running, and is base_url right?)".
"""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Union

if TYPE_CHECKING:
    from msmkit.llm.client import LLMCallFailed


class FailureKind(str, enum.Enum):
    CONNECTION_REFUSED = "connection_refused"
    HOST_NOT_FOUND = "host_not_found"
    CONNECTION_FAILED = "connection_failed"  # dropped or reset connection, TLS failure ...
    TIMED_OUT = "timed_out"
    AUTHENTICATION_FAILED = "authentication_failed"  # 401
    PERMISSION_DENIED = "permission_denied"  # 403
    MODEL_NOT_FOUND = "model_not_found"  # 404 naming the model
    NOT_FOUND = "not_found"  # 404 for the path: usually a base_url without /v1
    RATE_LIMITED = "rate_limited"  # 429
    SERVER_ERROR = "server_error"  # 5xx, Anthropic's 529 overloaded
    BAD_REQUEST = "bad_request"  # other 4xx: the request itself was refused
    CONTEXT_WINDOW = "context_window"  # 400: prompt (+ max_tokens) longer than the served context window
    NO_API_KEY = "no_api_key"
    CONFIG = "config"  # the LLM config cannot work (e.g. openai_compatible without base_url)
    LOCAL_MODEL = "local_model"  # the in-process model could not load or generate
    NOT_ANSWERED = "not_answered"  # a provider batch ended without this request's answer
    OTHER = "other"

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    FailureKind.CONNECTION_REFUSED: "connection refused",
    FailureKind.HOST_NOT_FOUND: "host not found",
    FailureKind.CONNECTION_FAILED: "connection failed",
    FailureKind.TIMED_OUT: "timed out",
    FailureKind.AUTHENTICATION_FAILED: "authentication failed (401)",
    FailureKind.PERMISSION_DENIED: "permission denied (403)",
    FailureKind.MODEL_NOT_FOUND: "model not found (404)",
    FailureKind.NOT_FOUND: "not found (404)",
    FailureKind.RATE_LIMITED: "rate limited (429)",
    FailureKind.SERVER_ERROR: "server error",
    FailureKind.BAD_REQUEST: "request rejected",
    FailureKind.CONTEXT_WINDOW: "too long for the context window",
    FailureKind.NO_API_KEY: "no API key",
    FailureKind.CONFIG: "unusable LLM config",
    FailureKind.LOCAL_MODEL: "local model failed",
    FailureKind.NOT_ANSWERED: "not answered by the batch",
    FailureKind.OTHER: "failed",
}


@dataclass(frozen=True)
class FailureCause:
    """The underlying error of a failed call. `message` starts with the kind's label."""

    kind: FailureKind
    message: str
    endpoint: str  # LLMConfig.describe(): provider, model and base URL
    status: int | None = None  # HTTP status, when the server answered
    retry_after_s: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "message": self.message, "endpoint": self.endpoint, "status": self.status}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "FailureCause":
        kind = data.get("kind")
        return cls(FailureKind(kind) if kind in _KIND_VALUES else FailureKind.OTHER, str(data.get("message", "")),
                   str(data.get("endpoint", "")), data.get("status"))


CALL_FAILED_PREFIX = "call failed: "  # starts StructuredResult.error when the call itself failed
_KIND_VALUES = {kind.value for kind in FailureKind}
Failure = Union["LLMCallFailed", FailureCause]


def _cause(failure: Failure) -> FailureCause:
    return failure if isinstance(failure, FailureCause) else failure.cause


def summarize_failures(failures: Iterable[Failure], *, total: int | None = None,
                       log: str | Path | None = None) -> str:
    """One sentence: how many calls failed (of `total`), to which endpoint, the first error in plain words
    and the other kinds seen; `log` names where the details are. Empty string when nothing failed."""
    causes = [_cause(f) for f in failures]
    if not causes:
        return ""
    by_endpoint: dict[str, list[FailureCause]] = {}
    for cause in causes:
        by_endpoint.setdefault(cause.endpoint, []).append(cause)
    count = len(causes)
    if total is None or (total == count == 1):
        head = f"{count} call{'s' if count != 1 else ''}"
    elif total == count:
        head = f"all {count} calls"
    else:
        head = f"{count} of {total} calls"
    parts = [_endpoint_part(endpoint, group, alone=len(by_endpoint) == 1) for endpoint, group in by_endpoint.items()]
    if len(by_endpoint) == 1:
        sentence = f"{head} to {parts[0]}"
    else:
        sentence = f"{head} failed: " + "; ".join(parts)
    if log is not None:
        sentence += f" (details in {log})"
    return sentence


def _endpoint_part(endpoint: str, group: list[FailureCause], *, alone: bool) -> str:
    first = group[0]
    kinds = Counter(cause.kind for cause in group)
    others = ", ".join(f"{kind.label} x{n}" for kind, n in kinds.most_common() if kind is not first.kind)
    also = f"; also {others}" if others else ""
    if alone:
        return f"{endpoint} failed; first error: {first.message}{also}"
    return f"{len(group)} to {endpoint} (first error: {first.message}{also})"


def failure_counts(causes: Iterable[dict[str, Any] | None]) -> dict[str, int]:
    """Counts per failure kind of recorded causes (the `*_cause` fields of eval records), most common first."""
    counts: Counter[str] = Counter(str(cause.get("kind", FailureKind.OTHER.value)) for cause in causes if cause)
    return dict(counts.most_common())


def recorded_failures_note(causes: Iterable[dict[str, Any] | None], *, total: int) -> str:
    """`summarize_failures` of recorded causes (dicts from `FailureCause.to_json`); "" when none failed."""
    return summarize_failures([FailureCause.from_json(cause) for cause in causes if cause], total=total)


def is_call_failure(error: str | None) -> bool:
    """Whether a recorded error text is a failed call (not an answer that did not parse)."""
    return str(error or "").startswith(CALL_FAILED_PREFIX)


def row_call_failed(row: dict[str, Any]) -> bool:
    """An eval row (fields `status`, `error`) whose call failed: status "failed", or, in rows written
    before failed calls had a status of their own, an error that says so."""
    return row.get("status") == "failed" or is_call_failure(row.get("error"))
