"""Data types that cross the LLM layer's boundary."""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from msmkit.config import StrictModel
from msmkit.llm.vllm_settings import VLLMSettings

Role = Literal["system", "user", "assistant"]
Provider = Literal["anthropic", "openai", "openai_compatible", "local", "vllm"]


class StopReason:
    """Normalised stop reasons across providers."""

    END = "end"  # the model finished on its own
    MAX_TOKENS = "max_tokens"  # truncated: callers must treat the text as incomplete
    STOP_SEQUENCE = "stop_sequence"
    REFUSAL = "refusal"  # provider-level refusal (e.g. Anthropic stop_reason=refusal)


class ChatMessage(BaseModel):
    model_config = ConfigDict(frozen=True)
    role: Role
    content: str


class LLMRequest(BaseModel):
    """Everything a caller decides about an answer: prompt, sampling settings, sample index."""

    model_config = ConfigDict(frozen=True)
    messages: tuple[ChatMessage, ...]
    # A long, stable prefix (the spec) sent as the system prompt; Anthropic caches it.
    system: str | None = None
    max_tokens: int = 1024
    temperature: float = 1.0
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    # Distinguishes deliberate repeat samples of the same prompt (e.g. 5 ideas from one prompt).
    sample_index: int = 0
    # The JSON schema (as JSON text) a structured answer must follow (`LLMClient.complete_json` sets it). A server
    # that can constrain decoding to it does (provider vllm); the others see only the prompt's own instructions.
    # Not part of `digest`: the prompt already asks for that JSON, and caches written before it existed stay valid.
    json_schema: str | None = None

    @classmethod
    def of(cls, user: str, *, system: str | None = None, **kwargs: object) -> "LLMRequest":
        return cls(messages=(ChatMessage(role="user", content=user),), system=system, **kwargs)  # type: ignore[arg-type]

    def digest(self, **context: str) -> str:
        """sha256 of every field of this request together with `context` (e.g. who answers it)."""
        payload = {**context, **self.model_dump(mode="json", exclude={"json_schema"})}
        blob = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode("utf-8")
        return hashlib.sha256(blob).hexdigest()


