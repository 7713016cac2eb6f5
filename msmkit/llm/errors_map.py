"""Translate SDK exceptions into retryable / permanent errors in plain words, keeping retry-after.

The SDKs wrap transport errors loosely (the OpenAI SDK over aiohttp reports a refused connection as
"Request timed out"), so the cause chain is searched for the underlying OS error first.
"""

from __future__ import annotations

import asyncio
import email.utils
import errno
import re
import socket
import time
from datetime import datetime
from typing import Any

from msmkit.llm.backend import LLMError, PermanentLLMError, TransientLLMError
from msmkit.llm.failures import FailureKind
from msmkit.secrets import redact

_RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529}
_MAX_SERVER_MESSAGE = 300
# vLLM's 400s for a prompt or max_tokens beyond max_model_len, and OpenAI's context_length_exceeded wording.
_CONTEXT_WINDOW = re.compile(r"maximum context length|cannot be greater than max_model_len|context_length_exceeded",
                             re.IGNORECASE)
# vLLM (through transformers) when the served tokenizer has no chat template.
_NO_CHAT_TEMPLATE = re.compile(r"default chat template is no longer allowed|tokenizer does not define one|"
                               r"no chat template", re.IGNORECASE)


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


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _is_transport_error(exc: BaseException) -> bool:
    """Connection-level failures the SDKs do not always wrap (e.g. a stream cut mid-way)."""
    if isinstance(exc, (ConnectionError, TimeoutError, asyncio.TimeoutError)):
        return True
    return any(cls.__module__.split(".")[0] in ("httpx", "httpx2", "httpcore", "httpcore2", "aiohttp", "h11")
               and cls.__name__.endswith(("TransportError", "ProtocolError", "ClientError", "NetworkError",
                                          "ReadError", "ConnectError", "TimeoutException", "ClientPayloadError"))
               for cls in type(exc).__mro__)


def _transport_error(exc: BaseException, timeout_s: float | None) -> TransientLLMError:
    """The deepest recognisable cause in the chain decides: refused, DNS, timeout, or another failure."""
    chain = _chain(exc)
    for link in reversed(chain):
        if isinstance(link, ConnectionRefusedError) or getattr(link, "errno", None) == errno.ECONNREFUSED:
            return TransientLLMError("connection refused: nothing is listening at that address (is the server "
                                     "running, and is base_url right?)", FailureKind.CONNECTION_REFUSED)
        if isinstance(link, socket.gaierror):
            return TransientLLMError(f"host not found: the name did not resolve ({link.strerror or link})",
                                     FailureKind.HOST_NOT_FOUND)
    for link in reversed(chain):
        if isinstance(link, (TimeoutError, asyncio.TimeoutError)) or type(link).__name__.endswith(
                ("Timeout", "TimeoutError", "TimeoutException")):
            within = f" within {timeout_s:g} s" if timeout_s else ""
            return TransientLLMError(f"timed out: no answer{within}", FailureKind.TIMED_OUT)
    root = chain[-1]
    detail = " ".join(str(root).split()) or type(root).__name__
    return TransientLLMError(f"connection failed: {type(root).__name__}: {detail}"[:_MAX_SERVER_MESSAGE],
                             FailureKind.CONNECTION_FAILED)


def _server_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        body = body["error"]
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, str) or not message:
        message = str(getattr(exc, "message", "") or exc)
    return redact(message.strip())[:_MAX_SERVER_MESSAGE]


def _mentions_model(exc: Any, message: str) -> bool:
    body = getattr(exc, "body", None)
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        body = body["error"]
    code = str(body.get("code") or "") if isinstance(body, dict) else ""
    return "model" in code or "model" in message.lower()


def status_error(status: int, message: str, retry_after: float | None, *, model_named: bool) -> LLMError:
    """The error for an HTTP error status, with the server's own message after the plain cause."""
    if status == 401:
        return PermanentLLMError(f"authentication failed (401): the server rejected the API key ({message})",
                                 FailureKind.AUTHENTICATION_FAILED, status)
    if status == 403:
        return PermanentLLMError(f"permission denied (403): {message}", FailureKind.PERMISSION_DENIED, status)
    if status == 404 and model_named:
        return PermanentLLMError(f"model not found (404): the server does not serve this model ({message})",
                                 FailureKind.MODEL_NOT_FOUND, status)
    if status == 404:
        return PermanentLLMError(f"not found (404): {message}; check base_url (OpenAI-compatible servers usually "
                                 "end in /v1)", FailureKind.NOT_FOUND, status)
    if status == 429:
        when = ""
        if retry_after is not None:
            until = datetime.fromtimestamp(time.time() + retry_after).strftime("%H:%M:%S")
            when = f" until {until} (retry-after {retry_after:g} s)"
        return TransientLLMError(f"rate limited (429){when}: {message}", FailureKind.RATE_LIMITED, status,
                                 retry_after)
    if status in _RETRYABLE_STATUS or status >= 500:
        label = "server overloaded" if status == 529 else "server error"
        return TransientLLMError(f"{label} ({status}): {message}", FailureKind.SERVER_ERROR, status, retry_after)
    if status == 400 and _CONTEXT_WINDOW.search(message):
        return PermanentLLMError(f"too long for the context window (400): {message}; shorten the prompt, lower "
                                 "max_tokens, or serve the model with a longer context (vllm.max_model_len)",
                                 FailureKind.CONTEXT_WINDOW, status)
    if status == 400 and _NO_CHAT_TEMPLATE.search(message):
        return PermanentLLMError(f"request rejected (400): the served model has no chat template ({message}); for a "
                                 "base model set `base_model: true` (completion style through /v1/completions), else "
                                 "give the server a chat template (a chat_template.jinja in the model folder)",
                                 FailureKind.BAD_REQUEST, status)
    return PermanentLLMError(f"request rejected ({status}): {message}", FailureKind.BAD_REQUEST, status)


def map_sdk_error(exc: Exception, sdk: Any, *, timeout_s: float | None = None) -> LLMError:
    """`sdk` is the imported `openai` or `anthropic` module: both expose the same error classes."""
    if isinstance(exc, sdk.APIStatusError):
        message = _server_message(exc)
        return status_error(exc.status_code, message, retry_after_seconds(exc.response.headers),
                            model_named=_mentions_model(exc, message))
    if isinstance(exc, sdk.APIConnectionError) or _is_transport_error(exc):  # APITimeoutError included
        return _transport_error(exc, timeout_s)
    return PermanentLLMError(f"failed: {type(exc).__name__}: {redact(str(exc))}"[:_MAX_SERVER_MESSAGE])
