"""The contract every provider backend implements. Retries, caching and limits live in the client."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from msmkit.llm.failures import FailureKind
from msmkit.llm.types import LLMRequest, Usage


@dataclass
class RawCompletion:
    text: str
    stop_reason: str  # one of msmkit.llm.types.StopReason
    usage: Usage = field(default_factory=Usage)
    model: str = ""


class LLMError(Exception):
    """Base for errors raised by backends. The message is plain words, starting with the kind's label
    (e.g. "connection refused: ..."); `status` is the HTTP status when the server answered."""

    def __init__(self, message: str, kind: FailureKind = FailureKind.OTHER, status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.retry_after = retry_after


class TransientLLMError(LLMError):
    """Worth retrying: rate limit, server error, dropped or refused connection, timeout."""


class PermanentLLMError(LLMError):
    """Retrying the same request cannot help: bad request, auth failure, unknown model."""


class Backend(Protocol):
    provider: str
    model: str

    async def complete(self, request: LLMRequest) -> RawCompletion:
        """Answer one request, or raise TransientLLMError / PermanentLLMError."""
        ...

    async def aclose(self) -> None: ...
