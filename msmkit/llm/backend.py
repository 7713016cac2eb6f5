"""The contract every provider backend implements. Retries, caching and limits live in the client."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from msmkit.llm.types import LLMRequest, Usage


@dataclass
class RawCompletion:
    text: str
    stop_reason: str  # one of msmkit.llm.types.StopReason
    usage: Usage = field(default_factory=Usage)
    model: str = ""


class LLMError(Exception):
    """Base for errors raised by backends."""


class TransientLLMError(LLMError):
    """Worth retrying: rate limit, server error, dropped connection, timeout."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentLLMError(LLMError):
    """Retrying the same request cannot help: bad request, auth failure, unknown model."""


class Backend(Protocol):
    provider: str
    model: str

    async def complete(self, request: LLMRequest) -> RawCompletion:
        """Answer one request, or raise TransientLLMError / PermanentLLMError."""
        ...

    async def aclose(self) -> None: ...
