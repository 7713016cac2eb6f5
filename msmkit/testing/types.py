"""Data types of the test server: what a responder sees, what it returns, fault kinds and counters."""

from __future__ import annotations

import enum
import hashlib
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

StopKind = Literal["end", "max_tokens", "refusal", "stop_sequence"]
STOP_KINDS: tuple[str, ...] = ("end", "max_tokens", "refusal", "stop_sequence")


def estimate_tokens(text: str) -> int:
    """The server's token count: about four characters per token, at least one for non-empty text."""
    return (len(text) + 3) // 4


@dataclass(frozen=True)
class Reply:
    """What the fake model answers. Token counts left as None are estimated from the text."""

    text: str
    stop: StopKind = "end"
    input_tokens: int | None = None
    output_tokens: int | None = None

    def __post_init__(self) -> None:
        if self.stop not in STOP_KINDS:
            raise ValueError(f"Reply.stop must be one of {', '.join(STOP_KINDS)}, got {self.stop!r}")


@dataclass(frozen=True)
class ScriptedRequest:
    """A generation request as the responder sees it, the same for both APIs.

    `messages` holds the conversation without system messages; content blocks are flattened to text.
    For OpenAI, `system` joins the system/developer messages; for legacy completions the prompt is the
    single user message. `raw` is the request JSON as sent.
    """

    api: Literal["openai", "anthropic"]
    model: str
    system: str | None
    messages: list[dict[str, str]]
    max_tokens: int | None = None
    temperature: float | None = None
    stop: list[str] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    endpoint: Literal["chat", "completions", "messages"] = "chat"
    stream: bool = False

    @property
    def last_user(self) -> str:
        for message in reversed(self.messages):
            if message["role"] == "user":
                return message["content"]
        return ""

    @property
    def text(self) -> str:
        """System and messages as one string: what scripted rules and fault matchers search."""
        parts = [self.system] if self.system else []
        parts += [m["content"] for m in self.messages]
        return "\n".join(parts)

    @property
    def prompt_hash(self) -> str:
        """sha256 of system + all messages: the key of `stats.by_prompt`."""
        digest = hashlib.sha256((self.system or "").encode())
        for message in self.messages:
            digest.update(b"\x00" + message["role"].encode() + b"\x00" + message["content"].encode())
        return digest.hexdigest()


class Fault(str, enum.Enum):
    """Failures the server can be told to produce for the next matching requests."""

    RATE_LIMIT = "rate_limit"  # 429 with retry-after and the provider's error body
    SERVER_ERROR = "server_error"  # 500 (or status=529: Anthropic overloaded_error)
    HANG = "hang"  # accept the request, never answer until the client gives up
    DROP = "drop"  # close the connection mid-response, no valid HTTP answer
    TRUNCATED = "truncated"  # answer with stop = max_tokens
    MALFORMED_JSON = "malformed_json"  # the reply text is broken JSON
    REFUSAL = "refusal"  # the model refuses
    AUTH_ERROR = "auth_error"  # 401: the API key is rejected (the provider's error body)
    UNKNOWN_MODEL = "unknown_model"  # 404: the requested model is not served (the provider's error body)


@dataclass
class ServerStats:
    """Counters, updated by the server thread; read them from any thread."""

    requests: int = 0  # HTTP requests received on API endpoints (control endpoints excluded)
    completions: int = 0  # generation requests answered with 200 (direct calls and batch items)
    by_prompt: Counter[str] = field(default_factory=Counter)  # prompt hash -> un-faulted answers
    faults: Counter[Fault] = field(default_factory=Counter)
    in_flight: int = 0
    max_in_flight: int = 0
    batches_created: int = 0
    batch_requests: int = 0
    responder_errors: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        with self.lock:
            return {
                "requests": self.requests, "completions": self.completions,
                "by_prompt": dict(self.by_prompt), "faults": {f.value: n for f, n in self.faults.items()},
                "in_flight": self.in_flight, "max_in_flight": self.max_in_flight,
                "batches_created": self.batches_created, "batch_requests": self.batch_requests,
                "responder_errors": self.responder_errors,
            }