def identity_digest(identity: dict[str, Any]) -> str:
    """sha256 of an answer identity (canonical JSON)."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


class Usage(BaseModel):
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    def __add__(self, other: "Usage") -> "Usage":
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_read_tokens=self.cache_read_tokens + other.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
        )


class LLMResponse(BaseModel):
    text: str
    stop_reason: str
    usage: Usage = Field(default_factory=Usage)
    model: str
    cost_usd: float = 0.0
    cached: bool = False  # served from the persistent cache: nothing was paid this time

    @property
    def truncated(self) -> bool:
        return self.stop_reason == StopReason.MAX_TOKENS


class Price(StrictModel):
    """US dollars per million tokens."""

    input: float
    output: float
    cache_read: float | None = None
    cache_write: float | None = None


class LLMConfig(StrictModel):
    """Which model to call and how. Used for generators, judges and evaluated endpoints."""

    provider: Provider = "local"
    # For `local`: a Hugging Face folder/name, or "embedded" for the packaged Gemma 3 270M base.
    model: str = "embedded"
    base_url: str | None = None
    # Name of the environment variable holding the key; the key itself never goes in a config.
    api_key_env: str | None = None
    # Base models (no chat tuning) are prompted in completion style; None = infer from provider/model.
    base_model: bool | None = None
    context_window: int | None = None
    timeout_s: float = 120.0
    max_retries: int = Field(6, ge=0)
    retry_base_delay_s: float = 1.0  # exponential backoff base; retry-after from the server wins
    retry_max_delay_s: float = 60.0
    concurrency: int = 16
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    use_batch_api: bool = False
    batch_poll_interval_s: float = 30.0
    cache_path: str | None = None  # default: <cache dir>/llm_cache.sqlite
    price: Price | None = None  # overrides the built-in price table for this model
    # Local backend only.
    device: str | None = None
    local_batch_size: int = 8
    # provider vllm only: the server msmkit starts for the stage (model = a folder, adapter, hub name or embedded).
    vllm: VLLMSettings | None = None

    @property
    def is_base_model(self) -> bool:
        if self.base_model is not None:
            return self.base_model
        return self.provider in _SERVED_HERE and self.model == "embedded"

    def describe(self) -> str:
        where = f" @ {self.base_url}" if self.base_url else ""
        return f"{self.provider}:{self.model}{where}"

    @property
    def prompt_mode(self) -> Literal["chat", "completion"]:
        """How requests reach the model: chat turns, or one completion-style text (base models).
        Anthropic's Messages API is always chat."""
        return "completion" if self.is_base_model and self.provider != "anthropic" else "chat"

    def endpoint(self) -> str | None:
        """The normalised URL requests go to (None for local models); see `normalize_endpoint`."""
        if self.provider in _SERVED_HERE:
            return None
        url = self.base_url or os.environ.get(_BASE_URL_ENV.get(self.provider, ""), "") or \
            _DEFAULT_ENDPOINTS.get(self.provider)
        return normalize_endpoint(url) if url else None

    def answer_identity(self) -> dict[str, Any]:
        """Who answers a request under this config, as JSON-able data: two configs with equal identities
        give the same answer to the same request (up to sampling), so answers and stage outputs may be
        shared between them. The response cache keys on it; experiment stage keys may too.

        Remote: provider, served model name, normalised endpoint, chat or completion mode. Local: the
        content digest of the weights (base and adapter files, see `msmkit.llm.weights`), mode and
        context window; not the folder's path, so a copy shares answers and a retrained checkpoint at
        the same path does not. vllm: as local, with the dtype the server loads the weights in and its context
        window (vllm.max_model_len, else context_window), never the port it happened to listen on. Never a
        secret, and nothing that only changes how requests are sent: concurrency, timeouts, retries, rate
        limits, the batch-API flag, cache path, prices, the API key's variable name, the local device and
        batch size, the vLLM server's GPU share and parallelism. Raises ModelNotFoundError (an MsmError)
        for a local model that is not on this machine; hashing large weights the first time takes a
        while (digests are kept in the msmkit cache, keyed by file path, size and times)."""
        identity: dict[str, Any] = {"provider": self.provider, "mode": self.prompt_mode}
        if self.provider in _SERVED_HERE:
            from msmkit.llm.weights import local_weights_identity

            identity["weights"] = local_weights_identity(self.model)
            identity["context_window"] = self.context_window
            if self.provider == "vllm":
                settings = self.vllm or VLLMSettings()
                identity["context_window"] = settings.max_model_len or self.context_window
                identity["dtype"] = settings.dtype
        else:
            identity["model"] = self.model
            identity["endpoint"] = self.endpoint()
        return identity


_SERVED_HERE = ("local", "vllm")  # weights on this machine: identified by their content, no endpoint
_DEFAULT_ENDPOINTS = {"anthropic": "https://api.anthropic.com", "openai": "https://api.openai.com/v1"}
_BASE_URL_ENV = {"anthropic": "ANTHROPIC_BASE_URL", "openai": "OPENAI_BASE_URL"}  # read by the SDKs
_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize_endpoint(url: str) -> str:
    """scheme://host[:port]/path in lower case (path kept as given), without a default port, trailing
    slash, user name or password, query or fragment: two spellings of one server compare equal."""
    parts = urlsplit(url.strip())
    scheme = (parts.scheme or "http").lower()
    host = (parts.hostname or "").lower()
    if ":" in host:  # IPv6
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:  # a malformed port: keep host and port as written (the call will fail anyway)
        return f"{scheme}://{parts.netloc.rsplit('@', 1)[-1].lower()}{parts.path.rstrip('/')}"
    netloc = host if port in (None, _DEFAULT_PORTS.get(scheme)) else f"{host}:{port}"
    return f"{scheme}://{netloc}{parts.path.rstrip('/')}"
