"""Translate SDK exceptions into retryable / permanent errors, keeping retry-after."""

from __future__ import annotations

import asyncio
import email.utils
import time
from typing import Any

from msmkit.llm.backend import LLMError, PermanentLLMError, TransientLLMError

_RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529}


def retry_after_seconds(headers: Any) -> float | None:
    """Seconds from `retry-after-ms` or `retry-after` (delta seconds or an HTTP date)."""
    if headers is None:
        return None
    milliseconds = headers.get("retry-after-ms")
    if milliseconds:
        try:
            return max(0.0, float(milliseconds) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def _is_transport_error(exc: Exception) -> bool:
    """Connection-level failures the SDKs do not always wrap (e.g. a stream cut mid-way)."""
    if isinstance(exc, (ConnectionError, TimeoutError, asyncio.TimeoutError)):
        return True
    return any(cls.__module__.split(".")[0] in ("httpx", "httpx2", "httpcore", "httpcore2", "aiohttp", "h11")
               and cls.__name__.endswith(("TransportError", "ProtocolError", "ClientError", "NetworkError",
                                          "ReadError", "ConnectError", "TimeoutException", "ClientPayloadError"))
               for cls in type(exc).__mro__)


def map_sdk_error(exc: Exception, sdk: Any) -> LLMError:
    """`sdk` is the imported `openai` or `anthropic` module: both expose the same error classes."""
    if _is_transport_error(exc):
        return TransientLLMError(f"connection failed: {type(exc).__name__}: {exc}")
    if isinstance(exc, sdk.APITimeoutError):
        return TransientLLMError(f"request timed out: {exc}")
    if isinstance(exc, sdk.APIConnectionError):
        return TransientLLMError(f"connection failed: {exc}")
    if isinstance(exc, sdk.APIStatusError):
        status = exc.status_code
        message = f"HTTP {status}: {exc.message}"
        if status in _RETRYABLE_STATUS or status >= 500:
            return TransientLLMError(message, retry_after=retry_after_seconds(exc.response.headers))
        return PermanentLLMError(message)
    return PermanentLLMError(f"{type(exc).__name__}: {exc}")
